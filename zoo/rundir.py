"""What a run directory holds: the effective recipe, predictions, records and checkpoints.

Everything is written to a temporary file and renamed into place (zoo.files).
"""

from __future__ import annotations

import csv
import io
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import tomli_w

import zoo
from zoo.data import Splits
from zoo.errors import ZooError
from zoo.files import write_json, write_text
from zoo.recipe import ModelEntry, Recipe, TrainingConfig, recipe_to_dict


def versions() -> dict[str, str]:
    names = ("torch", "transformers", "datasets", "evaluate", "accelerate", "scikit-learn")
    found = {"python": platform.python_version(), "zoo": zoo.__version__}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def mark_interrupted(run_dir: Path, label: str) -> None:
    record = {
        "model": label,
        "status": "interrupted",
        "reason": "interrupted by the user (Ctrl-C or SIGTERM)",
        "resume": f"zoo run --resume {run_dir}",
    }
    write_json(run_dir / "run.json", record)


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
    # row and line point at the test file: its data row (0 = the first below the header,
    # counting rows left out) and the line where that row starts.
    writer.writerow(["row", "line", "text", "label", "predicted", "confidence"])
    test = splits.test
    assert test is not None
    for i, text in enumerate(test.texts):
        p = predicted[i]
        confidence = f"{probabilities[i][p]:.6f}"
        writer.writerow(
            [test.rows[i], test.lines[i], text, test.labels[i], splits.labels[p], confidence]
        )
    return out.getvalue()


def write_outputs(
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


def last_checkpoint(run_dir: Path) -> Path:
    """The newest complete Trainer checkpoint of an interrupted run directory."""
    complete = [
        path
        for path in (run_dir / "checkpoints").glob("checkpoint-*")
        if (path / "trainer_state.json").exists()  # written last: the checkpoint is whole
    ]
    if not complete:
        raise ZooError(
            f"{run_dir} has no complete checkpoint to resume from",
            hint="the run was stopped before its first evaluation; start it again with zoo run",
        )
    return max(complete, key=lambda path: int(path.name.rsplit("-", 1)[1]))
