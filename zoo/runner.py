"""Running a recipe: every model in turn, each into its own run directory.

One model's failure is recorded and the next model still runs. Heavy libraries are imported only
once training starts.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import tomli_w

from zoo.data import Splits, Unit, load_units
from zoo.engine.distributed import check_strategy, is_main, on_main, world
from zoo.errors import EXIT_RUN_FAILED, RunRefused, ZooError
from zoo.events import RunEvents, RunListeners
from zoo.files import new_run_dir, write_text
from zoo.metrics import BUILTIN_METRICS, INTERVALS, Metric, for_task, scores_of
from zoo.multilabel import multi_hot_ids
from zoo.prompts import DEFAULT_SHOTS, resolved_prompt
from zoo.recipe import (
    Folds,
    ModelEntry,
    Recipe,
    TrainingConfig,
    data_paths,
    recipe_to_dict,
    settings_for,
)
from zoo.registry import Registry
from zoo.rundir import (
    ERROR,
    RECIPE,
    RunDirError,
    RunIdentity,
    effective_recipe,
    effective_recipe_data,
    interrupted_record,
    last_checkpoint,
    read_run,
    record_command,
    restart_command,
    resume_problems,
    run_record,
    start_record,
    store_record,
    versions,
    why_not_resumable,
    write_outputs,
    write_record,
)
from zoo.spec import DEFAULT_TRUNCATION, ModelSpec, trains_weights
from zoo.store import (
    ResultsStore,
    RunRecord,
    Status,
    StoreError,
    file_digest,
    fingerprint_digests,
    hash_text,
)
from zoo.transforms import TransformRegistry, builtin_transforms

if TYPE_CHECKING:
    from zoo.engine.jobs import TrainJob
    from zoo.memory.probe import DeviceMemory


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
    # The results-store record made of it (None in the other processes of a distributed run).
    record: RunRecord | None = attrs.field(default=None, repr=False)
    # Cross-validation: the fold (1 to folds) this run validated on; an ensemble has folds alone.
    fold: int | None = None
    folds: int | None = None
    # The test rows' class probabilities (rows x labels), which an ensemble of folds averages.
    test_probabilities: Any = attrs.field(default=None, repr=False, eq=False)
    # A trial of a search ([search]): its number, the values it tried, and whether the search
    # chose it on the validation split (None until the search has ended).
    trial: int | None = None
    params: dict[str, Any] | None = None
    best: bool | None = None

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
            "fold": self.fold,
            "folds": self.folds,
            "trial": self.trial,
            "params": self.params,
            "best": self.best,
        }


def split_summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A split's scores and, where it has them, their intervals ("ci95")."""
    if report is None:
        return None
    intervals = {INTERVALS: report[INTERVALS]} if INTERVALS in report else {}
    return scores_of(report) | intervals


def test_report_with_intervals(
    report: dict[str, Any],
    splits: Splits,
    predicted: Any,
    probabilities: Any,
    metrics: tuple[Metric, ...],
    seed: int,
) -> dict[str, Any]:
    """A test report with each score's 95% bootstrap interval over the test rows (`ci95`),
    drawn from the run's seed."""
    from zoo.uncertainty import intervals

    assert splits.test is not None
    if splits.separator is not None:  # multi-label: rows x labels 0/1
        references = splits.multi_hot(splits.test)
        predicted = multi_hot_ids(predicted, len(splits.labels))
    else:
        references = [splits.labels.index(label) for label in splits.test.labels]
    found = intervals(references, predicted, probabilities, splits.labels, metrics, seed=seed)
    return {**report, INTERVALS: found}


def with_intervals(result: Any, splits: Splits, metrics: tuple[Metric, ...], seed: int) -> Any:
    """The result with its test report's intervals (`test_report_with_intervals`)."""
    if result.test is None or result.test_predictions is None or splits.test is None:
        return result
    test = test_report_with_intervals(
        result.test, splits, result.test_predictions, result.test_probabilities, metrics, seed
    )
    return attrs.evolve(result, test=test)


