"""Experiment trackers a recipe can ask for (``training.report_to``): their names, the packages
each needs and the extra that installs them, and where their files go.

Checking that a tracker's package is there is cheap (`importlib.util.find_spec`, nothing is
imported), so `zoo run` refuses a missing one before any data or model loads.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path

import attrs

from zoo.errors import Problem

# What `pip install` line installs an extra in a checkout of zoo (zoo is not on PyPI).
INSTALL = "pip install -e '.[{extra}]'"
# The run directory's folder that the Trainer's TensorBoard callback writes its event files to.
TENSORBOARD_DIR = "tensorboard"
# The MLflow store under the output directory, unless MLFLOW_TRACKING_URI names another.
MLFLOW_DIR = "mlruns"


@attrs.frozen(kw_only=True)
class Tracker:
    name: str
    modules: tuple[str, ...]  # any one of them will do
    extra: str  # zoo's optional extra that installs one


TRACKERS = {
    # transformers' TensorBoardCallback takes torch.utils.tensorboard (needs `tensorboard`),
    # else tensorboardX: the far lighter one is zoo's extra.
    "tensorboard": Tracker(
        name="tensorboard", modules=("tensorboard", "tensorboardX"), extra="tensorboard"
    ),
    # mlflow-skinny and mlflow both install the module `mlflow`.
    "mlflow": Tracker(name="mlflow", modules=("mlflow",), extra="mlflow"),
}


def unknown_tracker(name: str) -> str:
    """What to say of a name in training.report_to that is no tracker zoo supports."""
    guess = difflib.get_close_matches(name.lower(), sorted(TRACKERS), n=1)
    hint = f"did you mean {guess[0]!r}? " if guess else ""
    listed = ", ".join(repr(n) for n in TRACKERS)
    return f"unknown tracker {name!r} ({hint}zoo reports to {listed})"


def is_installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing(names: Iterable[str]) -> list[Tracker]:
    """The trackers among `names` whose package is not installed."""
    trackers = [TRACKERS[name] for name in dict.fromkeys(names)]
    return [t for t in trackers if not any(is_installed(m) for m in t.modules)]


def missing_problems(recipe) -> list[Problem]:
    """A problem for each report_to in the recipe ([training] and each model entry) that names
    a tracker whose package is not installed, naming the extra that installs it."""
    places = [("training.report_to", recipe.training.report_to)]
    places += [(f"models[{i}].report_to", e.report_to) for i, e in enumerate(recipe.models)]
    problems = []
    for path, names in places:
        for tracker in missing(names or ()):
            modules = " or ".join(tracker.modules)
            problems.append(
                Problem(
                    path,
                    f"{tracker.name!r} needs the package {modules}, which is not installed: "
                    f"{INSTALL.format(extra=tracker.extra)}",
                )
            )
    return problems


def mlflow_tracking_uri(output_dir: Path) -> str:
    """Where MLflow logs a run of this output directory: MLFLOW_TRACKING_URI, else a file store
    in OUTPUT_DIR/mlruns."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (output_dir / MLFLOW_DIR).resolve().as_uri()
