"""Parquet data files: the columns zoo reads, as strictly as a CSV file, rows numbered from 1."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zoo.data import read_input, read_table
from zoo.errors import DataError


def write(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def read(path: Path, **options):
    return read_table(
        path, text_column="text", label_column="label", setting="data.train", **options
    )


def refused(path: Path, **options) -> str:
    with pytest.raises(DataError) as raised:
        read(path, **options)
    return str(raised.value).replace(str(path.parent), "{dir}")


def test_each_row_is_read_with_its_number_from_1(tmp_path):
    path = write(
        tmp_path / "train.parquet",
        {"text": [" 서버가 안 돼요 ", "코드\n질문"], "label": [1, 2], "other": [0.5, 1.5]},
    )
    found = read(path)
    assert found.rows.texts == ("서버가 안 돼요", "코드\n질문")
    assert found.rows.labels == ("1", "2")  # integers as their digits
    assert found.rows.lines == (1, 2)
    assert found.encoding == "parquet"


def test_a_dictionary_encoded_column_and_nfd_names_are_read(tmp_path):
    labels = pa.array(["web", "code", "web"]).dictionary_encode()  # pandas' categorical
    nfd = unicodedata.normalize("NFD", "본문")
    path = write(tmp_path / "train.parquet", {nfd: ["a", "b", "c"], "label": labels})
    found = read_table(path, text_column="본문", label_column="label", setting="data.train")
    assert found.rows.labels == ("web", "code", "web")


def test_a_null_is_a_missing_value(tmp_path):
    path = write(tmp_path / "train.parquet", {"text": ["a", None, "c"], "label": ["x", "y", None]})
    assert refused(path).startswith(
        "data.train: {dir}/train.parquet has 2 rows with an empty text or label (lines 2, 3)"
    )
    assert read(path, empty_texts="drop").rows.texts == ("a",)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"text": ["a"], "labels": ["x"]},
            "data.train: {dir}/train.parquet has no column 'label' (its columns: 'text', "
            "'labels')\n  hint: set data.label_column to the column's name",
        ),
        (
            {"text": ["a"], "label": [1.0]},
            "data.train: column 'label' of {dir}/train.parquet holds double, not strings or "
            "integers",
        ),
        (
            {"text": [7], "label": ["x"]},
            "data.train: column 'text' of {dir}/train.parquet holds int64, not strings",
        ),
        (
            {"text": ["a"], "label": [True]},
            "data.train: column 'label' of {dir}/train.parquet holds bool, not strings or integers",
        ),
        (
            {"text": pa.array([], pa.string()), "label": pa.array([], pa.string())},
            "data.train: {dir}/train.parquet has no rows",
        ),
    ],
)
def test_a_column_zoo_cannot_read_is_refused(tmp_path, columns, message):
    assert refused(write(tmp_path / "train.parquet", columns)).startswith(message)


def test_two_columns_one_name_in_nfc_are_refused(tmp_path):
    nfd = unicodedata.normalize("NFD", "본문")
    path = write(tmp_path / "train.parquet", {"본문": ["a"], nfd: ["b"], "label": ["x"]})
    with pytest.raises(DataError, match="has 2 columns named '본문'"):
        read_table(path, text_column="본문", label_column="label", setting="data.train")


def test_a_file_that_is_no_parquet_is_refused(tmp_path):
    path = tmp_path / "train.parquet"
    path.write_text("text,label\na,x\n", encoding="utf-8")
    assert refused(path).startswith(
        "data.train: {dir}/train.parquet is not a Parquet file that pyarrow can read"
    )


def test_a_parquet_file_named_csv_is_named_for_what_it_is(tmp_path):
    path = write(tmp_path / "train.parquet", {"text": ["a"], "label": ["x"]})
    path = path.rename(tmp_path / "train.csv")
    assert refused(path).startswith(
        "data.train: {dir}/train.csv is a Parquet file (name it .parquet), not a CSV or TSV table"
    )


def test_predict_input_can_be_parquet_with_ids(tmp_path):
    path = write(tmp_path / "new.parquet", {"id": [10, 11], "text": ["a", None]})
    found = read_input(path, text_column="text", id_column="id", setting="--input")
    assert found.texts == ("a", "") and found.ids == ("10", "11") and found.lines == (1, 2)