class FailedInRunDir(Exception):
    """A model failed after its run directory was made; the cause is `__cause__`, `start` the
    run.json record it started with."""

    def __init__(self, run_dir: Path, start: dict[str, Any]) -> None:
        super().__init__(str(run_dir))
        self.run_dir = run_dir
        self.start = start


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM after a model's run directory was made; run.json says so already."""

    def __init__(self, run_dir: Path, record: dict[str, Any]) -> None:
        super().__init__(str(run_dir))
        self.run_dir = run_dir
        self.record = record


@attrs.frozen(kw_only=True)
class RecipeIdentity:
    """What every run of one recipe shares in its record: the recipe, its data, its store."""

    recipe_name: str
    recipe_hash: str
    data_fingerprint: str
    output_dir: str
    # "data.train" (and "data.test", "data.validation"): {"path": ..., "sha256": ...}
    data_files: dict[str, dict[str, str]]

    def of(self, entry: ModelEntry, spec_name: str, seed: int, **fold: Any) -> RunIdentity:
        """The identity of one run of `entry`; `fold` and `folds` for one of cross-validation,
        `trial` and `params` for a trial of a search."""
        return RunIdentity(
            recipe_name=self.recipe_name,
            recipe_hash=self.recipe_hash,
            data_fingerprint=self.data_fingerprint,
            output_dir=self.output_dir,
            model=entry.label,
            registered_model=spec_name,
            method=entry.training_method,
            seed=seed,
            **fold,
        )


def trial_of(options: RunOptions) -> dict[str, Any]:
    """The trial of a search that a run is (RunOptions.trial), as ModelRun and run.json name it."""
    if options.trial is None:
        return {}
    number, params = options.trial
    return {"trial": number, "params": dict(params)}


def fold_of(recipe: Recipe) -> dict[str, int | None]:
    """The fold a recipe of one run trains (`run_recipe` sets it), and how many there are."""
    folds = recipe.data.validation
    if not isinstance(folds, Folds):
        return {"fold": None, "folds": None}
    return {"fold": folds.fold, "folds": folds.folds}


def hashed_recipe(recipe: Recipe, registry: Registry) -> dict[str, Any]:
    """What the recipe hash covers: the whole recipe but where its units run ([executor]),
    which changes no result (so --skip-done knows a unit whichever executor ran it), and the
    settings each model trains with, its plugin's and zoo's defaults filled in: a changed
    default trains another model, which --skip-done and --resume must not take for the old."""
    data = recipe_to_dict(recipe)
    data.pop("executor", None)
    resolved = {}
    for entry in recipe.models:
        spec = registry.spec_for(recipe, entry)
        resolved[entry.label] = attrs.asdict(settings_for(recipe, entry, spec))
        if entry.prompted:
            # The prompt it is asked with: a changed plugin prompt is another model.
            resolved[entry.label]["prompt"] = resolved_prompt(entry.prompt, spec.prompt)
    data["resolved_settings"] = json.dumps(resolved, sort_keys=True, default=str)
    return data


def recipe_identity(recipe: Recipe, registry: Registry) -> RecipeIdentity:
    files = data_paths(recipe)
    digests = {key: file_digest(path) for key, path in files.items()}
    return RecipeIdentity(
        recipe_name=recipe.run.name,
        recipe_hash=hash_text(tomli_w.dumps(hashed_recipe(recipe, registry))),
        # over the files in data_files()' order, as fingerprint_files(data_files(recipe))
        data_fingerprint=fingerprint_digests(digests.values()),
        output_dir=str(recipe.path(recipe.run.output_dir)),
        data_files={key: {"path": str(files[key]), "sha256": d} for key, d in digests.items()},
    )


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


