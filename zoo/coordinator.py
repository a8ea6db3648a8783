"""The coordinating process of a run over an executor (`zoo run --jobs N`, `--executor`): it
expands the recipe into work units (model x seed x fold x trial), hands them to the executor a
few at a time, records each result in the results store as it arrives (the only process that
writes it), tells each search its trials' scores, and chooses each search's best trial.

A unit that fails is recorded with its reason and the others go on. `skip_done` leaves out
the units that the store records as finished for the same recipe and data, so a coordinator
that was killed loses nothing: run it again with --skip-done.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from zoo.data import Splits
from zoo.errors import EXIT_RUN_FAILED
from zoo.recipe import Recipe
from zoo.registry import Registry
from zoo.runner import (
    ModelRun,
    RecipeIdentity,
    Recorder,
    RunOptions,
    _ensembles,
    recipe_identity,
)
from zoo.store import RunRecord
from zoo.units import Unit, read_result, result_path, write_unit

POLL_SECONDS = 0.2


@attrs.define
class _Search:
    """One model's search for one seed: its study, and the trials asked and told so far."""

    entry: int
    seed: int
    study: Any
    space: dict[str, Any]
    total: int
    metric: str
    maximize: bool
    asked: int = 0
    pending: dict[int, Any] = attrs.field(factory=dict)  # trial number -> optuna trial
    runs: dict[int, ModelRun] = attrs.field(factory=dict)  # trial number -> its run
    pruned: set[int] = attrs.field(factory=set)  # trial numbers the pruner stopped


class Plan:
    """The units of a recipe in a fixed order, a search's trials asked as slots free up (so
    that every executor asks them in the same order and gets the same values)."""

    def __init__(
        self,
        recipe: Recipe,
        registry: Registry,
        splits_for: dict[Any, Splits],
        identity: RecipeIdentity,
        options: RunOptions,
        finished: dict[tuple[Any, ...], RunRecord],
    ) -> None:
        self.recipe = recipe
        self.finished = finished
        self.skipped: list[ModelRun] = []
        self.plain: list[Unit] = []
        self.searches: list[_Search] = []
        self.number = 0
        for seed, fold in splits_for:
            for index in range(len(recipe.models)):
                if recipe.search is not None:
                    self.searches.append(self._search(index, seed, registry, identity, options))
                    continue
                unit = self._unit(index, seed, fold)
                if unit.key in finished:
                    self.skipped.append(run_of_record(finished[unit.key]))
                    self.number -= 1
                else:
                    self.plain.append(unit)

    def _unit(self, index: int, seed: int, fold: int | None, **trial: Any) -> Unit:
        self.number += 1
        label = self.recipe.models[index].label
        return Unit(number=self.number, model=index, label=label, seed=seed, fold=fold, **trial)

    def _search(self, index, seed, registry, identity, options) -> _Search:
        from zoo.search import distributions, study_for, trial_count

        assert self.recipe.search is not None
        entry = self.recipe.models[index]
        found, metric, maximize = study_for(self.recipe, entry, seed, registry, options, identity)
        return _Search(
            entry=index,
            seed=seed,
            study=found,
            space=distributions(self.recipe.search),
            total=trial_count(self.recipe.search),
            metric=metric,
            maximize=maximize,
        )

    def next_unit(self) -> Unit | None:
        """The next unit to start, or None when every unit has been handed out."""
        if self.plain:
            return self.plain.pop(0)
        for search in self.searches:
            while search.asked < search.total:
                search.asked += 1
                trial = search.study.ask(search.space)
                params = {key: trial.params[key] for key in search.space}
                unit = self._unit(
                    search.entry, search.seed, None, trial=search.asked, params=params
                )
                done = self.finished.get(unit.key)
                if done is None:
                    search.pending[search.asked] = trial
                    return unit
                # Finished before (--skip-done): told again as it scored, not trained again.
                self.number -= 1
                run = run_of_record(done)
                self.skipped.append(run)
                self._tell(search, trial, search.asked, run)
        return None

    def search_of(self, unit: Unit) -> _Search | None:
        """The search a trial's unit belongs to (None for a unit of no search)."""
        if unit.trial is None:
            return None
        return next(s for s in self.searches if (s.entry, s.seed) == (unit.model, unit.seed))

    def done(self, unit: Unit, run: ModelRun, pruned_at: int | None = None) -> None:
        """Tell the unit's search how its trial did; `pruned_at`: the step where the pruner
        stopped it."""
        search = self.search_of(unit)
        if search is not None:
            assert unit.trial is not None
            trial = search.pending.pop(unit.trial)
            self._tell(search, trial, unit.trial, run, pruned_at)

    def _tell(
        self, search: _Search, trial: Any, number: int, run: ModelRun, pruned_at: int | None = None
    ) -> None:
        from zoo.search import optuna, say_pruned, validation_score

        value = validation_score(run, search.metric)
        states = optuna().trial.TrialState
        if pruned_at is not None:
            search.study.tell(trial, state=states.PRUNED)
            search.pruned.add(number)
            say_pruned(run, pruned_at, search.metric)
        elif value is None:
            search.study.tell(trial, state=states.FAIL)
        else:
            search.study.tell(trial, value)
        search.runs[number] = run

    def choose(self, recorder: Recorder | None) -> list[ModelRun]:
        """Each search's trials, the best marked (see zoo.search.choose)."""
        from zoo.search import choose

        chosen = []
        for search in self.searches:
            numbers = sorted(search.runs)
            if numbers:
                assert self.recipe.search is not None
                chosen += choose(
                    [search.runs[n] for n in numbers],
                    search.metric,
                    search.maximize,
                    self.recipe.search,
                    recorder,
                    pruned={i for i, n in enumerate(numbers) if n in search.pruned},
                )
        return chosen


