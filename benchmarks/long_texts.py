"""Benchmark: which tokens of a long text a model reads (`training.truncation`), on real data.

    python benchmarks/long_texts.py [TRAIN_ROWS] [TEST_ROWS] [MODEL] [SEED ...]

Long texts whose deciding sentence sits at their end: each is several real Korean statements
from 3i4k (class 1, drawn at random, whatever the label: they tell nothing of it), then one real
NSMC movie review, whose sentiment is the text's label. At `max_length = 64` the review lies
past the first 64 tokens of almost every text. One recipe trains the model three times per
seed, with `head`, `head+tail` and `chunks`, and the table gives each one's test scores, train
time and how many rows (windows) it read per epoch.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import shared_data

STRATEGIES = ("head", "head+tail", "chunks")
FILLER_SENTENCES = (6, 10)  # statements before each review: from 6 to 10


def statements() -> list[str]:
    """3i4k's statements (class 1) of four words or more."""
    path = shared_data() / "3i4k" / "fci_train_val.txt"
    with path.open(encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t", 1) for line in f]
    return [text.strip() for label, text in rows if label == "1" and len(text.split()) >= 4]


def reviews(name: str, count: int) -> list[tuple[str, str]]:
    """The first `count` NSMC reviews of a file, with their labels (0 negative, 1 positive)."""
    with (shared_data() / "nsmc" / name).open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        rows = zip(range(count), reader, strict=False)
        return [(row["document"], row["label"]) for _, row in rows]


def write_long_texts(path: Path, rows: list[tuple[str, str]], filler: list[str], seed: int):
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for review, label in rows:
            before = rng.sample(filler, rng.randint(*FILLER_SENTENCES))
            writer.writerow([" ".join([*before, review]), label])


def recipe(model: str, seeds: list[int]) -> str:
    entries = "".join(
        f'[[models]]\nmodel = "{model}"\nname = "{strategy.replace("+", "-")}"\n'
        f'truncation = "{strategy}"\n\n'
        for strategy in STRATEGIES
    )
    return f"""
[run]
name = "long"
seeds = {seeds}
output_dir = "runs"

[data]
train = "train.csv"
test = "test.csv"
validation = 0.2

{entries}
[training]
epochs = 2
learning_rate = 1e-4
batch_size = 16
lr_scheduler = "cosine"
warmup_ratio = 0.03
max_length = 64
early_stopping_patience = 0
train_embeddings = true  # as RESULTS.md section 5 measured it (e5-small's default then)
"""


def main(train_rows: int, test_rows: int, model: str, seeds: list[int]) -> None:
    filler = statements()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_long_texts(tmp / "train.csv", reviews("train_20k.tsv", train_rows), filler, 1)
        write_long_texts(tmp / "test.csv", reviews("test_4k.tsv", test_rows), filler, 2)
        (tmp / "recipe.toml").write_text(recipe(model, seeds), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "zoo", "run", str(tmp / "recipe.toml"), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        runs = json.loads(done.stdout)["runs"]
        lengths = {}
        for run in runs:
            record = json.loads((Path(run["run_dir"]) / "run.json").read_text(encoding="utf-8"))
            lengths[run["model"], run["seed"]] = record["text_tokens"]["train"]
    any_lengths = next(iter(lengths.values()))
    print(
        f"{model}, {train_rows} training rows (20% held out for validation), {test_rows} test "
        f"rows, max_length 64, 2 epochs, seeds {', '.join(map(str, seeds))}; training texts: "
        f"median {any_lengths['median']:g} tokens, 95th percentile {any_lengths['p95']:g}, "
        f"{any_lengths['cut']} of {any_lengths['texts']} longer than 64"
    )
    print("| truncation | seed | test macro-F1 | test accuracy | train time (s) | rows per epoch |")
    print("|---|---:|---:|---:|---:|---:|")
    means = {}
    for strategy in STRATEGIES:
        name = strategy.replace("+", "-")
        for run in sorted((r for r in runs if r["model"] == name), key=lambda r: r["seed"]):
            test = run["metrics"]["test"]
            means.setdefault(strategy, []).append(test["f1_macro"])
            print(
                f"| {strategy} | {run['seed']} | {test['f1_macro']:.4f} | {test['accuracy']:.4f} "
                f"| {run['train_seconds']:.0f} | {lengths[name, run['seed']]['windows']} |"
            )
    print()
    for strategy, scores in means.items():
        print(f"{strategy}: mean test macro-F1 {statistics.mean(scores):.4f}")


if __name__ == "__main__":
    given = sys.argv[1:3]
    train_rows, test_rows = (int(a) for a in given + ["1000", "500"][len(given) :])
    model = sys.argv[3] if len(sys.argv) > 3 else "e5-small"
    main(train_rows, test_rows, model, [int(s) for s in sys.argv[4:]] or [42, 7])
