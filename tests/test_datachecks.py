"""Rows read exactly can still make a score mean something else: zoo.datachecks says so."""

from __future__ import annotations

import pytest

from zoo.data import LabelledTexts
from zoo.datachecks import (
    check_labels,
    conflict_notices,
    duplicate_notices,
    label_notices,
    overlap_notices,
    spelled_like,
)
from zoo.errors import DataError


def rows(*pairs: tuple[str, str]) -> LabelledTexts:
    return LabelledTexts(tuple(t for t, _ in pairs), tuple(label for _, label in pairs))


@pytest.mark.parametrize(
    ("labels", "named"),
    [
        (("1", "0", "1.0"), "'1' (line 2) and '1.0' (line 4)"),
        (("01", "1", "2"), "'01' (line 2) and '1' (line 3)"),
        (("0.5", ".50", "2"), "'0.5' (line 2) and '.50' (line 3)"),
    ],
)
def test_one_number_spelled_two_ways_is_refused(labels, named):
    with pytest.raises(DataError) as caught:
        check_labels(rows(*((f"t{i}", label) for i, label in enumerate(labels))), "data.train", "f")
    assert str(caught.value) == (
        f"data.train: f spells one label two ways: {named} are the same number, and would "
        "become two classes\n"
        "  hint: write each label one way in the file (a spreadsheet writes 1.0 for 1 once a "
        "column has an empty cell)"
    )


@pytest.mark.parametrize("labels", [("0", "1", "2"), ("1.0", "2.0"), ("a", "1", "b"), ("①", "1")])
def test_numbers_spelled_one_way_are_fine(labels):
    check_labels(rows(*((f"t{i}", label) for i, label in enumerate(labels))), "data.train", "f")


def test_labels_that_differ_only_in_case_or_spacing_are_named():
    data = rows(("a", "Code"), ("b", "code"), ("c", "web"), ("d", "system  op"), ("e", "system op"))
    assert label_notices(data, "data.train") == [
        "data.train: the labels 'Code', 'code' differ only in case or spacing (lines 2, 3) and "
        "are different classes",
        "data.train: the labels 'system  op', 'system op' differ only in case or spacing "
        "(lines 5, 6) and are different classes",
    ]
    assert label_notices(rows(("a", "code"), ("b", "web")), "data.train") == []


def test_a_text_with_two_labels_is_named():
    data = rows(("same", "a"), ("other", "b"), ("same", "b"), ("same", "a"))
    assert conflict_notices(data, "data.train") == [
        "data.train: 1 text appears with different labels (e.g. 'a' on line 2, 'b' on line 4)"
    ]
    assert conflict_notices(rows(("same", "a"), ("same", "a")), "data.train") == []


def test_test_texts_that_are_training_texts_are_counted():
    train = rows(("seen", "a"), ("also seen", "b"), ("x", "a"))
    test = rows(("new", "a"), ("seen", "a"), ("also seen", "b"))
    assert overlap_notices(train, test, "data.test") == [
        "data.test: 2 of 3 texts are also in data.train (lines 3, 4): their scores are not "
        "those of unseen text"
    ]
    assert overlap_notices(train, rows(("new", "a")), "data.test") == []


def test_two_texts_with_two_labels_each_are_counted():
    data = rows(("same", "a"), ("other", "a"), ("same", "b"), ("other", "c"))
    assert conflict_notices(data, "data.train") == [
        "data.train: 2 texts appear with different labels (e.g. 'a' on line 2, 'b' on line 4)"
    ]


def test_a_row_given_twice_is_named_with_both_lines():
    # A split may hold out one copy and train on the other: validation then scores a seen text.
    data = rows(("same", "a"), ("other", "b"), ("same", "a"), ("same", "b"))
    assert duplicate_notices(data, "data.train") == [
        "data.train: 1 row repeats an earlier row (e.g. line 4 repeats line 2): a validation "
        "split may score texts that training saw"
    ]
    assert duplicate_notices(rows(("same", "a"), ("same", "b")), "data.train") == []


def test_rows_given_again_are_counted_and_the_first_is_the_example():
    data = rows(("x", "a"), ("y", "b"), ("z", "a"), ("y", "b"), ("x", "a"), ("x", "a"))
    assert duplicate_notices(data, "data.train") == [
        "data.train: 3 rows repeat an earlier row (e.g. line 5 repeats line 3): a validation "
        "split may score texts that training saw"
    ]


def test_overlapping_lines_are_listed_up_to_three():
    train = rows(("seen", "a"), ("x", "b"))
    three = rows(("seen", "a"), ("seen", "a"), ("new", "b"), ("seen", "a"))
    assert overlap_notices(train, three, "data.test") == [
        "data.test: 3 of 4 texts are also in data.train (lines 2, 3, 5): their scores are not "
        "those of unseen text"
    ]
    four = rows(*(("seen", "a"),) * 4)
    assert overlap_notices(train, four, "data.test") == [
        "data.test: 4 of 4 texts are also in data.train (lines 2, 3, 4 ...): their scores are "
        "not those of unseen text"
    ]


@pytest.mark.parametrize(
    ("label", "known", "meant"),
    [
        ("Code", ("code", "web"), "code"),
        ("system  op", ("code", "system op"), "system op"),
        ("1.0", ("0", "1", "2"), "1"),
        ("1", ("a", "1.0"), "1.0"),
        ("3", ("1", "2"), None),  # another number is another label
        ("코드", ("1", "web"), None),
    ],
)
def test_a_label_spelled_like_a_known_one_is_matched_to_it(label, known, meant):
    assert spelled_like(label, known) == meant