def run_model(
    recipe: Recipe,
    entry: ModelEntry,
    registry: Registry,
    splits: Splits,
    progress: Any,
    options: RunOptions | None = None,
    *,
    identity: RecipeIdentity | None = None,
) -> ModelRun:
    spec = registry.spec_for(recipe, entry)
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
    options = options or RunOptions()
    events = RunEvents(
        listeners=options.listeners,
        run_name=recipe.run.name,
        model=entry.label,
        seed=recipe.run.seed,
        method=entry.training_method,
        fold=fold_of(recipe)["fold"],
        output_dir=recipe.path(recipe.run.output_dir),
        prune=options.prune,
    )
    events.started(registered_model=spec.name, settings=attrs.asdict(settings))
    try:
        run = _train(
            recipe, entry, spec, settings, registry, splits, progress, options, identity, events
        )
    except BaseException as exc:
        what = failure(exc)
        if isinstance(exc, FailedInRunDir) and is_main():
            # Recorded before the listeners hear of it: run.json says "failed" when they look.
            write_record(exc.run_dir, run_record(exc.start, what["status"], reason=what["reason"]))
            write_text(exc.run_dir / ERROR, format_traceback(what["error"]))
        events.failed(**what)
        raise
    events.finished(
        run_dir=run.run_dir or Path(), metrics=run.metrics, train_seconds=run.train_seconds or 0.0
    )
    return run


def _train(
    recipe: Recipe,
    entry: ModelEntry,
    spec: ModelSpec,
    settings: TrainingConfig,
    registry: Registry,
    splits: Splits,
    progress: Any,
    options: RunOptions,
    identity: RecipeIdentity | None,
    events: RunEvents,
) -> ModelRun:
    """Check, train, and write the run directory of one model (`run_model` without events)."""
    device = _refuse_what_cannot_run(recipe, entry, spec, settings, options)
    job = _job(recipe, entry, spec, settings, splits, options, device, events)
    identity = identity or recipe_identity(recipe, registry)
    start = _start(recipe, entry, spec, settings, splits, identity, options)
    fold = fold_of(recipe)
    run_dir = _RunDir(
        parent=recipe.path(recipe.run.output_dir) / recipe.run.name,
        stem=f"{entry.label}-seed{recipe.run.seed}"
        + (f"-fold{fold['fold']}" if fold["fold"] else "")
        + (f"-trial{options.trial[0]}" if options.trial else ""),
        recipe=recipe,
        entry=entry,
        start=start,
        alone=spec.engine is not None,
        made=options.resume,
    )
    if options.resume and is_main():
        write_record(options.resume, start)
    clock = time.perf_counter()
    job, result, retries = _train_halving_on_oom(job, run_dir, progress, options)
    result = with_intervals(result, splits, job.metrics, recipe.run.seed)
    record = run_record(
        start,
        "ok",
        plugin=registry.plugin_of(spec),
        source=job.location if entry.checkpoint else spec.source.describe(),
        **_outcome(result, job, splits, recipe, entry, options, retries, clock),
    )
    assert run_dir.made is not None  # the engine made it before it returned
    if is_main():
        write_outputs(run_dir.made, recipe, entry, job.settings, splits, result, record)
    return ModelRun(
        model=entry.label,
        status="ok",
        run_dir=run_dir.made,
        metrics={
            "test": split_summary(result.test),
            "validation": split_summary(result.validation),
        },
        train_seconds=result.train_seconds,
        peak_memory_bytes=result.peak_memory_bytes,
        parameters=result.parameters,
        seed=recipe.run.seed,
        method=entry.training_method,
        reports={"test": result.test, "validation": result.validation},
        settings=attrs.asdict(job.settings),
        test_probabilities=result.test_probabilities,
        **fold,
        **trial_of(options),
    )


def _refuse_what_cannot_run(
    recipe: Recipe,
    entry: ModelEntry,
    spec: ModelSpec,
    settings: TrainingConfig,
    options: RunOptions,
) -> Any:
    """The device to train on, once what it cannot run, or what may run foreign code, has been
    refused: before looking for (or downloading) any weights."""
    from zoo.engine.device import check_method, check_training, detect

    device = detect(options.device)
    check_method(entry.training_method, device)
    if spec.engine is None:  # a custom engine (the TF-IDF baseline) has no optimizer
        check_training(entry.training_method, settings, device)
    check_remote_code(spec, entry)
    check_strategy(recipe.distributed.strategy)
    return device


