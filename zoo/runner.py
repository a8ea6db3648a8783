"""Running a recipe: every model in turn, each into its own run directory.

One model's failure is recorded and the next model still runs. Heavy libraries are imported only
once training starts.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import attrs
import tomli_w

import zoo
from zoo.data import Splits, load_splits
from zoo.errors import RunRefused, ZooError
from zoo.files import new_run_dir, write_json, write_text
from zoo.recipe import ModelEntry, Recipe, TrainingConfig, recipe_to_dict, resolve_training
from zoo.registry import Registry
from zoo.store import ResultsStore, RunRecord, fingerprint_files, hash_text

Status = Literal["ok", "failed", "refused"]


@attrs.frozen(kw_only=True)
class ModelRun:
    """What happened to one model of a recipe."""

    model: str
    status: Status
    run_dir: Path | None = None
    metrics: dict[str, Any] = attrs.field(factory=dict)
    reason: str | None = None
    train_seconds: float | None = None
    peak_memory_bytes: int | None = None
    parameters: int | None = None
    seed: int | None = None
    method: str = "full"
    # Full metrics.json content (per class, confusion matrix) for the results store.
    reports: dict[str, Any] = attrs.field(factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "status": self.status,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "metrics": self.metrics,
            "reason": self.reason,
            "train_seconds": self.train_seconds,
            "peak_memory_bytes": self.peak_memory_bytes,
            "parameters": self.parameters,
            "seed": self.seed,
        }


SUMMARY_KEYS = ("accuracy", "f1_macro", "f1_weighted")


def _summary(report: dict[str, Any] | None) -> dict[str, float] | None:
    return None if report is None else {k: report[k] for k in SUMMARY_KEYS}


def _versions() -> dict[str, str]:
    names = ("torch", "transformers", "datasets", "evaluate", "accelerate", "scikit-learn")
    found = {"python": platform.python_version(), "zoo": zoo.__version__}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


class FailedInRunDir(Exception):
    """A model failed after its run directory was made; the cause is `__cause__`."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(str(run_dir))
        self.run_dir = run_dir


def effective_recipe(recipe: Recipe, entry: ModelEntry, settings: TrainingConfig) -> str:
    """The recipe for this one model with every setting spelled out and absolute paths, so that
    `zoo run RUN_DIR/recipe.toml` trains it again."""
    data = recipe_to_dict(recipe)
    for key in ("train", "test"):
        if data["data"].get(key):
            data["data"][key] = str(recipe.path(data["data"][key]))
    if isinstance(recipe.data.validation, str):
        data["data"]["validation"] = str(recipe.path(recipe.data.validation))
    data["run"]["output_dir"] = str(recipe.path(recipe.run.output_dir))
    data["training"] = {k: v for k, v in attrs.asdict(settings).items() if v is not None}
    model = {
        "model": entry.model,
        "name": entry.name,
        "checkpoint": entry.checkpoint,
        "method": entry.method,
    }
    if entry.lora is not None:
        model["lora"] = {k: v for k, v in attrs.asdict(entry.lora).items() if v is not None}
    data["models"] = [{k: v for k, v in model.items() if v is not None}]
    return tomli_w.dumps(data)


def _predictions_csv(splits: Splits, predicted: tuple[int, ...], probabilities) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "text", "label", "predicted", "confidence"])
    assert splits.test is not None
    for i, (text, label) in enumerate(zip(splits.test.texts, splits.test.labels, strict=True)):
        p = predicted[i]
        writer.writerow([i, text, label, splits.labels[p], f"{probabilities[i][p]:.6f}"])
    return out.getvalue()


def _write_outputs(
    run_dir: Path,
    recipe: Recipe,
    entry: ModelEntry,
    settings: TrainingConfig,
    splits: Splits,
    result: Any,
    record: dict[str, Any],
) -> None:
    write_text(run_dir / "recipe.toml", effective_recipe(recipe, entry, settings))
    write_json(run_dir / "labels.json", {"id2label": dict(enumerate(splits.labels))})
    write_json(run_dir / "metrics.json", {"validation": result.validation, "test": result.test})
    write_json(run_dir / "log_history.json", result.log_history)
    if result.test_predictions is not None:
        write_text(
            run_dir / "predictions.csv",
            _predictions_csv(splits, result.test_predictions, result.test_probabilities),
        )
    write_json(run_dir / "run.json", record)


