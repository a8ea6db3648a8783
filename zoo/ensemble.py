"""The ensemble of one seed's fold models: the mean of their test probabilities, scored as one
more run with a run directory and record of its own (`data.validation = { folds = K }`).

It trains nothing and keeps no model: its run.json names the fold run directories it averaged
(`ensemble_of`), its metrics.json has test scores alone (the fold models validated on
different rows), and what it cost is theirs together: the sum of their train times and
parameters (all of them predict), the largest of their peak memories.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from zoo.files import new_run_dir, write_json, write_text
from zoo.metrics import THRESHOLDS, Metric
from zoo.recipe import ModelEntry, Recipe, TrainingConfig
from zoo.rundir import (
    ENSEMBLE_OF,
    LABELS,
    LOG_HISTORY,
    METRICS,
    PREDICTIONS,
    RECIPE,
    effective_recipe,
    effective_recipe_data,
    labels_json,
    predictions_csv,
    run_record,
    start_record,
    versions,
    write_record,
)
from zoo.spec import ModelSpec

if TYPE_CHECKING:
    from zoo.data import Splits
    from zoo.runner import ModelRun, RecipeIdentity

STEM = "ensemble"


def mean_probabilities(fold_runs: Sequence[ModelRun]) -> np.ndarray:
    """The fold models' test probabilities averaged row by row (rows x labels)."""
    stacked = np.stack([np.asarray(run.test_probabilities, dtype=float) for run in fold_runs])
    return stacked.mean(axis=0)


def mean_thresholds(fold_runs: Sequence[ModelRun], labels: Sequence[str]) -> tuple[float, ...]:
    """Multi-label: each label's decision threshold, the mean of the fold models' (each tuned
    on its own fold's validation rows)."""
    found = [run.reports["test"][THRESHOLDS] for run in fold_runs]
    return tuple(float(np.mean([each[name] for each in found])) for name in labels)


def ensemble_run(
    recipe: Recipe,
    entry: ModelEntry,
    spec: ModelSpec,
    settings: TrainingConfig,
    fold_runs: Sequence[ModelRun],
    splits: Splits,
    identity: RecipeIdentity,
    metrics: tuple[Metric, ...],
) -> ModelRun:
    """Score the ensemble of `fold_runs` (one seed's K fold models, fold by fold) on the test
    split and write its run directory (`recipe` is that seed's, of all folds)."""
    from zoo.engine.jobs import score_split
    from zoo.runner import ModelRun, split_summary, test_report_with_intervals

    assert splits.test is not None
    clock = time.perf_counter()
    seed, folds = recipe.run.seed, len(fold_runs)
    thresholds = mean_thresholds(fold_runs, splits.labels) if splits.separator else None
    report, predicted, probabilities = score_split(
        mean_probabilities(fold_runs),
        splits.test.labels,
        splits.labels,
        metrics,
        separator=splits.separator,
        thresholds=thresholds,
    )
    report = test_report_with_intervals(report, splits, predicted, probabilities, metrics, seed)
    run_dir = new_run_dir(
        recipe.path(recipe.run.output_dir) / recipe.run.name, f"{entry.label}-seed{seed}-{STEM}"
    )
    start = start_record(
        identity.of(entry, spec.name, seed, fold=None, folds=folds),
        settings=settings,
        started_with={
            "recipe": effective_recipe_data(recipe, entry, settings),
            "data_files": identity.data_files,
            "labels": list(splits.labels),
        },
        checkpoints=False,
    )
    seconds = [run.train_seconds for run in fold_runs if run.train_seconds is not None]
    memory = [run.peak_memory_bytes for run in fold_runs if run.peak_memory_bytes is not None]
    parameters = [run.parameters for run in fold_runs if run.parameters is not None]
    record = run_record(
        start,
        "ok",
        **{ENSEMBLE_OF: [str(run.run_dir) for run in fold_runs]},
        wall_seconds=round(time.perf_counter() - clock, 2),
        train_seconds=round(sum(seconds), 2) if seconds else None,
        peak_memory_bytes=max(memory) if memory else None,
        parameters=sum(parameters) if len(parameters) == folds else None,
        method=entry.training_method,
        seed=seed,
        rows={"train": 0, "validation": 0, "test": len(splits.test)},
        encodings=splits.encodings,
        dropped_rows=splits.dropped,
        data_notices=list(splits.notices),
        versions=versions(),
    )
    write_text(run_dir / RECIPE, effective_recipe(recipe, entry, settings))
    write_json(run_dir / LABELS, labels_json(splits, thresholds))
    write_json(run_dir / METRICS, {"validation": None, "test": report})
    write_json(run_dir / LOG_HISTORY, [])
    write_text(run_dir / PREDICTIONS, predictions_csv(splits, predicted, probabilities))
    write_record(run_dir, record)  # last: "ok" means every file is there
    return ModelRun(
        model=entry.label,
        status="ok",
        run_dir=run_dir,
        metrics={"test": split_summary(report), "validation": None},
        train_seconds=record["train_seconds"],
        peak_memory_bytes=record["peak_memory_bytes"],
        parameters=record["parameters"],
        seed=seed,
        method=entry.training_method,
        reports={"test": report, "validation": None},
        settings=start["settings"],
        folds=folds,
    )
