"""What labelled rows that were read exactly can still say wrong about a comparison.

A file can be read exactly and still make a score mean something else than it seems: the same
label spelled two ways becomes two classes, a test text that is also a training text is scored
as if unseen, a text given two labels teaches both. `check_labels` refuses what can only be a
mistake; the `*_notices` functions say what may be one (`Splits.notices`: `zoo run` prints them
and run.json keeps them).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from zoo.errors import DataError

if TYPE_CHECKING:  # zoo.data calls these checks
    from zoo.data import LabelledTexts

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
SHOWN = 3  # examples named in one message


def _lines(lines: Iterable[int]) -> str:
    listed = sorted(lines)
    shown = ", ".join(map(str, listed[:SHOWN]))
    return shown + (" ..." if len(listed) > SHOWN else "")


def _first_lines(rows: LabelledTexts) -> dict[str, int]:
    first: dict[str, int] = {}
    for label, line in zip(rows.labels, rows.lines, strict=True):
        first.setdefault(label, line)
    return first


def check_labels(rows: LabelledTexts, setting: str, path: object) -> None:
    """Refuse labels that are one number spelled two ways ('1' and '1.0', '01'): spreadsheets
    write whole numbers as 1.0 once a column has an empty cell, and the two spellings would
    become two classes."""
    first = _first_lines(rows)
    by_value: dict[float, list[str]] = defaultdict(list)
    for label in first:
        if _NUMBER.fullmatch(label):
            by_value[float(label)].append(label)
    clashes = [spellings for spellings in by_value.values() if len(spellings) > 1]
    if clashes:
        spellings = clashes[0]
        named = " and ".join(f"{s!r} (line {first[s]})" for s in spellings)
        raise DataError(
            f"{setting}: {path} spells one label two ways: {named} are the same number, and "
            "would become two classes",
            hint="write each label one way in the file (a spreadsheet writes 1.0 for 1 once a "
            "column has an empty cell)",
        )


def _folded(label: str) -> str:
    return " ".join(label.split()).casefold()


def label_notices(rows: LabelledTexts, setting: str) -> list[str]:
    """Labels that differ only in case or spacing: two classes, probably meant as one."""
    first = _first_lines(rows)
    groups: dict[str, list[str]] = defaultdict(list)
    for label in first:
        groups[_folded(label)].append(label)
    return [
        f"{setting}: the labels {', '.join(repr(s) for s in spellings)} differ only in case or "
        f"spacing (lines {', '.join(str(first[s]) for s in spellings)}) and are different classes"
        for spellings in groups.values()
        if len(spellings) > 1
    ]


def conflict_notices(rows: LabelledTexts, setting: str) -> list[str]:
    """Texts that appear more than once with different labels."""
    labels: dict[str, dict[str, int]] = defaultdict(dict)
    for text, label, line in zip(rows.inputs, rows.labels, rows.lines, strict=True):
        labels[text].setdefault(label, line)
    conflicts = [found for found in labels.values() if len(found) > 1]
    if not conflicts:
        return []
    example = ", ".join(f"{label!r} on line {line}" for label, line in conflicts[0].items())
    noun = "text appears" if len(conflicts) == 1 else "texts appear"
    return [f"{setting}: {len(conflicts)} {noun} with different labels (e.g. {example})"]


def duplicate_notices(rows: LabelledTexts, setting: str) -> list[str]:
    """Texts given more than once with the same label: a split may put one copy in training and
    another in validation, which then scores a text the model has seen."""
    first: dict[tuple[str, str], int] = {}
    again = []
    for text, label, line in zip(rows.inputs, rows.labels, rows.lines, strict=True):
        if (text, label) in first:
            again.append((first[(text, label)], line))
        else:
            first[(text, label)] = line
    if not again:
        return []
    return [
        f"{setting}: {len(again)} {'row repeats' if len(again) == 1 else 'rows repeat'} an "
        f"earlier row (e.g. line {again[0][1]} repeats line {again[0][0]}): a validation split "
        "may score texts that training saw"
    ]


def spelled_like(label: str, known: Iterable[str]) -> str | None:
    """A known label that `label` is probably meant to be: the same number or the same word in
    another case or spacing."""
    for other in known:
        if _folded(other) == _folded(label):
            return other
        if _NUMBER.fullmatch(label) and _NUMBER.fullmatch(other) and float(label) == float(other):
            return other
    return None


def overlap_notices(train: LabelledTexts, other: LabelledTexts, setting: str) -> list[str]:
    """Rows of a validation or test file whose text is also a training text: their scores are
    not those of unseen text."""
    seen = set(train.inputs)
    lines = [line for text, line in zip(other.inputs, other.lines, strict=True) if text in seen]
    if not lines:
        return []
    return [
        f"{setting}: {len(lines)} of {len(other)} texts are also in data.train (lines "
        f"{_lines(lines)}): their scores are not those of unseen text"
    ]
