"""Running a recipe: every model in turn, each into its own run directory.

One model's failure is recorded and the next model still runs. Heavy libraries are imported only
once training starts.
"""

from __future__ import annotations

import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import attrs
import tomli_w

from zoo.data import Splits, load_splits_for_seeds
from zoo.engine.distributed import check_strategy, is_main, on_main, world
from zoo.errors import EXIT_RUN_FAILED, RunRefused, ZooError
from zoo.files import new_run_dir, write_json, write_text
from zoo.recipe import (
    ModelEntry,
    Recipe,
    TrainingConfig,
    data_paths,
    recipe_to_dict,
    resolve_training,
)
from zoo.registry import Registry
from zoo.rundir import effective_recipe, last_checkpoint, mark_interrupted, versions, write_outputs
from zoo.spec import ModelSpec
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
    # Full metrics.json content (per class, confusion matrix) and the resolved training
    # settings, for the results store.
    reports: dict[str, Any] = attrs.field(factory=dict, repr=False)
    settings: dict[str, Any] = attrs.field(factory=dict, repr=False)
    # What a failed or refused run means for `zoo run`'s exit code (zoo.errors): 4 weights
    # missing, 6 refused, 1 anything else; 0 when it went well.
    exit_code: int = 0

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


class FailedInRunDir(Exception):
    """A model failed after its run directory was made; the cause is `__cause__`."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(str(run_dir))
        self.run_dir = run_dir


def _batch(settings: TrainingConfig) -> str:
    return (
        f"batch {settings.batch_size} x {settings.gradient_accumulation_steps} accumulation steps"
    )


def check_remote_code(spec: ModelSpec, entry: ModelEntry) -> None:
    """Code from a model repository runs only when both its plugin and the recipe allow it."""
    if not entry.trust_remote_code:
        return
    if not spec.trust_remote_code:
        raise RunRefused(
            f"the recipe sets trust_remote_code = true for {entry.label!r}, but the plugin of "
            f"{spec.name!r} does not allow code from its repository",
            hint="remove trust_remote_code from the recipe; zoo's built-in models never need it",
        )
    print(
        f"warning: {entry.label!r} runs Python code from {spec.source.describe()} "
        "(trust_remote_code: allowed by its plugin and the recipe)",
        file=sys.stderr,
    )


def is_out_of_memory(exc: BaseException) -> bool:
    # torch.OutOfMemoryError (torch.cuda.OutOfMemoryError), matched by name: no torch import here.
    return type(exc).__name__ == "OutOfMemoryError"


def halve_batch(settings: TrainingConfig) -> TrainingConfig:
    """Half the batch per device, twice the accumulation: the effective batch stays the same."""
    return attrs.evolve(
        settings,
        batch_size=settings.batch_size // 2,
        gradient_accumulation_steps=settings.gradient_accumulation_steps * 2,
    )


def settings_for(recipe: Recipe, entry: ModelEntry, spec: ModelSpec) -> TrainingConfig:
    """The settings a model entry trains with, the model's plugin defaults included."""
    model_defaults = {
        "max_length": spec.tokenizer.max_length,
        "precision": spec.resources.default_precision,
        **spec.defaults,
    }
    return resolve_training(recipe, entry, model_defaults)


