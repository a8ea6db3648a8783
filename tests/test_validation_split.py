"""The validation split that zoo holds out of data.train: stratified, complete, seeded.

A validation split that is not stratified still "works": every number exists and agrees with
the others. So the per-class counts are checked, over many seeds, against what stratification
promises: each class gives the validation split its fraction of rows, give or take one row.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from zoo.data import load_splits
from zoo.recipe import DataSection

# An unbalanced file whose classes do not divide evenly by the fraction.
CLASS_SIZES = {"code": 58, "web": 29, "theory": 15, "remote": 5}
FRACTION = 0.2
SEEDS = range(60)


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("split")
    # Classes interleaved, as in a real file: not sorted by label.
    labels = [label for label, n in CLASS_SIZES.items() for _ in range(n)]
    labels = labels[::3] + labels[1::3] + labels[2::3]
    lines = "".join(f"question number {i},{label}\n" for i, label in enumerate(labels))
    (directory / "train.csv").write_text("text,label\n" + lines, encoding="utf-8")
    return directory


def off_by_more_than_one_row(validation_labels, class_sizes, fraction) -> dict[str, float]:
    """The classes whose validation count is more than one row away from its share."""
    counts = Counter(validation_labels)
    return {
        label: counts[label] - fraction * n
        for label, n in class_sizes.items()
        if abs(counts[label] - fraction * n) > 1
    }


def split(directory: Path, seed: int):
    data = DataSection(train="train.csv", validation=FRACTION)
    return load_splits(data, directory, seed=seed)


def test_every_class_gives_the_validation_split_its_share_for_every_seed(train_file):
    skewed = {}
    for seed in SEEDS:
        off = off_by_more_than_one_row(
            split(train_file, seed).validation.labels, CLASS_SIZES, FRACTION
        )
        if off:
            skewed[seed] = off
    assert skewed == {}


def test_the_count_check_catches_a_split_without_stratification(train_file):
    """The check above has teeth: a plain random split of the same rows (scikit-learn without
    `stratify`) breaks it for most of the seeds, so a splitter that lost its stratification
    cannot pass by luck."""
    from sklearn.model_selection import train_test_split

    labels = split(train_file, 0).train.labels + split(train_file, 0).validation.labels
    failing = 0
    for seed in SEEDS:
        _, validation = train_test_split(labels, test_size=FRACTION, random_state=seed)
        failing += bool(off_by_more_than_one_row(validation, CLASS_SIZES, FRACTION))
    assert failing > len(SEEDS) / 2


def test_the_split_keeps_every_row_once_with_its_own_label(train_file):
    rows = [
        line.rsplit(",", 1)
        for line in (train_file / "train.csv").read_text(encoding="utf-8").splitlines()[1:]
    ]
    total = sum(CLASS_SIZES.values())
    for seed in (0, 1, 2):
        splits = split(train_file, seed)
        train, validation = splits.train, splits.validation
        assert len(validation) == math.ceil(FRACTION * total)
        assert sorted(train.rows + validation.rows) == list(range(total))
        for part in (train, validation):
            for text, label, row in zip(part.texts, part.labels, part.rows, strict=True):
                assert [text, label] == rows[row]


def test_the_seed_chooses_the_validation_rows_and_the_same_seed_chooses_them_again(train_file):
    first = split(train_file, 1).validation.rows
    assert split(train_file, 1).validation.rows == first
    others = {split(train_file, seed).validation.rows for seed in (2, 3, 4)}
    assert first not in others and len(others) == 3