def _job(
    recipe: Recipe,
    entry: ModelEntry,
    spec: ModelSpec,
    settings: TrainingConfig,
    splits: Splits,
    options: RunOptions,
    device: Any,
    events: RunEvents,
) -> TrainJob:
    """What the engine is asked to do, with the weights located (the entry's checkpoint
    directory, or the spec's source)."""
    from zoo.engine.jobs import TrainJob
    from zoo.engine.loading import locate

    checkpoint = recipe.path(entry.checkpoint) if entry.checkpoint else None
    location, revision = locate(spec, checkpoint)
    return TrainJob(
        method=entry.training_method,
        lora=entry.lora,
        head=entry.answer_head,
        prompt=resolved_prompt(entry.prompt, spec.prompt),
        label_words=entry.label_words,
        shots=entry.shots or DEFAULT_SHOTS,
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
        device=device,
        events=events,
        metrics=for_task(options.metrics, multi_label=splits.separator is not None),
    )


@attrs.define(kw_only=True)
class _RunDir:
    """The directory of one run, made when the engine first asks for it (once the model has
    loaded, so that a model that cannot be found leaves nothing behind): one for all processes
    of the run, and for every retry. A resumed run has it already."""

    parent: Path
    stem: str
    recipe: Recipe
    entry: ModelEntry
    start: dict[str, Any]
    alone: bool  # trained by the main process alone (a custom engine)
    made: Path | None = None

    def maker(self, settings: TrainingConfig) -> Callable[[], Path]:
        """The `make_run_dir` an engine calls; the recipe it writes has these settings."""

        def make_run_dir() -> Path:
            if self.made is None:
                new = functools.partial(self._new, settings)
                self.made = new() if self.alone else on_main(new)
            return self.made

        return make_run_dir

    def _new(self, settings: TrainingConfig) -> Path:
        run_dir = new_run_dir(self.parent, self.stem)
        # Written first, so that an interrupted run can be resumed from its directory, and a
        # run the store missed can be recorded from it.
        write_text(run_dir / RECIPE, effective_recipe(self.recipe, self.entry, settings))
        write_record(run_dir, self.start)
        return run_dir


def _train_halving_on_oom(
    job: TrainJob, run_dir: _RunDir, progress: Any, options: RunOptions
) -> tuple[TrainJob, Any, list[dict[str, Any]]]:
    """Train; on running out of memory, again with half the batch per device (the effective
    batch stays the same), up to `options.oom_retries` times. Returns the job that succeeded,
    its result and the retries it took. An interruption or failure is said in the run
    directory the attempt left, if any."""
    if job.spec.engine is not None:
        train = job.spec.engine.train
    else:  # torch and transformers: only when zoo's own engine trains
        from zoo.engine.train import train_model as train
    retries: list[dict[str, Any]] = []
    while True:
        try:
            made, result = train(job, run_dir.maker(job.settings), progress)
            run_dir.made = made
            return job, result, retries
        except KeyboardInterrupt as exc:
            if run_dir.made and is_main():
                record = interrupted_record(run_dir.made, run_dir.start)
                write_record(run_dir.made, record)
                raise Interrupted(run_dir.made, record) from exc
            raise
        except Exception as exc:
            can_halve = job.settings.batch_size > 1 and len(retries) < options.oom_retries
            if is_out_of_memory(exc) and can_halve:
                job = attrs.evolve(job, settings=halve_batch(job.settings), resume_from=None)
                retries.append({"error": str(exc)[:300], "then": _batch(job.settings)})
                progress.message(f"out of memory; retrying with {_batch(job.settings)}")
                if run_dir.made:
                    shutil.rmtree(run_dir.made / "checkpoints", ignore_errors=True)
                continue
            if run_dir.made:  # the failure is recorded in the run directory it left behind
                raise FailedInRunDir(run_dir.made, run_dir.start) from exc
            raise


def _start(
    recipe: Recipe,
    entry: ModelEntry,
    spec: ModelSpec,
    settings: TrainingConfig,
    splits: Splits,
    identity: RecipeIdentity,
    options: RunOptions,
) -> dict[str, Any]:
    """run.json as the run starts: who it is, and what resuming it must match (check_resume)."""
    return start_record(
        identity.of(entry, spec.name, recipe.run.seed, **fold_of(recipe), **trial_of(options)),
        settings=settings,
        started_with={
            "recipe": effective_recipe_data(recipe, entry, settings),
            "data_files": identity.data_files,
            "labels": list(splits.labels),
        },
        checkpoints=spec.engine is None and trains_weights(entry.training_method),
    )