def run_model(
    recipe: Recipe, entry: ModelEntry, registry: Registry, splits: Splits, progress: Any
) -> ModelRun:
    from zoo.engine.device import check_method, detect
    from zoo.engine.jobs import TrainJob
    from zoo.engine.loading import locate
    from zoo.engine.train import train_model

    spec = registry.get(entry.model)
    model_defaults = {
        "max_length": spec.tokenizer.max_length,
        "precision": spec.resources.default_precision,
        **spec.defaults,
    }
    settings = resolve_training(recipe, entry, model_defaults)
    # Refuse what this machine cannot run before looking for (or downloading) any weights.
    check_method(entry.training_method, detect())
    checkpoint = recipe.path(entry.checkpoint) if entry.checkpoint else None
    location, revision = locate(spec, checkpoint)
    job = TrainJob(
        method=entry.training_method,
        lora=entry.lora,
        spec=spec,
        location=location,
        revision=revision,
        settings=settings,
        splits=splits,
        seed=recipe.run.seed,
    )
    parent = recipe.path(recipe.run.output_dir) / recipe.run.name
    started = datetime.now(UTC)
    clock = time.perf_counter()
    made: list[Path] = []

    def make_run_dir() -> Path:
        made.append(new_run_dir(parent, f"{entry.label}-seed{recipe.run.seed}"))
        return made[0]

    try:
        train = spec.engine.train if spec.engine else train_model
        run_dir, result = train(job, make_run_dir, progress)
    except Exception as exc:
        if made:  # the failure is recorded in the run directory it left behind
            raise FailedInRunDir(made[0]) from exc
        raise
    record = {
        "model": entry.label,
        "registered_model": spec.name,
        "plugin": registry.models[spec.name].plugin,
        "source": location if checkpoint else spec.source.describe(),
        "status": "ok",
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - clock, 2),
        "train_seconds": round(result.train_seconds, 2),
        "peak_memory_bytes": result.peak_memory_bytes,
        "peak_memory_kind": result.peak_memory_kind,
        "parameters": result.parameters,
        "trainable_parameters": result.trainable_parameters,
        "method": entry.training_method,
        "device": result.device,
        "precision": result.precision,
        "seed": recipe.run.seed,
        "rows": {
            "train": len(splits.train),
            "validation": len(splits.validation),
            "test": len(splits.test) if splits.test else 0,
        },
        "encodings": splits.encodings,
        "settings": attrs.asdict(settings),
        "versions": _versions(),
    }
    _write_outputs(run_dir, recipe, entry, settings, splits, result, record)
    return ModelRun(
        model=entry.label,
        status="ok",
        run_dir=run_dir,
        metrics={"test": _summary(result.test), "validation": _summary(result.validation)},
        train_seconds=result.train_seconds,
        peak_memory_bytes=result.peak_memory_bytes,
        parameters=result.parameters,
        seed=recipe.run.seed,
        method=entry.training_method,
        reports={"test": result.test, "validation": result.validation},
    )


def _attempt(
    recipe: Recipe,
    entry: ModelEntry,
    registry: Registry,
    splits: Splits,
    progress: Any,
    on_failure: Callable[[str, BaseException], None],
) -> ModelRun:
    """Run one model; a failure becomes a failed (or refused) ModelRun, reported on the way."""
    try:
        return run_model(recipe, entry, registry, splits, progress)
    except Exception as exc:
        progress.stop()
        run_dir = exc.run_dir if isinstance(exc, FailedInRunDir) else None
        cause = exc.__cause__ if isinstance(exc, FailedInRunDir) else exc
        on_failure(entry.label, cause)
        reason = str(cause) if isinstance(cause, ZooError) else f"{type(cause).__name__}: {cause}"
        if run_dir is not None:
            record = {"model": entry.label, "status": "failed", "reason": reason}
            write_json(run_dir / "run.json", record)
            write_text(run_dir / "error.txt", format_traceback(cause))
        status: Status = "refused" if isinstance(cause, RunRefused) else "failed"
        return ModelRun(
            model=entry.label,
            status=status,
            run_dir=run_dir,
            reason=reason,
            seed=recipe.run.seed,
            method=entry.training_method,
        )


def run_recipe(
    recipe: Recipe,
    registry: Registry,
    progress_for: Callable[[str], Any],
    on_failure: Callable[[str, BaseException], None],
) -> list[ModelRun]:
    """Train every model of the recipe (once per seed); a model that fails is reported and the
    rest go on."""
    runs = []
    store = ResultsStore.in_dir(recipe.path(recipe.run.output_dir))
    identity = {
        "recipe_name": recipe.run.name,
        "recipe_hash": hash_text(tomli_w.dumps(recipe_to_dict(recipe))),
        "data_fingerprint": fingerprint_files(data_files(recipe)),
    }
    for seed in recipe.run.all_seeds:
        # Each seed is a recipe of its own: its own validation split, its own run directories.
        seeded = attrs.evolve(recipe, run=attrs.evolve(recipe.run, seed=seed, seeds=None))
        splits = load_splits(recipe.data, recipe.base_dir, seed)
        for entry in recipe.models:
            label = entry.label if recipe.run.seeds is None else f"{entry.label} (seed {seed})"
            try:
                run = _attempt(seeded, entry, registry, splits, progress_for(label), on_failure)
            except KeyboardInterrupt:
                store.record(
                    RunRecord(
                        **identity,
                        model=entry.label,
                        method=entry.training_method,
                        seed=seed,
                        status="interrupted",
                        reason="interrupted by the user (Ctrl-C or SIGTERM)",
                    )
                )
                raise
            store.record(_store_record(identity, run))
            runs.append(run)
    return runs


def data_files(recipe: Recipe) -> list[Path]:
    """The files that make up the data, for the fingerprint that groups comparable runs."""
    named = [recipe.data.train, recipe.data.test]
    if isinstance(recipe.data.validation, str):
        named.append(recipe.data.validation)
    return [recipe.path(name) for name in named if name is not None]


def _store_record(identity: dict[str, str], run: ModelRun) -> RunRecord:
    settings = {}
    if run.run_dir is not None and (run.run_dir / "run.json").exists():
        settings = json.loads((run.run_dir / "run.json").read_text(encoding="utf-8")).get(
            "settings", {}
        )
    return RunRecord(
        **identity,
        model=run.model,
        method=run.method,
        seed=run.seed if run.seed is not None else 0,
        status=run.status,
        reason=run.reason,
        settings=settings,
        metrics=run.reports or run.metrics,
        train_seconds=run.train_seconds,
        peak_memory_bytes=run.peak_memory_bytes,
        parameters=run.parameters,
        run_dir=str(run.run_dir) if run.run_dir else None,
    )


def format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