def run_model(
    recipe: Recipe,
    entry: ModelEntry,
    registry: Registry,
    splits: Splits,
    progress: Any,
    options: RunOptions | None = None,
) -> ModelRun:
    from zoo.engine.device import check_method, check_training, detect
    from zoo.engine.jobs import TrainJob
    from zoo.engine.loading import locate
    from zoo.engine.train import train_model

    spec = registry.get(entry.model)
    # A custom engine (the TF-IDF baseline) trains in the main process alone: under torchrun
    # the other processes go on to the next model, which they train together again.
    alone = spec.engine is not None
    if alone and not is_main():
        return ModelRun(
            model=entry.label,
            status="ok",
            reason="trained by the main process",
            seed=recipe.run.seed,
            method=entry.training_method,
        )
    settings = settings_for(recipe, entry, spec)
    # Refuse what this machine cannot run, or what may run foreign code, before looking for
    # (or downloading) any weights.
    device = detect()
    check_method(entry.training_method, device)
    if spec.engine is None:  # a custom engine (the TF-IDF baseline) has no optimizer
        check_training(entry.training_method, settings, device)
    check_remote_code(spec, entry)
    check_strategy(recipe.distributed.strategy)
    checkpoint = recipe.path(entry.checkpoint) if entry.checkpoint else None
    location, revision = locate(spec, checkpoint)
    options = options or RunOptions()
    job = TrainJob(
        method=entry.training_method,
        lora=entry.lora,
        spec=spec,
        location=location,
        revision=revision,
        settings=settings,
        splits=splits,
        seed=recipe.run.seed,
        resume_from=last_checkpoint(options.resume) if options.resume else None,
        allow_pickle=entry.allow_pickle,
        trust_remote_code=entry.trust_remote_code,
        distributed=recipe.distributed,
    )
    parent = recipe.path(recipe.run.output_dir) / recipe.run.name
    started = datetime.now(UTC)
    clock = time.perf_counter()
    made: list[Path] = [options.resume] if options.resume else []

    def new_dir() -> Path:
        run_dir = new_run_dir(parent, f"{entry.label}-seed{recipe.run.seed}")
        # Written first, so that an interrupted run can be resumed from its directory.
        write_text(run_dir / "recipe.toml", effective_recipe(recipe, entry, job.settings))
        return run_dir

    def make_run_dir() -> Path:
        if not made:  # one directory for all processes of a run
            made.append(new_dir() if alone else on_main(new_dir))
        return made[0]

    train = spec.engine.train if spec.engine else train_model
    retries: list[dict[str, Any]] = []
    while True:
        try:
            run_dir, result = train(job, make_run_dir, progress)
            break
        except KeyboardInterrupt:
            if made and is_main():
                mark_interrupted(made[0], entry.label)
            raise
        except Exception as exc:
            can_halve = job.settings.batch_size > 1 and len(retries) < options.oom_retries
            if is_out_of_memory(exc) and can_halve:
                job = attrs.evolve(job, settings=halve_batch(job.settings), resume_from=None)
                retries.append({"error": str(exc)[:300], "then": _batch(job.settings)})
                progress.message(f"out of memory; retrying with {_batch(job.settings)}")
                if made:
                    shutil.rmtree(made[0] / "checkpoints", ignore_errors=True)
                continue
            if made:  # the failure is recorded in the run directory it left behind
                raise FailedInRunDir(made[0]) from exc
            raise
    settings = job.settings
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
        # zoo's estimate before the run ("allocated_bytes" compares with cuda_max_allocated).
        "memory_estimate": options.memory.get((recipe.run.name, entry.label)),
        "parameters": result.parameters,
        "trainable_parameters": result.trainable_parameters,
        "method": entry.training_method,
        "device": result.device,
        "processes": world()[1],
        "distributed": recipe.distributed.strategy if world()[1] > 1 else None,
        "precision": result.precision,
        "seed": recipe.run.seed,
        "rows": {
            "train": len(splits.train),
            "validation": len(splits.validation),
            "test": len(splits.test) if splits.test else 0,
        },
        "encodings": splits.encodings,
        "dropped_rows": splits.dropped,
        "data_notices": list(splits.notices),
        "settings": attrs.asdict(settings),
        "oom_retries": retries,
        "resumed_from": str(job.resume_from) if job.resume_from else None,
        "versions": versions(),
    }
    if is_main():
        write_outputs(run_dir, recipe, entry, settings, splits, result, record)
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
        settings=attrs.asdict(settings),
    )