def _outcome(result, job, splits, recipe, entry, options, retries, clock) -> dict[str, Any]:
    """What a finished run's run.json says beside its start record."""
    settings = job.settings
    return {
        "wall_seconds": round(time.perf_counter() - clock, 2),
        "train_seconds": round(result.train_seconds, 2),
        "peak_memory_bytes": result.peak_memory_bytes,
        "peak_memory_kind": result.peak_memory_kind,
        # zoo's estimate before the run ("allocated_bytes" compares with cuda_max_allocated).
        "memory_estimate": options.memory.get((recipe.run.name, entry.label)),
        "parameters": result.parameters,
        "trainable_parameters": result.trainable_parameters,
        "method": entry.training_method,
        # What a trained model answers with (zoo.spec.HEADS); a prompting method trains none.
        "head": entry.answer_head if trains_weights(entry.training_method) else None,
        "device": result.device,
        "processes": world()[1],
        "distributed": recipe.distributed.strategy if world()[1] > 1 else None,
        "precision": result.precision,
        "seed": recipe.run.seed,
        # few-shot: examples per class asked for and held (the run directory's shots.json).
        "shots": result.shots,
        "rows": {
            "train": len(splits.train),
            "validation": len(splits.validation),
            "test": len(splits.test) if splits.test else 0,
        },
        "encodings": splits.encodings,
        "preprocess": list(recipe.data.preprocess or ()),
        # Where zoo's engine cut the texts (not zero-/few-shot scoring, not a custom engine).
        "truncation": (
            settings.truncation or DEFAULT_TRUNCATION
            if job.spec.engine is None and trains_weights(entry.training_method)
            else None
        ),
        "text_tokens": dict(result.text_tokens),
        # Multi-label: what joins a row's labels, and each label's decision threshold.
        "label_separator": splits.separator,
        "thresholds": (
            None
            if result.thresholds is None
            else dict(zip(splits.labels, result.thresholds, strict=True))
        ),
        "dropped_rows": splits.dropped,
        "data_notices": list(splits.notices),
        "settings": attrs.asdict(settings),
        "oom_retries": retries,
        "resumed_from": str(job.resume_from) if job.resume_from else None,
        "versions": versions(),
    }


def _attempt(
    recipe: Recipe,
    entry: ModelEntry,
    registry: Registry,
    splits: Splits,
    progress: Any,
    on_failure: Callable[[str, BaseException], None],
    options: RunOptions,
    identity: RecipeIdentity,
) -> ModelRun:
    """Run one model; a failure becomes a failed (or refused) ModelRun, reported on the way."""
    try:
        return run_model(recipe, entry, registry, splits, progress, options, identity=identity)
    except Exception as exc:
        progress.stop()
        what = failure(exc)  # run_model recorded it in the run directory, if it made one
        cause = what["error"]
        on_failure(entry.label, cause)
        return ModelRun(
            model=entry.label,
            status=what["status"],
            run_dir=what["run_dir"],
            reason=what["reason"],
            seed=recipe.run.seed,
            method=entry.training_method,
            exit_code=cause.exit_code if isinstance(cause, ZooError) else EXIT_RUN_FAILED,
            **fold_of(recipe),
            **trial_of(options),
        )


def failure(exc: BaseException) -> dict[str, Any]:
    """What a run that raised `exc` tells its listeners (and its run.json): status, reason, the
    error itself and the run directory it left, if any."""
    run_dir = exc.run_dir if isinstance(exc, FailedInRunDir | Interrupted) else None
    cause = (exc.__cause__ or exc) if isinstance(exc, FailedInRunDir) else exc
    if isinstance(exc, KeyboardInterrupt):
        status, reason = "interrupted", "interrupted by the user (Ctrl-C or SIGTERM)"
    else:
        status = "refused" if isinstance(cause, RunRefused) else "failed"
        reason = str(cause) if isinstance(cause, ZooError) else f"{type(cause).__name__}: {cause}"
    return {"status": status, "reason": reason, "error": cause, "run_dir": run_dir}


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
    # The device the runs train on, as the device probes found it (None: the built-in probe's).
    device: DeviceMemory | None = None
    # The run listeners that plugins registered (hook register_run_listeners).
    listeners: RunListeners = RunListeners()
    # The registered metrics (zoo.registry.collect_metrics): every split is scored with each.
    metrics: tuple[Metric, ...] = BUILTIN_METRICS
    # The trial of a search these runs are: its number and the values it tries.
    trial: tuple[int, dict[str, Any]] | None = None
    # The search's pruner for this trial (zoo.search): told each evaluation, says when to stop.
    prune: Callable[[int, Mapping[str, float]], bool] | None = attrs.field(default=None, eq=False)


