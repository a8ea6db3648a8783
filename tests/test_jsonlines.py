"""JSON Lines data files (`.jsonl`): read as exactly as CSV, refused with their line."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from zoo.data import read_input, read_table
from zoo.errors import DataError

HINT = '  hint: write one JSON object per line, such as {"text": "...", "label": "..."}'


def read(tmp_path: Path, text: str | bytes, **options):
    path = tmp_path / "train.jsonl"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return read_table(
        path, text_column="text", label_column="label", setting="data.train", **options
    )


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(DataError) as raised:
        read(tmp_path, text)
    return str(raised.value).replace(str(tmp_path), "{dir}")


def test_each_object_is_a_row_with_its_line(tmp_path):
    text = (
        '{"text": "서버가 \\"갑자기\\" 안 돼요", "label": "system", "id": 7}\n'
        "\n"  # a blank line is no row
        '{"label": 3, "text": "  줄바꿈이\\n있는 질문  ", "extra": [1, 2]}\r\n'
    )
    rows = read(tmp_path, text).rows
    assert rows.texts == ('서버가 "갑자기" 안 돼요', "줄바꿈이\n있는 질문")
    assert rows.labels == ("system", "3")  # an integer label as its digits
    assert rows.lines == (1, 3)
    assert rows.rows == (0, 1)


def test_a_line_separator_inside_a_string_does_not_end_the_line(tmp_path):
    # U+2028 and U+0085 may stand in a JSON string as they are; only "\n" ends a line.
    text = '{"text": "one\u2028two\x85three", "label": "a"}\n{"text": "b", "label": "c"}\n'
    rows = read(tmp_path, text).rows
    assert rows.texts == ("one\u2028two\x85three", "b") and rows.lines == (1, 2)


def test_keys_and_texts_are_read_in_nfc_and_a_bom_is_no_text(tmp_path):
    nfd = unicodedata.normalize("NFD", "코드")
    line = json.dumps({unicodedata.normalize("NFD", "text"): nfd, "label": nfd})
    rows = read(tmp_path, "\ufeff" + line + "\n").rows
    assert rows.texts == ("코드",) and rows.labels == ("코드",)


def test_null_is_a_missing_value_as_an_empty_cell(tmp_path):
    text = '{"text": null, "label": "a"}\n{"text": "ok", "label": "b"}\n'
    assert refused(tmp_path, text).startswith(
        "data.train: {dir}/train.jsonl has 1 row with an empty text or label (lines 1)"
    )
    assert read(tmp_path, text, empty_texts="drop").rows.texts == ("ok",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"text": "a", "label": "x"}\n{"text": "b", "label": "y",}\n',
            "data.train: line 2 of {dir}/train.jsonl is not JSON (column 28: Expecting property "
            "name enclosed in double quotes)",
        ),
        (
            '{"text": "a", "label": "x"}\n["b", "y"]\n',
            "data.train: line 2 of {dir}/train.jsonl is an array, not a JSON object",
        ),
        (
            '{"text": "a", "label": "x", "label": "y"}\n',
            "data.train: line 1 of {dir}/train.jsonl names the key 'label' twice",
        ),
        (
            '{"text": "a", "label": 1.0}\n',
            "data.train: line 1 of {dir}/train.jsonl: 'label' is 1.0, not a string or an integer",
        ),
        (
            '{"text": 42, "label": "x"}\n',
            "data.train: line 1 of {dir}/train.jsonl: 'text' is 42, not a string",
        ),
        (
            '{"text": "a", "label": true}\n',
            "data.train: line 1 of {dir}/train.jsonl: 'label' is true, not a string or an integer",
        ),
        ("\n\n", "data.train: {dir}/train.jsonl is empty"),
    ],
)
def test_a_broken_line_is_refused_with_its_number(tmp_path, text, message):
    assert refused(tmp_path, text).startswith(message)


def test_a_missing_key_names_the_keys_there_are_and_the_setting(tmp_path):
    message = refused(tmp_path, '{"text": "a", "label": "x"}\n{"txt": "b", "label": "y"}\n')
    assert message == (
        "data.train: line 2 of {dir}/train.jsonl has no key 'text' (its keys: 'txt', 'label')\n"
        "  hint: give every line that key, or set data.text_column to the key that holds it"
    )


def test_predict_input_can_be_json_lines_with_ids(tmp_path):
    path = tmp_path / "new.jsonl"
    path.write_text('{"id": 10, "text": "a"}\n{"id": "x-2", "text": null}\n', encoding="utf-8")
    found = read_input(path, text_column="text", id_column="id", setting="--input")
    assert found.texts == ("a", "") and found.ids == ("10", "x-2") and found.lines == (1, 2)
