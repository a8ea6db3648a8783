"""Benchmark 6: the same 8-unit matrix (TF-IDF, 2 settings x 4 seeds, on NSMC's 20,000 training
and 4,000 test reviews) with --jobs 1 (in this process), --jobs 1 --executor local (a subprocess
per unit) and --jobs 2 (two subprocesses at a time) on this machine.

    .venv/bin/python benchmarks/jobs.py

Prints each way's wall time (the whole `zoo run`, start-up included) and checks that every way
gives the same test scores, unit by unit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, shared_data

RECIPE = """\
[run]
name = "jobs"
output_dir = "runs"
seeds = [1, 2, 3, 4]

[data]
train = "{data}/nsmc/train_20k.tsv"
test = "{data}/nsmc/test_4k.tsv"
text_column = "document"
label_column = "label"

[[models]]
model = "tfidf"

[[models]]
model = "tfidf"
name = "tfidf-balanced"
class_weights = "balanced"
"""

# --jobs 1 alone trains in this process, one unit after another; "--executor local" makes each
# unit a subprocess, as --jobs 2 does.
WAYS = {
    "--jobs 1": ["--jobs", "1"],
    "--jobs 1 --executor local": ["--jobs", "1", "--executor", "local"],
    "--jobs 2": ["--jobs", "2"],
}


def main() -> None:
    data = shared_data()
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for way, args in WAYS.items():
            folder = Path(tmp) / way.replace(" ", "-")
            folder.mkdir()
            recipe = folder / "recipe.toml"
            recipe.write_text(RECIPE.format(data=data), encoding="utf-8")
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "zoo", "run", str(recipe), "--json", *args],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            seconds = time.perf_counter() - start
            runs = json.loads(done.stdout)["runs"]
            scores = {(r["model"], r["seed"]): r["metrics"]["test"]["f1_macro"] for r in runs}
            found[way] = (seconds, scores)
            shutil.rmtree(folder)
    first = next(iter(found.values()))[1]
    for way, (seconds, scores) in found.items():
        assert scores == first, f"{way} gave other scores"
        mean = sum(scores.values()) / len(scores)
        print(f"{way:26s} {seconds:7.1f} s  {len(scores)} units, mean test macro-F1 {mean:.4f}")


if __name__ == "__main__":
    main()