def load_all_splits(
    recipe: Recipe, transforms: TransformRegistry | None = None
) -> dict[Unit, Splits]:
    """The data of every (seed, fold), read and checked before anything is trained or written,
    each text transformed by the recipe's data.preprocess (from `transforms`, the registered
    text transforms; zoo's own when not given)."""
    pipeline = (transforms or builtin_transforms()).pipeline(recipe.data.preprocess or ())
    return load_units(recipe.data, recipe.base_dir, recipe.run.all_seeds, pipeline)


def unit_recipe(recipe: Recipe, seed: int, fold: int | None) -> Recipe:
    """The recipe of one seed and fold: each is a recipe of its own, with its own validation
    split and run directories, and the recipe its run directories keep trains just that."""
    unit = attrs.evolve(recipe, run=attrs.evolve(recipe.run, seed=seed, seeds=None))
    if fold is None:
        return unit
    folds = attrs.evolve(recipe.data.validation, fold=fold)
    return attrs.evolve(unit, data=attrs.evolve(recipe.data, validation=folds))


def unit_label(
    entry: ModelEntry, recipe: Recipe, splits: Splits, seed: int, trial: str | None = None
) -> str:
    """How the progress lines name one run: the model, and its seed, fold and trial ("trial
    2/4") where the recipe has several."""
    parts = [f"seed {seed}"] if recipe.run.seeds is not None else []
    if splits.fold is not None:
        parts.append(f"fold {splits.fold}/{splits.folds}")
    if trial is not None:
        parts.append(trial)
    return f"{entry.label} ({', '.join(parts)})" if parts else entry.label


def run_recipe(
    recipe: Recipe,
    registry: Registry,
    progress_for: Callable[[str], Any],
    on_failure: Callable[[str, BaseException], None],
    options: RunOptions = RunOptions(),
    splits_for: dict[Unit, Splits] | None = None,
) -> list[ModelRun]:
    """Train every model of the recipe (once per seed, and per fold with cross-validation; then
    each seed's fold models as an ensemble on the test split); a model that fails is reported
    and the rest go on, and so do they when the results store cannot take a record (see
    Recorder)."""
    runs = []
    splits_for = splits_for or load_all_splits(recipe)
    identity = recipe_identity(recipe, registry)
    if options.resume is not None:
        identity = check_resume(options.resume, recipe, registry, splits_for, identity)
    # Only the main process of a distributed run records.
    recorder = Recorder(Path(identity.output_dir)) if is_main() else None
    if recipe.search is not None:  # its trials, one after another (no folds: refused)
        from zoo.search import search_here

        runs = search_here(
            recipe, registry, splits_for, progress_for, on_failure, options, identity, recorder
        )
    else:
        for (seed, fold), splits in splits_for.items():
            unit = unit_recipe(recipe, seed, fold)
            for entry in recipe.models:
                label = unit_label(entry, recipe, splits, seed)
                run = run_and_record(
                    label, unit, entry, registry, splits, progress_for, on_failure, options,
                    identity, recorder,
                )  # fmt: skip
                runs.append(run)
            if fold is not None and fold == max(recipe.data.validation.numbers) and recorder:
                made = _ensembles(recipe, registry, runs, seed, splits, identity, options)
                runs += [attrs.evolve(e, record=recorder.record(identity, e)) for e in made]
    if recorder is not None:
        recorder.summary()
    return runs


