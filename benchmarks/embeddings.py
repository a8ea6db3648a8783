"""Training the word-embedding matrix, freezing it, or training only the rows a batch uses
(`training.train_embeddings` true, false, "sparse"): time per epoch and test scores on the four
Korean data sets of ../shared/data, two seeds; e5-small and MiniLM, and "sparse" for e5-small.

    python benchmarks/embeddings.py [--out RESULTS.jsonl] [--data NAME ...] [--models NAME ...]
                                    [--seeds N ...] [--epochs N]

Each data set: 2,000 training rows drawn at random (seed 0; zoo holds out 20% for validation, so
1,600 train) and 600 test rows (korean-hate-speech: its 471 dev rows). 2 epochs (`--epochs`),
batch 16, lr 1e-4, cosine, max length 128. Time per epoch is zoo's train time (the epochs'
validation passes included) over the epochs. One `zoo run` per data set and setting; the runs
it reports are appended to the JSON-lines file, and a rerun skips what that file already has
(at the same number of epochs).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from common import shared_data

TRAIN_ROWS, TEST_ROWS, SEEDS = 2_000, 600, (1, 2)
SETTINGS = (True, False, "sparse")
NAMES = {True: "trained", False: "frozen", "sparse": "sparse"}
RECIPE = """
[run]
name = "embeddings"
seeds = [{seeds}]
output_dir = "runs"

[data]
train = "train.tsv"
test = "test.tsv"
validation = 0.2

