"""Several processes, one run: `zoo run --nproc 2` on a CPU with the gloo backend."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import DEMO_DATA, read_rows

from zoo.store import ResultsStore


def write(path, rows):
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text", "label"])
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.slow
def test_two_processes_make_one_run_directory_one_record_and_score_every_row(tmp_path, tiny_bert):
    train = read_rows(DEMO_DATA / "train.csv")[:80]
    test = read_rows(DEMO_DATA / "test.csv")[:21]  # odd: the processes get unequal shares
    write(tmp_path / "train.csv", train)
    write(tmp_path / "test.csv", test)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f"""
[run]
name = "ddp"
output_dir = "runs"

[data]
train = "train.csv"
test = "test.csv"
validation = 0.25

[[models]]
model = "tfidf"                 # a custom engine: trained by the main process alone

[[models]]
model = "finbert"
checkpoint = "{tiny_bert}"

[training]
max_steps = 6
batch_size = 4
max_length = 48

[distributed]
strategy = "ddp"
""",
        encoding="utf-8",
    )
    env = {**os.environ, "ZOO_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "run", str(recipe), "--nproc", "2", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    baseline, run = json.loads(done.stdout)["runs"]  # one JSON object, from the main process

    # Both processes would write the baseline's model/ if both trained it (and the one that
    # came second would fail); the main one alone did.
    assert "error:" not in done.stderr and "failed" not in done.stderr, done.stderr[-3000:]
    assert (baseline["model"], baseline["status"]) == ("tfidf", "ok")
    assert (Path(baseline["run_dir"]) / "model" / "weights.npz").is_file()
    made = sorted(p.name for p in (tmp_path / "runs" / "ddp").iterdir())
    assert made == sorted(Path(r["run_dir"]).name for r in (baseline, run))
    records = ResultsStore.in_dir(tmp_path / "runs").runs()
    assert [(r.model, r.status) for r in records] == [("tfidf", "ok"), ("finbert", "ok")]
    run_dir = Path(run["run_dir"])
    facts = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert (facts["processes"], facts["distributed"]) == (2, "ddp")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert sum(map(sum, metrics["test"]["confusion_matrix"]["matrix"])) == 21
    assert sum(map(sum, metrics["validation"]["confusion_matrix"]["matrix"])) == 20
    predictions = read_rows(run_dir / "predictions.csv")
    assert [p["text"] for p in predictions] == [r["text"] for r in test]  # once each, in order