def run_and_record(
    label: str,
    unit: Recipe,
    entry: ModelEntry,
    registry: Registry,
    splits: Splits,
    progress_for: Callable[[str], Any],
    on_failure: Callable[[str, BaseException], None],
    options: RunOptions,
    identity: RecipeIdentity,
    recorder: Recorder | None,
) -> ModelRun:
    """Run one model of a unit (one seed and fold; one trial of a search, as `options` says)
    and record it; an interruption is recorded too, says how to go on, and goes on up."""
    progress = progress_for(label)
    try:
        run = _attempt(unit, entry, registry, splits, progress, on_failure, options, identity)
    except KeyboardInterrupt as exc:
        if recorder is None:
            raise
        progress.stop()
        run = ModelRun(
            model=entry.label,
            status="interrupted",  # type: ignore[arg-type]
            run_dir=exc.run_dir if isinstance(exc, Interrupted) else None,
            reason="interrupted by the user (Ctrl-C or SIGTERM)",
            seed=unit.run.seed,
            method=entry.training_method,
            **fold_of(unit),
            **trial_of(options),
        )
        _say_how_to_go_on(label, exc)
        recorder.record(identity, run)
        recorder.summary()
        raise
    if recorder is not None:
        run = attrs.evolve(run, record=recorder.record(identity, run))
    return run


def _ensembles(
    recipe: Recipe,
    registry: Registry,
    runs: list[ModelRun],
    seed: int,
    splits: Splits,
    identity: RecipeIdentity,
    options: RunOptions,
) -> list[ModelRun]:
    """Each model's ensemble of this seed's fold models, where all of them trained and there
    is a test split to score it on (a recipe of one fold has no ensemble)."""
    from zoo.ensemble import ensemble_run

    folds = recipe.data.validation
    assert isinstance(folds, Folds)
    if splits.test is None or folds.fold is not None:
        return []
    made = []
    for entry in recipe.models:
        mine = [r for r in runs if r.model == entry.label and r.seed == seed and r.fold]
        missing = [r.fold for r in mine if r.status != "ok" or r.test_probabilities is None]
        if missing or len(mine) != folds.folds:
            print(
                f"{entry.label!r} (seed {seed}): no ensemble of its {folds.folds} folds: fold "
                f"{', '.join(map(str, missing))} did not finish",
                file=sys.stderr,
            )
            continue
        spec = registry.spec_for(recipe, entry)
        made.append(
            ensemble_run(
                unit_recipe(recipe, seed, None),
                entry,
                spec,
                settings_for(recipe, entry, spec),
                sorted(mine, key=lambda r: r.fold or 0),
                splits,
                identity,
                for_task(options.metrics, multi_label=splits.separator is not None),
            )
        )
    return made


def exit_code(runs: list[ModelRun]) -> int:
    """`zoo run`'s exit code: 0 when every model went well; 1 when one failed while training;
    else the code of what stopped the others (4 weights missing, 6 refused, ...)."""
    codes = {run.exit_code for run in runs if run.status != "ok"}
    if not codes:
        return 0
    return EXIT_RUN_FAILED if EXIT_RUN_FAILED in codes else min(codes)


def _say_how_to_go_on(label: str, exc: KeyboardInterrupt) -> None:
    if not isinstance(exc, Interrupted):
        print(f"interrupted: {label!r} had not started training", file=sys.stderr)
        return
    why = why_not_resumable(exc.run_dir, exc.record)
    if why is None:
        print(f"interrupted: continue {label!r} with {exc.record['resume']}", file=sys.stderr)
    else:
        print(
            f"interrupted: {label!r} cannot be resumed ({why}); start it again with "
            f"{exc.record['restart']}",
            file=sys.stderr,
        )