{models}
[training]
epochs = {epochs}
learning_rate = 1e-4
batch_size = 16
lr_scheduler = "cosine"
max_length = 128
train_embeddings = {train_embeddings}
"""

Rows = list[tuple[str, str]]  # (text, label)


def _tsv(path: Path, text: str, label: str) -> Rows:
    with path.open(encoding="utf-8", newline="") as f:
        return [(r[text], r[label]) for r in csv.DictReader(f, delimiter="\t")]


def _nsmc(root: Path) -> tuple[Rows, Rows]:
    return (
        _tsv(root / "nsmc/train_20k.tsv", "document", "label"),
        _tsv(root / "nsmc/test_4k.tsv", "document", "label"),
    )


def _hate(root: Path) -> tuple[Rows, Rows]:
    folder = root / "korean-hate-speech"
    return (
        _tsv(folder / "train.tsv", "comments", "hate"),
        _tsv(folder / "dev.tsv", "comments", "hate"),
    )


def _chatbot(root: Path) -> tuple[Rows, Rows]:
    # One file: the test rows are drawn from the rows after the training ones. One label cell
    # carries trailing spaces (shared/data/README.md).
    with (root / "chatbot/ChatbotData.csv").open(encoding="utf-8", newline="") as f:
        rows = [(r["Q"], r["label"].strip()) for r in csv.DictReader(f)]
    random.Random(0).shuffle(rows)
    return rows[:TRAIN_ROWS], rows[TRAIN_ROWS:]


def _3i4k(root: Path) -> tuple[Rows, Rows]:
    def read(name: str) -> Rows:
        with (root / "3i4k" / name).open(encoding="utf-8", newline="") as f:
            return [(text, label) for label, text in csv.reader(f, delimiter="\t")]

    return read("fci_train_val.txt"), read("fci_test.txt")


DATA: dict[str, Callable[[Path], tuple[Rows, Rows]]] = {
    "nsmc": _nsmc,
    "hate-speech": _hate,
    "chatbot": _chatbot,
    "3i4k": _3i4k,
}


def _write(path: Path, rows: Rows) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def write_data(name: str, directory: Path) -> None:
    train, test = DATA[name](shared_data())
    train = random.Random(0).sample(train, TRAIN_ROWS)
    test = test if len(test) <= TEST_ROWS else random.Random(0).sample(test, TEST_ROWS)
    _write(directory / "train.tsv", train)
    _write(directory / "test.tsv", test)


def run(
    name: str, models: list[str], train_embeddings: bool | str, seeds: list[int], epochs: int = 2
) -> Iterator[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_data(name, tmp)
        entries = "".join(f'[[models]]\nmodel = "{m}"\n\n' for m in models)
        recipe = RECIPE.format(
            seeds=", ".join(map(str, seeds)),
            models=entries,
            train_embeddings=json.dumps(train_embeddings),
            epochs=epochs,
        )
        (tmp / "recipe.toml").write_text(recipe, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "zoo", "run", "recipe.toml", "--json"],
            cwd=tmp, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"zoo run failed on {name}:\n{done.stderr[-3000:]}")
        for r in json.loads(done.stdout)["runs"]:
            test = r["metrics"]["test"]
            yield {
                "data": name,
                "model": r["model"],
                "seed": r["seed"],
                "train_embeddings": train_embeddings,
                "epochs": epochs,
                "status": r["status"],
                "seconds_per_epoch": r["train_seconds"] / epochs,
                "accuracy": test["accuracy"],
                "f1_macro": test["f1_macro"],
            }


def _picked(rows: list[dict], key: tuple[str, str, bool | str], field: str) -> list[float]:
    chosen = [r for r in rows if (r["data"], r["model"], r["train_embeddings"]) == key]
    return [r[field] for r in sorted(chosen, key=lambda r: r["seed"])]


def table(rows: list[dict]) -> str:
    """One line per data set and model: seconds per epoch and test macro-F1 of each setting
    (the mean over seeds; each seed's macro-F1 in brackets), and the speed-up and macro-F1
    difference of frozen and sparse against training the matrix."""
    head = ["data", "model"]
    head += [f"s/epoch {NAMES[s]}" for s in SETTINGS]
    head += [f"macro-F1 {NAMES[s]} [seeds]" for s in SETTINGS]
    head += ["speed-up frozen", "speed-up sparse", "ΔF1 frozen", "ΔF1 sparse"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    pairs = {(r["data"], r["model"]) for r in rows}
    for data, model in sorted(pairs, key=lambda k: (list(DATA).index(k[0]), k[1])):

        def of(field: str, setting: bool | str, data=data, model=model) -> list[float]:
            return _picked(rows, (data, model, setting), field)

        seconds = {s: _mean(of("seconds_per_epoch", s)) for s in SETTINGS}
        f1 = {s: _mean(of("f1_macro", s)) for s in SETTINGS}
        cells = [data, model] + [_cell(seconds[s], 1) for s in SETTINGS]
        for s in SETTINGS:
            each = ", ".join(f"{v:.3f}" for v in of("f1_macro", s))
            cells.append(f"{_cell(f1[s], 3)} [{each}]" if each else "-")
        cells += [_cell(seconds[True] / seconds[s], 2, "x") for s in (False, "sparse")]
        cells += [_cell(f1[s] - f1[True], 3, sign=True) for s in (False, "sparse")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def _cell(value: float, digits: int, unit: str = "", sign: bool = False) -> str:
    if value != value:  # not measured
        return "-"
    return f"{value:{'+' if sign else ''}.{digits}f}{unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("embeddings-results.jsonl"))
    parser.add_argument("--data", nargs="*", default=list(DATA), choices=list(DATA))
    parser.add_argument("--models", nargs="*", default=["e5-small", "minilm"])
    parser.add_argument(
        "--sparse-models", nargs="*", default=["e5-small"], help="the models to try 'sparse' on"
    )
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--epochs", type=int, default=2, help="epochs of every run (default 2)")
    parser.add_argument("--table", action="store_true", help="only print the table of --out")
    args = parser.parse_args()
    rows = []
    if args.out.exists():
        rows = [json.loads(line) for line in args.out.read_text().splitlines()]
    if not args.table:
        for name in args.data:
            for setting in SETTINGS:
                models = args.sparse_models if setting == "sparse" else args.models
                done = {(r["model"], r["seed"]) for r in rows
                        if r["data"] == name and r["train_embeddings"] == setting
                        and r.get("epochs", 2) == args.epochs}  # fmt: skip
                if all((m, seed) in done for m in models for seed in args.seeds):
                    continue
                for row in run(name, models, setting, args.seeds, args.epochs):
                    rows.append(row)
                    with args.out.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
