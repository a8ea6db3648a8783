"""The hooks that zoo plugins implement. Built-in and third-party plugins use the same ones."""

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


@hookspec(firstresult=True)
def zoo_device_memory():
    """Describe the device a run will train on: return a `zoo.memory.probe.DeviceMemory`, or
    None to let the next plugin answer. zoo's built-in answer (CUDA, else the CPU's RAM) comes
    last; a plugin for another back-end answers first. Called only by `zoo check` and `zoo run`,
    so it may import torch.
    """
