"""The hooks that zoo plugins implement. Built-in and third-party plugins use the same ones.

Every hook is named ``register_<things>(register)``: zoo calls it once with a ``register``
function, and the plugin calls ``register(thing)`` for each thing it provides.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def register_models(register: Callable[..., None]) -> None:
    """Register the models this plugin provides.

    Call ``register(spec)`` once per `zoo.ModelSpec`. Registration is declarative: do not touch
    the network, import torch or load weights here; loading happens when a run needs the model.
    A name that another plugin registered already is an error, unless the call says
    ``register(spec, replace=True)`` to override that model on purpose.
    """


@hookspec
def register_device_probes(register: Callable[..., None]) -> None:
    """Register probes that describe the device a run will train on.

    Call ``register(probe)`` with a callable that takes no arguments and returns a
    `zoo.DeviceMemory`, or None to let the next probe answer. The first answer wins: probes of
    third-party plugins are asked first, zoo's built-in one (CUDA, else the CPU's RAM) last. The
    answer plans memory (`zoo check`, `zoo run`) and tells the engine which device it trains on
    (its kind, bf16 and TF32 pick the precision). Probes run only when `zoo check` or `zoo run`
    needs the device, so a probe may import torch; registering one must not.
    """


@hookspec
def register_run_listeners(register: Callable[..., None]) -> None:
    """Register listeners that hear of every model run: trackers, notifiers.

    Call ``register(listener)`` with a callable that takes one event: `zoo.RunStarted`,
    `zoo.RunEvaluated` (each evaluation during training), `zoo.RunFinished` or `zoo.RunFailed`
    (all subclasses of `zoo.RunEvent`; more kinds may come, so ignore the ones you do not know).
    Every run that starts ends with exactly one `RunFinished` or `RunFailed`. Listeners are
    called in the main process only (under torchrun too), for zoo's own engine and custom
    engines alike. A listener that raises costs no run: zoo warns on stderr, naming its
    plugin, and goes on.
    """


@hookspec
def register_metrics(register: Callable[..., None]) -> None:
    """Register the metrics this plugin provides.

    Call ``register(metric)`` once per `zoo.Metric`. Its ``compute(references, predictions,
    probabilities, labels)`` returns a float from the true label indices, the predicted indices,
    the rows x labels probability matrix and the label names. A registered name can be a
    recipe's ``training.metric`` (it then picks the best checkpoint and drives early stopping),
    and every run reports it: metrics.json, ``zoo run --json``, the tables, the leaderboard and
    the HTML report. Registration is declarative: import heavy libraries inside ``compute``. A
    name that another plugin registered already is an error, unless the call says
    ``register(metric, replace=True)``.
    """


@hookspec
def register_model_families(register: Callable[..., None]) -> None:
    """Register the model families this plugin teaches the memory estimator.

    Call ``register(family)`` once per `zoo.ModelFamily` instance. A family claims the
    ``model_type`` values of a Hugging Face ``config.json`` (`ModelFamily.model_types`) and
    says, from the config's numbers alone, what a model of that architecture holds: its
    parameter tensors, what its layers save for the backward pass, its dropout defaults and its
    parameter count. `zoo check` and `zoo run`'s memory check refuse an architecture that no
    family claims (unless ``--rough``). Registration is declarative: no torch, no weights. A
    ``model_type`` that another plugin's family claims already is an error, unless the call
    says ``register(family, replace=True)`` to override that family on purpose.
    """


@hookspec
def register_text_transforms(register: Callable[..., None]) -> None:
    """Register the text transforms this plugin provides, for a recipe's ``data.preprocess``.

    Call ``register(transform)`` once per `zoo.TextTransform`: a name (lower-case words joined
    by '-') and ``apply(text) -> text``, deterministic and depending on the text alone. zoo
    applies a recipe's transforms in its order to every text of its data files as they are
    read, and ``zoo predict`` applies the run's list to its input in the same order; the
    tokenization cache is keyed by the transformed texts. A transform that returns something
    other than a string, or an empty text, stops the run with its name and the line. A name
    that another plugin registered already is an error, unless the call says
    ``register(transform, replace=True)``.
    """


@hookspec
def register_executors(register: Callable[..., None]) -> None:
    """Register executors: what runs a recipe's work units (`zoo run --executor NAME`).

    Call ``register(zoo.ExecutorSpec(name=..., description=..., make=...))``; ``make(settings,
    folder, jobs)`` builds the executor from the recipe's [executor] table, a folder for its
    files and how many units may run at once. The executor starts a unit file
    (``submit(unit_file, slot)``: a worker runs ``zoo.units.run_unit_file(unit_file)``, which
    writes the unit's run directory and result file) and answers ``done``, ``failure``,
    ``cancel`` and ``close`` for what it started. Workers never write the results store: the
    coordinating process records each unit as its result arrives. zoo's own ``local``,
    ``submitit`` and ``ray`` come through this hook too; a name that is registered already is
    an error unless the call says ``register(spec, replace=True)``.
    """