class Recorder:
    """Records each run in the results store of one output directory.

    A store that cannot take a record (another process holds it past the retries, a full disk)
    costs no run: the next models still train, and a warning says how to record the run later
    with `zoo record RUN_DIR`, from its run directory, which holds all that a record needs. A
    file that is no results store at all is refused before anything trains.
    """

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.missed: list[Path] = []
        try:
            ResultsStore.in_dir(output_dir)
        except StoreError as exc:
            if not exc.busy:  # busy now: each record tries again
                raise

    def record(self, identity: RecipeIdentity, run: ModelRun) -> RunRecord:
        """Record the run (or say how to later); returns its record either way."""
        record = _store_record(identity, run)
        if run.run_dir is not None:
            try:  # from the run directory, so that `zoo record` would add exactly this
                record = store_record(read_run(run.run_dir, needs=("identity",)))
            except RunDirError as exc:
                print(f"warning: {exc.message}; recording what zoo knows of it", file=sys.stderr)
        try:
            record = attrs.evolve(
                record, run_id=ResultsStore.in_dir(self.output_dir).record(record)
            )
        except StoreError as exc:
            what = f"the {run.status} run of {run.model!r} (seed {run.seed})"
            if run.run_dir is None:
                later = "it made no run directory, so it cannot be recorded later"
            else:
                self.missed.append(run.run_dir)
                later = (
                    "its run directory holds all that the record needs; record it later with: "
                    + record_command([run.run_dir])
                )
            warning = f"warning: {what} was not recorded: {exc.message}\n  hint: {later}"
            print(warning, file=sys.stderr)
        return record

    def mark_best(self, chosen: int, others: list[int]) -> None:
        """Mark the best trial of a search in the store (its run.json says it too)."""
        try:
            ResultsStore.in_dir(self.output_dir).mark_best(chosen, others)
        except StoreError as exc:
            print(
                f"warning: the best trial (run #{chosen}) was not marked in the results store: "
                f"{exc.message}\n  hint: its run.json says best = true",
                file=sys.stderr,
            )

    def summary(self) -> None:
        if len(self.missed) > 1:
            print(
                f"warning: {len(self.missed)} runs were not recorded in the results store; "
                f"record them with: {record_command(self.missed)}",
                file=sys.stderr,
            )


def check_resume(
    run_dir: Path,
    recipe: Recipe,
    registry: Registry,
    splits_for: Mapping[Unit, Splits],
    identity: RecipeIdentity,
) -> RecipeIdentity:
    """Refuse to resume a run whose recipe, data files or labels differ from what it started
    with (its checkpoints hold a model, optimizer and data order made for those); returns the
    identity the resumed run keeps (the original recipe's hash, not that of RUN_DIR/recipe.toml).
    """
    run = read_run(run_dir, needs=("resumable",))
    if len(recipe.models) != 1:
        raise RunDirError(
            f"cannot resume {run_dir}: its {RECIPE} now has {len(recipe.models)} models; a run "
            "directory's recipe has one",
            hint=f"undo the change to {run_dir / RECIPE}",
        )
    [entry] = recipe.models
    [splits] = splits_for.values()
    started_with = run.record.get("started_with")
    if not isinstance(started_with, dict):
        print(
            f"warning: {run_dir / 'run.json'} does not say what the run started with (an older "
            "zoo made it): resuming without checking that the recipe and data are the same",
            file=sys.stderr,
        )
        return identity
    settings = settings_for(recipe, entry, registry.spec_for(recipe, entry))
    current = {
        "recipe": effective_recipe_data(recipe, entry, settings),
        "data_files": identity.data_files,
        "labels": list(splits.labels),
    }
    # Compared as run.json keeps them (JSON: lists for tuples).
    problems = resume_problems(started_with, json.loads(json.dumps(current)))
    if problems:
        count = f"{len(problems)} difference{'s' if len(problems) > 1 else ''}"
        raise RunDirError(
            f"cannot resume {run_dir}: it started with another recipe or data ({count})\n"
            + "\n".join(f"  - {problem}" for problem in problems),
            hint="its checkpoints were made for what it started with: undo the change, or train "
            f"afresh with {restart_command(run_dir)}",
        )
    return attrs.evolve(
        identity,
        recipe_hash=run.record.get("recipe_hash", identity.recipe_hash),
        data_fingerprint=run.record.get("data_fingerprint", identity.data_fingerprint),
    )


def data_files(recipe: Recipe) -> list[Path]:
    """The files that make up the data, for the fingerprint that groups comparable runs."""
    return list(data_paths(recipe).values())  # train, test, validation: the order counts


def _store_record(identity: RecipeIdentity, run: ModelRun) -> RunRecord:
    """The record of a run that made no run directory (or whose run.json cannot be read)."""
    return RunRecord(
        recipe_name=identity.recipe_name,
        recipe_hash=identity.recipe_hash,
        data_fingerprint=identity.data_fingerprint,
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
        trial=run.trial,
        params=run.params,
    )


def format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
