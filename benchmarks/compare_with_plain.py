"""Benchmark 1: zoo against a hand-written Trainer script (plain_trainer.py) on the same model,
data and hyperparameters: wall time of the whole command, and the test metrics.

    python benchmarks/compare_with_plain.py [TRAIN_ROWS] [TEST_ROWS]

MiniLM (the wheel-shipped model), NSMC rows from ../shared/data, 1 epoch, seed 42.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import nsmc_slice

HERE = Path(__file__).resolve().parent
RECIPE = """
[run]
name = "bench"
seed = 42
output_dir = "runs"

[data]
train = "train.tsv"
test = "test.tsv"
text_column = "document"
validation = 0.2

[[models]]
model = "minilm"

[training]
epochs = 1
learning_rate = 1e-4
batch_size = 16
lr_scheduler = "cosine"
warmup_ratio = 0.03
weight_decay = 0.01
max_length = 128
"""


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def main(train_rows: int, test_rows: int) -> None:
    from zoo_plugins.minilm import model_dir

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train, test = nsmc_slice(tmp, train_rows, test_rows)
        (tmp / "recipe.toml").write_text(RECIPE, encoding="utf-8")
        plain_s, _ = timed(
            [sys.executable, str(HERE / "plain_trainer.py"), str(model_dir()), str(train),
             str(test), str(tmp / "plain.json")]
        )  # fmt: skip
        zoo_s, out = timed([sys.executable, "-m", "zoo", "run", str(tmp / "recipe.toml"), "--json"])
        plain = json.loads((tmp / "plain.json").read_text())
        [run] = json.loads(out)["runs"]
    zoo_metrics = run["metrics"]["test"]
    print(f"rows: {train_rows} train (20% held out for validation), {test_rows} test")
    print("| | wall time (s) | test accuracy | test macro-F1 | test weighted F1 |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, m in (
        ("plain Trainer script", plain_s, plain),
        ("zoo run", zoo_s, zoo_metrics),
    ):
        print(
            f"| {name} | {seconds:.1f} | {m['accuracy']:.4f} | {m['f1_macro']:.4f} "
            f"| {m['f1_weighted']:.4f} |"
        )
    same = all(
        abs(plain[k] - zoo_metrics[k]) < 1e-9 for k in ("accuracy", "f1_macro", "f1_weighted")
    )
    print(f"\nwall time ratio zoo / plain: {zoo_s / plain_s:.3f}; identical metrics: {same}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*(args or [1000, 500]))