def _attempt(
    recipe: Recipe,
    entry: ModelEntry,
    registry: Registry,
    splits: Splits,
    progress: Any,
    on_failure: Callable[[str, BaseException], None],
    options: RunOptions,
) -> ModelRun:
    """Run one model; a failure becomes a failed (or refused) ModelRun, reported on the way."""
    try:
        return run_model(recipe, entry, registry, splits, progress, options)
    except Exception as exc:
        progress.stop()
        run_dir = exc.run_dir if isinstance(exc, FailedInRunDir) else None
        cause = exc.__cause__ if isinstance(exc, FailedInRunDir) else exc
        on_failure(entry.label, cause)
        reason = str(cause) if isinstance(cause, ZooError) else f"{type(cause).__name__}: {cause}"
        if run_dir is not None and is_main():
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
            exit_code=cause.exit_code if isinstance(cause, ZooError) else EXIT_RUN_FAILED,
        )


@attrs.frozen(kw_only=True)
class RunOptions:
    """How `zoo run` runs, beyond the recipe."""

    # Continue this interrupted run directory from its last checkpoint.
    resume: Path | None = None
    # On CUDA out-of-memory: retries, each halving the batch and doubling accumulation.
    oom_retries: int = 0
    # The memory check of each model entry, by (run name, entry label), recorded beside the
    # measured peak.
    memory: dict[tuple[str, str], Any] = attrs.field(factory=dict)


def load_all_splits(recipe: Recipe) -> dict[int, Splits]:
    """Every seed's data, read and checked before anything is trained or written."""
    return load_splits_for_seeds(recipe.data, recipe.base_dir, recipe.run.all_seeds)


def run_recipe(
    recipe: Recipe,
    registry: Registry,
    progress_for: Callable[[str], Any],
    on_failure: Callable[[str, BaseException], None],
    options: RunOptions = RunOptions(),
    splits_for: dict[int, Splits] | None = None,
) -> list[ModelRun]:
    """Train every model of the recipe (once per seed); a model that fails is reported and the
    rest go on."""
    runs = []
    splits_for = splits_for or load_all_splits(recipe)
    # Only the main process of a distributed run records.
    store = ResultsStore.in_dir(recipe.path(recipe.run.output_dir)) if is_main() else None
    identity = {
        "recipe_name": recipe.run.name,
        "recipe_hash": hash_text(tomli_w.dumps(recipe_to_dict(recipe))),
        "data_fingerprint": fingerprint_files(data_files(recipe)),
    }
    for seed in recipe.run.all_seeds:
        # Each seed is a recipe of its own: its own validation split, its own run directories.
        seeded = attrs.evolve(recipe, run=attrs.evolve(recipe.run, seed=seed, seeds=None))
        splits = splits_for[seed]
        for entry in recipe.models:
            label = entry.label if recipe.run.seeds is None else f"{entry.label} (seed {seed})"
            try:
                run = _attempt(
                    seeded, entry, registry, splits, progress_for(label), on_failure, options
                )
            except KeyboardInterrupt:
                if store is None:
                    raise
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
            if store is not None:
                store.record(_store_record(identity, run))
            runs.append(run)
    return runs


def exit_code(runs: list[ModelRun]) -> int:
    """`zoo run`'s exit code: 0 when every model went well; 1 when one failed while training;
    else the code of what stopped the others (4 weights missing, 6 refused, ...)."""
    codes = {run.exit_code for run in runs if run.status != "ok"}
    if not codes:
        return 0
    return EXIT_RUN_FAILED if EXIT_RUN_FAILED in codes else min(codes)


def data_files(recipe: Recipe) -> list[Path]:
    """The files that make up the data, for the fingerprint that groups comparable runs."""
    return list(data_paths(recipe).values())  # train, test, validation: the order counts


def _store_record(identity: dict[str, str], run: ModelRun) -> RunRecord:
    return RunRecord(
        **identity,
        model=run.model,
        method=run.method,
        seed=run.seed if run.seed is not None else 0,
        status=run.status,
        reason=run.reason,
        settings=run.settings,
        metrics=run.reports or run.metrics,
        train_seconds=run.train_seconds,
        peak_memory_bytes=run.peak_memory_bytes,
        parameters=run.parameters,
        run_dir=str(run.run_dir) if run.run_dir else None,
    )


def format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
