"""`zoo run` from the command line with the real wheel-shipped models, on small slices."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from zoo.cli import main
from zoo.store import ResultsStore

DEMO_DATA = Path(__file__).parent.parent / "recipes" / "demo-data"


def write_slice(source: Path, target: Path, rows: int, *, delimiter: str = ",") -> None:
    with source.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        picked = list(itertools.islice(reader, rows))
    with target.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(picked[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(picked)


def recipe(directory: Path, model: str, data: str) -> Path:
    path = directory / "recipe.toml"
    path.write_text(
        f"""
[run]
name = "e2e"
output_dir = "runs"

[data]
{data}

[[models]]
model = "{model}"

[training]
max_steps = 3
batch_size = 8
max_length = 64
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize("model", ["minilm", "e5-small"])
def test_zoo_run_json_prints_one_object_with_every_run(model, tmp_path, capsys):
    write_slice(DEMO_DATA / "train.csv", tmp_path / "train.csv", 80)
    write_slice(DEMO_DATA / "test.csv", tmp_path / "test.csv", 20)
    path = recipe(tmp_path, model, 'train = "train.csv"\ntest = "test.csv"\nvalidation = 0.3')

    assert main(["run", str(path), "--json"]) == 0

    out = json.loads(capsys.readouterr().out)  # stdout holds the JSON object and nothing else
    [run] = out["runs"]
    assert run["model"] == model
    assert run["status"] == "ok"
    for split in ("test", "validation"):
        scores = dict(run["metrics"][split])
        intervals = scores.pop("ci95", None)  # the test split's 95% intervals, one per metric
        assert set(scores) == {"accuracy", "f1_macro", "f1_weighted"}
        assert 0 <= scores["f1_macro"] <= 1
        if split == "test":
            assert set(intervals) == set(scores)
            assert all(0 <= low <= high <= 1 for low, high in intervals.values())
        else:
            assert intervals is None
    run_dir = Path(run["run_dir"])
    assert run_dir.parent == tmp_path / "runs" / "e2e"
    predictions = list(csv.DictReader((run_dir / "predictions.csv").open(encoding="utf-8")))
    assert len(predictions) == 20
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test"]["accuracy"] == run["metrics"]["test"]["accuracy"]
    [record] = ResultsStore.in_dir(tmp_path / "runs").runs()  # recorded with its settings
    assert (record.status, record.settings["max_steps"]) == ("ok", 3)
    assert record.metrics["test"]["per_class"] == metrics["test"]["per_class"]


@pytest.mark.slow
def test_a_real_korean_data_set_from_shared_data(shared_data, tmp_path, capsys):
    """NSMC movie reviews (TSV, columns id/document/label) with its own column names."""
    write_slice(shared_data / "nsmc" / "train_20k.tsv", tmp_path / "train.tsv", 60, delimiter="\t")
    data = 'train = "train.tsv"\ntext_column = "document"\nvalidation = 0.25'
    path = recipe(tmp_path, "minilm", data)

    assert main(["run", str(path), "--json"]) == 0

    [run] = json.loads(capsys.readouterr().out)["runs"]
    assert run["status"] == "ok"
    assert run["metrics"]["test"] is None
    labels = json.loads((Path(run["run_dir"]) / "labels.json").read_text(encoding="utf-8"))
    assert labels == {"id2label": {"0": "0", "1": "1"}}


def test_a_checkpoint_folder_that_is_not_there_is_a_recipe_error(tmp_path, capsys):
    write_slice(DEMO_DATA / "train.csv", tmp_path / "train.csv", 80)
    path = recipe(tmp_path, "minilm", 'train = "train.csv"')
    text = path.read_text(encoding="utf-8").replace(
        'model = "minilm"', 'model = "minilm"\ncheckpoint = "no/such/dir"'
    )
    path.write_text(text, encoding="utf-8")

    # Known before anything loads: zoo validate says so, and zoo run trains and records nothing.
    for command in ("validate", "run"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert err == (
            f"error: {path} is not a valid recipe (1 problem)\n"
            f"  - models[0].checkpoint: {tmp_path / 'no' / 'such' / 'dir'} does not exist: name "
            "the folder that holds the model's config.json and weights\n"
        )
    assert not (tmp_path / "runs").exists()
