"""Work units: one model of a recipe for one seed, fold and trial, written to a file that any
process can run (`run_unit_file`), and its result written beside it.

The coordinating process (`zoo.coordinator`) writes the unit files and reads the results; the
workers train and write run directories, never the results store.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from zoo.files import write_text

UNIT_FORMAT = 1


@attrs.frozen(kw_only=True)
class Unit:
    """What one worker trains: the entry `model` (its index in the recipe) for `seed` and
    `fold`, with `trial`'s values when it is a trial of a search."""

    number: int  # the unit's place in the run: 1, 2, ...
    model: int  # index into recipe.models
    label: str  # the entry's label, as records name it
    seed: int
    fold: int | None = None
    trial: int | None = None
    params: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, int, int | None, int | None]:
        """What a finished record of the same recipe and data must match to count as done."""
        return (self.label, self.seed, self.fold, self.trial)


def write_unit(
    folder: Path, unit: Unit, recipe: Any, identity: Any, oom_retries: int, nproc: int = 1
) -> Path:
    """The unit's file: the whole recipe and the folder its paths are relative to, the unit,
    and the recipe's identity (so that its record is the coordinator's, whatever process
    trains it)."""
    from zoo.recipe import recipe_to_dict

    path = folder / f"unit-{unit.number:04d}.json"
    write_text(
        path,
        json.dumps(
            {
                "format": UNIT_FORMAT,
                "recipe": recipe_to_dict(recipe),
                "base_dir": str(recipe.base_dir),
                "source": recipe.source,
                "unit": attrs.asdict(unit),
                "identity": attrs.asdict(identity),
                "oom_retries": oom_retries,
                "nproc": nproc,  # processes the unit trains with (torchrun), one per GPU
            },
            ensure_ascii=False,
            default=str,
        ),
    )
    return path


def result_path(unit_file: Path) -> Path:
    return unit_file.with_name(unit_file.stem + ".result.json")


def run_unit_file(unit_file: str | Path) -> str:
    """Train the unit of `unit_file` in this process and write its result beside it; returns
    the result's path. What a worker runs: `python -m zoo.units UNIT_FILE`, a submitit job,
    a Ray task."""
    from rich.console import Console

    from zoo.api import Plugins, report_failure
    from zoo.engine.distributed import is_main, launch, world
    from zoo.events import collect_run_listeners
    from zoo.memory.probe import probe_device
    from zoo.recipe import recipe_from_raw
    from zoo.report import NoProgress
    from zoo.runner import RecipeIdentity, RunOptions, _attempt, load_all_splits, unit_recipe

    unit_file = Path(unit_file)
    found = json.loads(unit_file.read_text(encoding="utf-8"))
    if found.get("format") != UNIT_FORMAT:
        raise ValueError(f"{unit_file}: unit format {found.get('format')!r}, not {UNIT_FORMAT}")
    nproc = found.get("nproc", 1)
    if nproc > 1 and world()[1] == 1:  # a distributed unit: its processes under torchrun
        code = launch(nproc, [str(unit_file)], module="zoo.units")
        if code != 0:
            raise RuntimeError(f"{unit_file}: its {nproc} processes exited with {code}")
        return str(result_path(unit_file))
    unit = Unit(**found["unit"])
    plugins = Plugins.load(warn=False)
    recipe = recipe_from_raw(
        found["recipe"],
        found["source"],
        Path(found["base_dir"]),
        model_names=plugins.registry.names(),
        metric_names=plugins.metrics.names(),
        transform_names=plugins.transforms.names(),
    )
    one = unit_recipe(recipe, unit.seed, unit.fold)
    entry = recipe.models[unit.model]
    if unit.params:
        entry = attrs.evolve(entry, **unit.params)
    splits = load_all_splits(one, plugins.transforms)[(unit.seed, unit.fold)]
    options = RunOptions(
        oom_retries=found["oom_retries"],
        device=probe_device(plugins.pm),
        listeners=collect_run_listeners(plugins.pm),
        metrics=plugins.metrics.metrics,
        trial=None if unit.trial is None else (unit.trial, dict(unit.params or {})),
    )
    identity = RecipeIdentity(**found["identity"])
    run = _attempt(
        one,
        entry,
        plugins.registry,
        splits,
        NoProgress(),
        report_failure(Console(stderr=True)),
        options,
        identity,
    )
    path = result_path(unit_file)
    if is_main():  # the main process of a distributed unit speaks for all of them
        write_text(path, json.dumps(run_to_json(run), ensure_ascii=False, default=str))
    return str(path)


def run_to_json(run: Any) -> dict[str, Any]:
    """A ModelRun, whole: what the coordinator needs to record it and make ensembles."""
    probabilities = run.test_probabilities
    return {
        **run.to_json(),
        "method": run.method,
        "reports": run.reports,
        "settings": run.settings,
        "exit_code": run.exit_code,
        "test_probabilities": None if probabilities is None else np.asarray(probabilities).tolist(),
    }


def run_from_json(found: dict[str, Any]) -> Any:
    from zoo.runner import ModelRun

    probabilities = found.pop("test_probabilities", None)
    found.pop("best", None)
    run_dir = found.pop("run_dir", None)
    return ModelRun(
        **found,
        run_dir=None if run_dir is None else Path(run_dir),
        test_probabilities=None if probabilities is None else np.asarray(probabilities),
    )


def read_result(unit_file: Path) -> Any:
    """The ModelRun a worker wrote for `unit_file`."""
    return run_from_json(json.loads(result_path(unit_file).read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m zoo.units UNIT_FILE", file=sys.stderr)
        return 2
    run_unit_file(args[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
