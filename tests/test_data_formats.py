"""A JSON Lines and a Parquet copy of the demo data give the same splits and scores as its CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tiny_models import DEMO_DATA

from zoo.cli import main


def copy(rows: list[dict[str, str]], path: Path) -> None:
    if path.suffix == ".jsonl":
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        path.write_text(lines, encoding="utf-8")
    else:
        pq.write_table(pa.table({key: [row[key] for row in rows] for key in rows[0]}), path)


def scores(tmp_path: Path, folder: Path, suffix: str, capsys) -> tuple:
    """The TF-IDF baseline's scores and row counts on train and test files of this format."""
    recipe = tmp_path / f"recipe{suffix}.toml"
    recipe.write_text(
        f'[run]\nname = "demo{suffix.replace(".", "-")}"\noutput_dir = "runs"\n'
        f'[data]\ntrain = "{(folder / ("train" + suffix)).as_posix()}"\n'
        f'test = "{(folder / ("test" + suffix)).as_posix()}"\n[[models]]\nmodel = "tfidf"\n',
        encoding="utf-8",
    )
    assert main(["run", str(recipe), "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)["runs"]
    record = json.loads((Path(run["run_dir"]) / "run.json").read_text(encoding="utf-8"))
    return run["metrics"], record["rows"]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_copy_of_the_demo_data_gives_the_same_splits_and_scores(tmp_path, suffix, capsys):
    for name in ("train", "test"):
        with (DEMO_DATA / f"{name}.csv").open(encoding="utf-8", newline="") as f:
            copy(list(csv.DictReader(f)), tmp_path / f"{name}{suffix}")
    assert scores(tmp_path, tmp_path, suffix, capsys) == scores(tmp_path, DEMO_DATA, ".csv", capsys)
