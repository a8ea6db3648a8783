"""Make the multi-label variant of the demo data from recipes/demo-data (run from anywhere):

    python recipes/demo-multilabel-data/make.py

Some students ask two things in one inquiry. Here 40 training and 12 test inquiries are such
two-question texts: two demo inquiries of different classes, drawn with a fixed seed, written
one after the other, carrying both labels (`code;web`). Every other row is a demo row as it
is. The two files are written beside this script.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "demo-data"
PAIRS = {"train": 40, "test": 12}
SEED = 2026


def combined(rows: list[dict[str, str]], pairs: int, rng: random.Random) -> list[dict[str, str]]:
    order = list(range(len(rows)))
    rng.shuffle(order)
    used: set[int] = set()
    made = []
    for first in order:
        if len(made) == pairs:
            break
        if first in used:
            continue
        second = next(
            (
                i
                for i in order
                if i not in used and i != first and rows[i]["label"] != rows[first]["label"]
            ),
            None,
        )
        if second is None:
            continue
        used |= {first, second}
        a, b = rows[first], rows[second]
        made.append(
            {
                "id": f"{a['id']}+{b['id']}",
                "text": f"{a['text']}\n그리고 하나 더요. {b['text']}",
                "labels": ";".join(sorted((a["label"], b["label"]))),
                "at": min(first, second),
            }
        )
    out = [
        {"id": r["id"], "text": r["text"], "labels": r["label"], "at": i}
        for i, r in enumerate(rows)
        if i not in used
    ]
    return [
        {k: v for k, v in r.items() if k != "at"} for r in sorted(out + made, key=lambda r: r["at"])
    ]


def main() -> None:
    rng = random.Random(SEED)
    for name, pairs in PAIRS.items():
        with (DEMO / f"{name}.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        with (HERE / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "labels"], lineterminator="\n")
            writer.writeheader()
            writer.writerows(combined(rows, pairs, rng))


if __name__ == "__main__":
    main()
