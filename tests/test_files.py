"""Run-directory names and atomic writes (zoo.files)."""

from __future__ import annotations

import unicodedata
from datetime import datetime

import pytest

from zoo.files import new_run_dir, safe_name, write_text


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("e5-small", "e5-small"),
        ("e5-small (seed 1)", "e5-small-seed-1"),
        ("../elsewhere", "elsewhere"),
        ("a/b\\c", "a-b-c"),
        # Korean names stay readable, and two of them stay apart (they used to become "run").
        ("코드모델", "코드모델"),
        (unicodedata.normalize("NFD", "웹모델"), "웹모델"),
        ("...", "run"),
    ],
)
def test_safe_names_keep_what_can_be_kept(name, safe):
    assert safe_name(name) == safe
    assert unicodedata.is_normalized("NFC", safe_name(name))


def test_a_run_directory_is_never_reused(tmp_path):
    now = datetime(2026, 12, 1, 10, 0, 0)
    first = new_run_dir(tmp_path, "코드-seed1", now)
    second = new_run_dir(tmp_path, "코드-seed1", now)
    assert (first.name, second.name) == (
        "코드-seed1-20261201-100000",
        "코드-seed1-20261201-100000-2",
    )


def test_write_text_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("old")
    write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
