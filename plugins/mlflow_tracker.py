"""MLflow tracking of every model run whose settings ask for it (``training.report_to``
containing "mlflow"), for every engine: zoo's own and custom ones (the TF-IDF baseline) alike.

One MLflow run per zoo model run, in the experiment named for the recipe's run.name (or
MLFLOW_EXPERIMENT_NAME), in OUTPUT_DIR/mlruns unless MLFLOW_TRACKING_URI names another store.
The run starts when the zoo run starts, so the Trainer's own MLflowCallback (started by the same
report_to) finds it active and logs its curves into it instead of starting a second run; it ends
with the zoo run, holding zoo's final metrics (validation_*, test_*, the test confidence
intervals as test_NAME_ci95_low / _high), the memory estimate, the settings as ``zoo.*`` params
(prefixed: the Trainer logs its own TrainingArguments as params, and MLflow refuses a param
logged twice with two values) and the run directory as the tag ``zoo.run_dir``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import zoo

# MLflow takes at most this many characters in a param value, and in a tag value.
PARAM_LENGTH = 6000
TAG_LENGTH = 5000


def _wants_mlflow(settings: Mapping[str, Any]) -> bool:
    return "mlflow" in (settings.get("report_to") or ())


def _flat(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _flat(inner, f"{prefix}.{key}")
    else:
        yield prefix, value


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def final_metrics(
    summary: Mapping[str, Mapping[str, Any] | None], reports: Mapping[str, Any]
) -> dict[str, float]:
    """zoo's final metrics as MLflow metric names: each split's numbers (`summary`, as
    RunFinished says them, else metrics.json's `reports`), ``{split}_{name}``, and the bounds of
    a split's ``ci95`` table (``{"f1_macro": [low, high]}``) as ``{split}_{name}_ci95_low`` and
    ``_high``."""
    found: dict[str, float] = {}
    for split in ("validation", "test"):
        report = {**(reports.get(split) or {}), **(summary.get(split) or {})}
        for name, value in report.items():
            if _number(value) is not None:
                found[f"{split}_{name}"] = _number(value)
        for name, bounds in (report.get("ci95") or {}).items():
            if isinstance(bounds, list | tuple) and len(bounds) == 2:
                for side, bound in zip(("low", "high"), bounds, strict=True):
                    if _number(bound) is not None:
                        found[f"{split}_{name}_ci95_{side}"] = _number(bound)
    return found


class MlflowTracker:
    """The listener: starts an MLflow run on RunStarted, fills and ends it on RunFinished or
    RunFailed. Keeps the MLflow run of each zoo run by its identity."""

    def __init__(self) -> None:
        # (run name, model, seed, fold) -> (tracking uri, run id)
        self.runs: dict[tuple[str, str, int, int | None], tuple[str, str]] = {}

    def __call__(self, event: zoo.RunEvent) -> None:
        if isinstance(event, zoo.RunStarted):
            if _wants_mlflow(event.settings):
                self.started(event)
        elif isinstance(event, zoo.RunFinished | zoo.RunFailed):
            ids = self.runs.pop((event.run_name, event.model, event.seed, event.fold), None)
            if ids is not None:
                self.ended(event, *ids)

    def started(self, event: zoo.RunStarted) -> None:
        import mlflow

        from zoo.trackers import mlflow_tracking_uri

        # zoo says what it does itself; MLflow's INFO lines ("Creating a new experiment") would
        # come between its progress lines.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        output_dir = event.output_dir or Path("runs")
        uri = mlflow_tracking_uri(output_dir)
        if uri.startswith("file:"):
            # MLflow 3 keeps its file store for those who opt in; it is zoo's local default.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or event.run_name)
        # Inside a run the caller started (zoo used from a script): a child of it.
        name = f"{event.model}-seed{event.seed}" + (f"-fold{event.fold}" if event.fold else "")
        run = mlflow.start_run(run_name=name, nested=mlflow.active_run() is not None)
        self.runs[(event.run_name, event.model, event.seed, event.fold)] = (uri, run.info.run_id)
        params = {
            f"zoo.{key}": json.dumps(value) if isinstance(value, Mapping | list | tuple) else value
            for key, value in event.settings.items()
        }
        params |= {"zoo.model": event.model, "zoo.registered_model": event.registered_model}
        params |= {"zoo.method": event.method, "zoo.seed": event.seed}
        if event.fold is not None:
            params["zoo.fold"] = event.fold
        mlflow.log_params({k: str(v)[:PARAM_LENGTH] for k, v in params.items()})
        mlflow.set_tags({"zoo.run_name": event.run_name, "zoo.status": "running"})

    def ended(self, event: zoo.RunEvent, uri: str, run_id: str) -> None:
        import mlflow
        from mlflow import MlflowClient

        client = MlflowClient(uri)
        if isinstance(event, zoo.RunFinished):
            status = "FINISHED"
        else:
            status = "KILLED" if event.status == "interrupted" else "FAILED"
        try:
            if isinstance(event, zoo.RunFinished):
                self._finished(client, run_id, event)
            else:
                self._failed(client, run_id, event)
        finally:  # ended even when logging failed: the next zoo run starts a run of its own
            if hasattr(mlflow, "flush_async_logging"):  # the Trainer's callback logs async
                mlflow.flush_async_logging()
            active = mlflow.active_run()
            if active is not None and active.info.run_id == run_id:
                mlflow.end_run(status=status)
            else:
                client.set_terminated(run_id, status=status)

    def _finished(self, client: Any, run_id: str, event: zoo.RunFinished) -> None:
        run_dir = Path(event.run_dir)
        metrics = final_metrics(event.metrics, _read_json(run_dir / "metrics.json"))
        metrics["train_seconds"] = float(event.train_seconds)
        estimate = _read_json(run_dir / "run.json").get("memory_estimate") or {}
        tags = {"zoo.status": "ok", "zoo.run_dir": str(run_dir)}
        for key, value in _flat(estimate, "memory_estimate"):
            if _number(value) is not None:
                metrics[key] = _number(value)
            elif value is not None:
                tags[f"zoo.{key}"] = str(value)[:TAG_LENGTH]
        _log(client, run_id, metrics, tags)

    def _failed(self, client: Any, run_id: str, event: zoo.RunFailed) -> None:
        tags = {"zoo.status": event.status, "zoo.reason": event.reason[:TAG_LENGTH]}
        if event.run_dir is not None:
            tags["zoo.run_dir"] = str(event.run_dir)
        _log(client, run_id, {}, tags)


def _log(client: Any, run_id: str, metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
    import time

    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
        tags=[RunTag(key, value) for key, value in tags.items()],
    )


@zoo.hookimpl
def register_run_listeners(register):
    register(MlflowTracker())
