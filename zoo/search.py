"""Hyperparameter search ([search]): each trial a run of its own, the values chosen by an
Optuna study (embedded: in memory, or a journal file in the output directory; no server),
the best trial picked on the validation split alone.

Optuna is imported only when a recipe searches (``pip install "zoo-classify[search]"``).
"""

from __future__ import annotations

import itertools
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from zoo.data import Splits
from zoo.errors import RunRefused
from zoo.metrics import DEFAULT_METRIC
from zoo.recipe import ModelEntry, Recipe, SearchRange, SearchSection, grid_values, settings_for
from zoo.registry import Registry
from zoo.rundir import MODEL, RUN_JSON, read_run, write_record

JOURNAL = "search.journal"  # OUTPUT_DIR/RUN_NAME/search.journal with storage = "journal"
PRUNE_AFTER = 2  # trials that finish before the median pruner compares (search.pruner)


def optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise RunRefused(
            "the recipe's [search] needs Optuna, which is not installed",
            hint='pip install optuna (or zoo with its search extra: pip install "zoo-classify'
            '[search]")',
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # zoo says what each trial did
    return optuna


def trial_count(search: SearchSection) -> int:
    """How many trials: as given, or every point of a grid."""
    if search.trials is not None:
        return search.trials
    count = 1
    for values in search.space.values():
        count *= len(grid_values(values))
    return count


def distributions(search: SearchSection) -> dict[str, Any]:
    """Optuna's distribution of each key of the space, in the space's order."""
    found = {}
    for key, values in search.space.items():
        distribution = optuna().distributions
        if not isinstance(values, SearchRange):
            found[key] = distribution.CategoricalDistribution(list(values))
        elif values.integer:
            step = int(values.step or 1)
            found[key] = distribution.IntDistribution(
                int(values.low), int(values.high), log=values.log, step=step
            )
        else:
            found[key] = distribution.FloatDistribution(
                values.low, values.high, log=values.log, step=values.step
            )
    return found


def sampler(search: SearchSection, seed: int) -> Any:
    samplers = optuna().samplers
    # A grid's points are enqueued in order (`grid_points`): Optuna's GridSampler stops the
    # study from within, which it allows only inside study.optimize, and zoo asks and tells.
    if search.sampler == "tpe":
        return samplers.TPESampler(seed=seed)
    return samplers.RandomSampler(seed=seed)


def grid_points(search: SearchSection) -> list[dict[str, Any]]:
    """Every combination of a grid's values, the first key varying slowest."""
    keys = list(search.space)
    values = [grid_values(search.space[key]) for key in keys]
    return [dict(zip(keys, point, strict=True)) for point in itertools.product(*values)]


def study(search: SearchSection, *, seed: int, maximize: bool, name: str, folder: Path) -> Any:
    """A new study for one model and seed: in memory, or in the journal file in `folder`."""
    storage = None
    if search.storage == "journal":
        folder.mkdir(parents=True, exist_ok=True)
        journal = optuna().storages.journal
        storage = optuna().storages.JournalStorage(
            journal.JournalFileBackend(str(folder / JOURNAL))
        )
    pruner = (
        optuna().pruners.MedianPruner(n_startup_trials=PRUNE_AFTER, n_warmup_steps=0)
        if search.pruner == "median"
        else optuna().pruners.NopPruner()
    )
    found = optuna().create_study(
        storage=storage,
        sampler=sampler(search, seed),
        pruner=pruner,
        study_name=name,
        direction="maximize" if maximize else "minimize",
    )
    if search.sampler == "grid":
        for point in grid_points(search)[: trial_count(search)]:
            found.enqueue_trial(point)
    return found


def study_for(
    recipe: Recipe, entry: ModelEntry, seed: int, registry: Registry, options: Any, identity: Any
) -> tuple[Any, str, bool]:
    """The study of one model's search for one seed, the validation metric it compares the
    trials on (training.metric) and whether higher is better."""
    from zoo.runner import unit_recipe

    assert recipe.search is not None
    unit = unit_recipe(recipe, seed, None)
    metric = settings_for(unit, entry, registry.spec_for(unit, entry)).metric or DEFAULT_METRIC
    maximize = next(m for m in options.metrics if m.name == metric).higher_is_better
    found = study(
        recipe.search,
        seed=seed,
        maximize=maximize,
        name=f"{recipe.run.name}/{entry.label}/seed{seed}/{identity.recipe_hash[:12]}",
        folder=recipe.path(recipe.run.output_dir) / recipe.run.name,
    )
    return found, metric, maximize


def search_here(
    recipe: Recipe,
    registry: Registry,
    splits_for: dict[Any, Splits],
    progress_for: Callable[[str], Any],
    on_failure: Callable[[str, BaseException], None],
    options: Any,
    identity: Any,
    recorder: Any,
) -> list[Any]:
    """Every trial of the recipe's searches in this process, one after another, each run and
    recorded as it ends, its scores told to its study (and to the pruner as it trains); then
    each search's best by the validation metric is marked (see `choose`). The trials come from
    the coordinator's plan, as an executor's would."""
    from zoo.coordinator import Plan
    from zoo.runner import run_and_record, unit_label, unit_recipe

    search = recipe.search
    assert search is not None
    plan = Plan(recipe, registry, splits_for, identity, options, finished={})
    while (unit := plan.next_unit()) is not None:
        state = plan.search_of(unit)
        assert state is not None and unit.trial is not None
        splits = splits_for[(unit.seed, unit.fold)]
        entry = attrs.evolve(recipe.models[unit.model], **(unit.params or {}))
        label = unit_label(entry, recipe, splits, unit.seed, f"trial {unit.trial}/{state.total}")
        stopped: list[int] = []
        pruner = pruner_of(state.pending[unit.trial], state.metric, stopped)
        run = run_and_record(
            label,
            unit_recipe(recipe, unit.seed, unit.fold),
            entry,
            registry,
            splits,
            progress_for,
            on_failure,
            attrs.evolve(
                options,
                trial=(unit.trial, dict(unit.params or {})),
                prune=None if search.pruner == "none" else pruner,
            ),
            identity,
            recorder,
        )
        plan.done(unit, run, pruned_at=stopped[0] if stopped else None)
    return plan.choose(recorder)


def pruner_of(trial: Any, metric: str, stopped: list[int]) -> Callable[[int, Any], bool]:
    """What a trial's run tells at each evaluation: its validation metric goes to the study's
    pruner, and the step where the pruner says stop is kept in `stopped`."""

    def prune(step: int, metrics: Any) -> bool:
        value = metrics.get(metric)
        if value is None or stopped:
            return bool(stopped)
        trial.report(float(value), step)
        if trial.should_prune():
            stopped.append(step)
            return True
        return False

    return prune


def say_pruned(run: Any, step: int, metric: str) -> None:
    """run.json and stderr say where the pruner stopped the trial."""
    print(
        f"{run.model}: trial {run.trial} pruned at step {step} (its validation {metric} was "
        "below the median of the earlier trials' there)",
        file=sys.stderr,
    )
    if run.run_dir is not None and (Path(run.run_dir) / RUN_JSON).is_file():
        record = read_run(run.run_dir).record | {"pruned_at_step": step}
        write_record(Path(run.run_dir), record)


def validation_score(run: Any, metric: str) -> float | None:
    """The trial's score that the search compares: its validation metric (never the test's)."""
    if run.status != "ok":
        return None
    value = (run.metrics.get("validation") or {}).get(metric)
    return None if value is None else float(value)


def best_index(scores: list[float | None], *, maximize: bool) -> int | None:
    """The trial with the best score; a tie goes to the earliest; None if none has one."""
    scored = [(i, s) for i, s in enumerate(scores) if s is not None]
    if not scored:
        return None
    best = (max if maximize else min)(s for _, s in scored)
    return next(i for i, s in scored if s == best)


def choose(
    runs: list[Any],
    metric: str,
    maximize: bool,
    search: SearchSection,
    recorder: Any,
    *,
    pruned: set[int] = frozenset(),  # type: ignore[assignment]
) -> list[Any]:
    """Mark the best trial (run.json, the results store, the returned runs), never one that
    was pruned (the indices in `pruned`); remove the other trials' model weights unless every
    trial's are to be kept."""
    scores = [None if i in pruned else validation_score(r, metric) for i, r in enumerate(runs)]
    chosen = best_index(scores, maximize=maximize)
    if chosen is None:
        print(f"{runs[0].model}: no trial of the search finished: none is chosen", file=sys.stderr)
        return runs
    marked = []
    for i, run in enumerate(runs):
        best = i == chosen
        if run.run_dir is not None and (Path(run.run_dir) / RUN_JSON).is_file():
            record = read_run(run.run_dir).record | {"best": best}
            if not best and search.keep_models == "best" and (Path(run.run_dir) / MODEL).is_dir():
                shutil.rmtree(Path(run.run_dir) / MODEL)
                record["model_removed"] = (
                    f"not the best trial of the search on validation {metric} "
                    "(search.keep_models = 'best')"
                )
            write_record(Path(run.run_dir), record)
        marked.append(attrs.evolve(run, best=best))
    if recorder is not None:
        ids = [r.record.run_id for r in runs if r.record is not None and r.record.run_id]
        best_id = runs[chosen].record.run_id if runs[chosen].record is not None else None
        if best_id is not None:
            recorder.mark_best(best_id, [i for i in ids if i != best_id])
    best_run = marked[chosen]
    print(
        f"{best_run.model}: the search chose trial {best_run.trial} "
        f"({', '.join(f'{k}={v}' for k, v in (best_run.params or {}).items())}) on validation "
        f"{metric} {validation_score(best_run, metric):.4f}",
        file=sys.stderr,
    )
    return marked