def run_of_record(record: RunRecord) -> ModelRun:
    """A finished unit as the store recorded it (one that --skip-done leaves out)."""
    from zoo.runner import split_summary

    return ModelRun(
        model=record.model,
        status=record.status,
        run_dir=None if record.run_dir is None else Path(record.run_dir),
        metrics={
            split: split_summary(record.metrics.get(split)) for split in ("test", "validation")
        },
        reason=record.reason,
        train_seconds=record.train_seconds,
        peak_memory_bytes=record.peak_memory_bytes,
        parameters=record.parameters,
        seed=record.seed,
        method=record.method,
        settings=dict(record.settings),
        record=record,
        fold=record.fold,
        folds=record.folds,
        trial=record.trial,
        params=None if record.params is None else dict(record.params),
    )


def finished_units(recipe: Recipe, identity: RecipeIdentity) -> dict[tuple[Any, ...], RunRecord]:
    """The units the store records as finished (status ok) for this recipe and data, by key."""
    from zoo.store import STORE_NAME, ResultsStore

    path = Path(identity.output_dir) / STORE_NAME
    if not path.is_file():
        return {}
    records = ResultsStore.read_only(path).runs(data_fingerprint=identity.data_fingerprint)
    return {
        (r.model, r.seed, r.fold, r.trial): r
        for r in records
        if r.recipe_hash == identity.recipe_hash and r.status == "ok" and not r.ensemble
    }


def coordinate(
    recipe: Recipe,
    registry: Registry,
    splits_for: dict[Any, Splits],
    options: RunOptions,
    *,
    executor: Any,
    jobs: int,
    folder: Path,
    skip_done: bool,
    say: Callable[[str], None],
    nproc: int = 1,
) -> list[ModelRun]:
    """Run every unit of `recipe` through `executor`, `jobs` at a time, each with `nproc`
    processes (see the module)."""
    identity = recipe_identity(recipe, registry)
    recorder = Recorder(Path(identity.output_dir))
    finished = finished_units(recipe, identity) if skip_done else {}
    plan = Plan(recipe, registry, splits_for, identity, options, finished)
    if plan.skipped:
        say(f"{len(plan.skipped)} unit(s) finished before, left out (--skip-done)")
    running: dict[int, tuple[Unit, Path, Any]] = {}
    runs: list[ModelRun] = []
    try:
        while True:
            for slot in range(jobs):
                if slot in running:
                    continue
                unit = plan.next_unit()
                if unit is None:
                    break
                path = write_unit(folder, unit, recipe, identity, options.oom_retries, nproc)
                running[slot] = (unit, path, executor.submit(path, slot))
                say(f"unit {unit.number} started: {describe(unit)}")
            if not running:
                break
            time.sleep(POLL_SECONDS)
            for slot, (unit, path, handle) in list(running.items()):
                if not executor.done(handle):
                    continue
                del running[slot]
                run = _result(unit, path, executor.failure(handle))
                run = attrs.evolve(run, record=recorder.record(identity, run))
                plan.done(unit, run)
                runs.append(run)
                say(f"unit {unit.number} {run.status}: {describe(unit)}")
    except KeyboardInterrupt:
        for _unit, _path, handle in running.values():
            executor.cancel(handle)
        done = ", ".join(str(r.model) for r in runs) or "none"
        print(
            f"interrupted: {len(runs)} unit(s) finished and are recorded ({done}); "
            f"{len(running)} stopped; run again with --skip-done to do the rest",
            file=sys.stderr,
        )
        raise
    finally:
        executor.close()
    # The runs as the searches marked them (the best trial of each).
    marked = {(r.model, r.seed, r.trial): r for r in plan.choose(recorder)}
    runs = [marked.get((r.model, r.seed, r.trial), r) for r in runs]
    for seed, fold in splits_for:
        if fold is not None and fold == max(recipe.data.validation.numbers):
            every = plan.skipped + runs
            for ensemble in _ensembles(
                recipe, registry, every, seed, splits_for[(seed, fold)], identity, options
            ):
                runs.append(attrs.evolve(ensemble, record=recorder.record(identity, ensemble)))
    recorder.summary()
    return runs


def describe(unit: Unit) -> str:
    parts = [f"seed {unit.seed}"]
    if unit.fold is not None:
        parts.append(f"fold {unit.fold}")
    if unit.trial is not None:
        values = ", ".join(f"{k}={v}" for k, v in (unit.params or {}).items())
        parts.append(f"trial {unit.trial} ({values})")
    return f"{unit.label} ({', '.join(parts)})"


def _result(unit: Unit, path: Path, why: str | None) -> ModelRun:
    """The unit's run as its worker wrote it; a worker that wrote none failed."""
    if why is None and result_path(path).is_file():
        return read_result(path)
    return ModelRun(
        model=unit.label,
        status="failed",
        reason=f"the unit's worker failed: {why or 'it wrote no result'}",
        exit_code=EXIT_RUN_FAILED,
        seed=unit.seed,
        fold=unit.fold,
        trial=unit.trial,
        params=unit.params,
    )
