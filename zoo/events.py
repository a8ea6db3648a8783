"""Run events: what trackers and notifiers hear of each model run (hook `register_run_listeners`).

The runner says when a run starts, finishes or fails; the engine says when it evaluated (zoo's
own through a Trainer callback, a custom engine through ``job.events.evaluated(...)``). Events
reach the listeners in the main process only, and a listener that raises costs no run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import pluggy

from zoo.engine.distributed import is_main
from zoo.plugins import registrations


@attrs.frozen(kw_only=True)
class RunEvent:
    """What every event says: which run of which model it is about."""

    run_name: str  # the recipe's run.name
    model: str  # the model entry's label: its name, else its model
    seed: int
    method: str  # zoo.spec.METHODS
    # With cross-validation (data.validation = { folds = K }): the fold, 1 to K; else None.
    fold: int | None = None


@attrs.frozen(kw_only=True)
class RunStarted(RunEvent):
    """A model run starts: its checks come next, then loading and training."""

    registered_model: str  # the model as its plugin registered it
    settings: Mapping[str, Any]  # the resolved training settings, every key set
    # The recipe's run.output_dir (its run directories go in OUTPUT_DIR/RUN_NAME/), resolved.
    output_dir: Path | None = None


@attrs.frozen(kw_only=True)
class RunEvaluated(RunEvent):
    """The run evaluated on its validation split while training."""

    step: int  # optimizer steps so far
    epoch: float | None  # epochs so far (fractional between epoch ends)
    metrics: Mapping[str, float]  # validation metrics by name, e.g. accuracy, f1_macro, loss


@attrs.frozen(kw_only=True)
class RunFinished(RunEvent):
    """The run went well: its run directory holds the model, metrics and predictions."""

    run_dir: Path
    # {"validation": {...}, "test": {...} or None}: the summary metrics, as `zoo run --json`
    metrics: Mapping[str, Mapping[str, float] | None]
    train_seconds: float


@attrs.frozen(kw_only=True)
class RunFailed(RunEvent):
    """The run failed, was refused before loading anything, or was interrupted."""

    status: Literal["failed", "refused", "interrupted"]
    reason: str  # the message `zoo run` prints
    error: BaseException
    run_dir: Path | None  # where run.json and error.txt say what happened, if it made one


Listener = Callable[[RunEvent], None]


@attrs.frozen
class RunListeners:
    """The listeners that plugins registered, each with its plugin's name."""

    listeners: tuple[tuple[str, Listener], ...] = ()

    def emit(self, event: RunEvent) -> None:
        """Tell every listener, in the main process only; one that raises is warned about."""
        if not is_main():
            return
        for plugin, listener in self.listeners:
            try:
                listener(event)
            except Exception as exc:  # a tracker's fault must not cost the run
                print(
                    f"warning: the run listener of plugin {plugin!r} failed on "
                    f"{type(event).__name__}: {type(exc).__name__}: {exc}; the run goes on",
                    file=sys.stderr,
                )


def collect_run_listeners(pm: pluggy.PluginManager) -> RunListeners:
    """Call every plugin's `register_run_listeners` and collect what they register. A plugin
    that fails to register (or registers something that cannot be called) hears no events; the
    runs go on."""
    failures: list[tuple[str, str]] = []
    found = registrations(pm, "register_run_listeners", failures, order="pluggy")
    for plugin, listener, _replace in found:
        if not callable(listener):
            failures.append((plugin, f"TypeError: {listener!r} is not callable"))
    for plugin, why in failures:  # one broken plugin must not stop the runs
        print(
            f"warning: plugin {plugin!r} failed to register its run listeners: {why}; it hears "
            "no events",
            file=sys.stderr,
        )
    broken = {plugin for plugin, _why in failures}
    return RunListeners(tuple((p, listener) for p, listener, _r in found if p not in broken))


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


@attrs.frozen(kw_only=True)
class RunEvents:
    """The events of one model run, which the runner and the engine report through.

    A custom engine reports each evaluation with ``job.events.evaluated(step=..., epoch=...,
    metrics=...)``; `metrics` may be a split's whole report (`zoo.score_split`'s first item):
    only its numbers are kept.
    """

    listeners: RunListeners = RunListeners()
    run_name: str = ""
    model: str = ""
    seed: int = 0
    method: str = "full"
    fold: int | None = None
    output_dir: Path | None = None
    # A search's pruner (search.pruner): told each evaluation, it says whether to stop here.
    prune: Callable[[int, Mapping[str, float]], bool] | None = attrs.field(default=None, eq=False)

    def _identity(self) -> dict[str, Any]:
        return {
            "run_name": self.run_name,
            "model": self.model,
            "seed": self.seed,
            "method": self.method,
            "fold": self.fold,
        }

    def _emit(self, kind: type[RunEvent], **fields: Any) -> None:
        if self.listeners.listeners:
            self.listeners.emit(kind(**self._identity(), **fields))

    def started(self, *, registered_model: str, settings: Mapping[str, Any]) -> None:
        self._emit(
            RunStarted,
            registered_model=registered_model,
            settings=dict(settings),
            output_dir=self.output_dir,
        )

    def evaluated(self, *, step: int, epoch: float | None, metrics: Mapping[str, Any]) -> bool:
        """Tell the listeners; True when a search's pruner says to stop training here."""
        self._emit(RunEvaluated, step=int(step), epoch=epoch, metrics=_numbers(metrics))
        return self.prune is not None and self.prune(int(step), _numbers(metrics))

    def finished(self, *, run_dir: Path, metrics: Mapping[str, Any], train_seconds: float) -> None:
        self._emit(RunFinished, run_dir=run_dir, metrics=dict(metrics), train_seconds=train_seconds)

    def failed(
        self,
        *,
        status: Literal["failed", "refused", "interrupted"],
        reason: str,
        error: BaseException,
        run_dir: Path | None,
    ) -> None:
        self._emit(RunFailed, status=status, reason=reason, error=error, run_dir=run_dir)
