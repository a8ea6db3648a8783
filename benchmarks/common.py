"""Shared set-up for the benchmarks: real Korean data from ../shared/data (ZOO_SHARED_DATA)."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shared_data() -> Path:
    path = Path(os.environ.get("ZOO_SHARED_DATA") or ROOT.parent / "shared" / "data")
    if not (path / "nsmc" / "train_20k.tsv").is_file():
        sys.exit(f"skipped: NSMC not found under {path}; set ZOO_SHARED_DATA to shared/data")
    return path


def nsmc_slice(directory: Path, train_rows: int, test_rows: int) -> tuple[Path, Path]:
    """The first rows of NSMC's train and test files, as TSV files in `directory`."""
    source = shared_data() / "nsmc"
    out = []
    for name, rows in (("train_20k.tsv", train_rows), ("test_4k.tsv", test_rows)):
        with (source / name).open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            picked = [row for _, row in zip(range(rows), reader, strict=False)]
        target = directory / name.replace("_20k", "").replace("_4k", "")
        with target.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "document", "label"], delimiter="\t")
            writer.writeheader()
            writer.writerows(picked)
        out.append(target)
    return out[0], out[1]
