"""Reading labelled CSV/TSV files and splitting them (zoo.data): plain Python, no torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.data import FileRows, LabelledTexts, label_order, load_splits, read_table, stratified_split
from zoo.errors import DataError
from zoo.recipe import DataSection

KOREAN = "text,label\n비밀번호를 잊어버렸어요,계정\n결제가 두 번 됐어요,결제\n"


def read(path: Path, encoding: str = "auto", **columns: str) -> tuple[LabelledTexts, str]:
    """The rows of a file read as data.train, and the encoding that read them."""
    columns = {"text_column": "text", "label_column": "label", **columns}
    read = read_table(path, encoding=encoding, setting="data.train", **columns)
    assert read.dropped == 0  # rows with an empty text fail unless data.empty_texts = "drop"
    return read.rows, read.encoding


def rows(*labels: str) -> LabelledTexts:
    return LabelledTexts(tuple(f"text {i}" for i in range(len(labels))), labels)


def data_error(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        call(*args, **kwargs)
    assert caught.value.exit_code == 3
    return str(caught.value)


# --- reading --------------------------------------------------------------------------------------


def test_a_csv_file(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('id,text,label\n1,hello,greeting\n2,"bye, then",farewell\n', encoding="utf-8")
    assert read(path) == (
        LabelledTexts(("hello", "bye, then"), ("greeting", "farewell")),
        "utf-8-sig",
    )


def test_a_tsv_file(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("text\tlabel\nhello, world\tgreeting\n", encoding="utf-8")
    assert read(path)[0] == LabelledTexts(("hello, world",), ("greeting",))


def test_other_column_names(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("body,category\nhello,greeting\n", encoding="utf-8")
    texts, _ = read(path, text_column="body", label_column="category")
    assert texts == LabelledTexts(("hello",), ("greeting",))


def test_surrounding_spaces_are_trimmed(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\n  hello  , greeting \n", encoding="utf-8")
    assert read(path)[0] == LabelledTexts(("hello",), ("greeting",))


def test_a_utf8_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(KOREAN.encode("utf-8-sig"))
    texts, used = read(path)
    assert texts == LabelledTexts(
        ("비밀번호를 잊어버렸어요", "결제가 두 번 됐어요"), ("계정", "결제")
    )
    assert used == "utf-8-sig"


def test_a_byte_order_mark_is_not_part_of_the_first_column_with_encoding_utf8(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(KOREAN.encode("utf-8-sig"))
    assert read(path, encoding="utf-8")[0].labels == ("계정", "결제")


def test_a_cp949_file_is_read_with_encoding_auto(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(KOREAN.encode("cp949"))
    texts, used = read(path)
    assert texts == LabelledTexts(
        ("비밀번호를 잊어버렸어요", "결제가 두 번 됐어요"), ("계정", "결제")
    )
    assert used == "cp949"


def test_a_cp949_file_is_read_with_encoding_cp949(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(KOREAN.encode("cp949"))
    assert read(path, encoding="cp949") == read(path)


def test_a_file_that_is_not_in_the_encoding_named(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(KOREAN.encode("cp949"))
    assert data_error(read, path, encoding="utf-8") == (
        f"data.train: {path} is not text in utf-8 (line 2 has the byte 0xba, which is not UTF-8)\n"
        "  hint: save it as UTF-8, or set data.encoding to the file's encoding"
    )


def test_a_file_that_is_no_text_at_all(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\n\xff\xfe\x80\x80,x\n")
    assert data_error(read, path) == (
        f"data.train: {path} is not text in utf-8-sig or cp949 "
        "(line 2 has the byte 0xff, which is not UTF-8)\n"
        "  hint: save it as UTF-8, or set data.encoding to the file's encoding"
    )


def test_a_missing_file(tmp_path):
    path = tmp_path / "train.csv"
    assert data_error(read, path) == f"data.train: file not found: {path}"


def test_a_missing_column_lists_the_columns_there_are(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("id,body,label\n1,hello,greeting\n", encoding="utf-8")
    assert data_error(read, path) == (
        f"data.train: {path} has no column 'text' (columns: 'id', 'body', 'label')\n"
        "  hint: set data.text_column and data.label_column to the file's column names"
    )


def test_an_empty_file_says_so(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("", encoding="utf-8")
    assert data_error(read, path) == (
        f"data.train: {path} is empty\n"
        "  hint: a data file needs a header line naming its columns (e.g. text,label) and one "
        "row per labelled text"
    )


def test_a_file_with_only_a_header_has_no_data_rows(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\n", encoding="utf-8")
    assert data_error(read, path) == (
        f"data.train: {path} has no data rows\n"
        "  hint: add one row per labelled text below the header line"
    )


def test_rows_with_an_empty_text_or_label_are_counted_with_their_lines(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\nfine,a\n,b\nno label,\n   ,c\nfine too,d\n", encoding="utf-8")
    assert data_error(read, path) == (
        f"data.train: {path} has 3 rows with an empty text or label (lines 3, 4, 5)\n"
        '  hint: fill them in or remove them, or set data.empty_texts = "drop" to leave them out'
    )


def test_texts_that_spreadsheets_write_for_missing_values_count_as_empty(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\nfine,a\nnan,b\nNone,c\nN/A,d\nnan-bread,e\n", encoding="utf-8")
    assert data_error(read, path).startswith(
        f"data.train: {path} has 3 rows with an empty text or label "
        "(lines 3, 4, 5; 'N/A', 'None', 'nan' count as empty)\n"
    )


def test_rows_with_an_empty_text_or_label_can_be_dropped(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\nfine,a\n,b\nno label,\nNaN,c\nfine too,d\n", encoding="utf-8")
    assert read_table(
        path, text_column="text", label_column="label", setting="data.train", empty_texts="drop"
    ) == FileRows(
        # The rows that are left point at their own rows and lines of the file.
        LabelledTexts(("fine", "fine too"), ("a", "d"), rows=(0, 4), lines=(2, 6)),
        "utf-8-sig",
        dropped=3,
        notices=('data.train: left out 3 rows with an empty text or label (data.empty_texts = "drop")',),
    )


def test_only_the_first_five_empty_lines_are_shown(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\n" + ",x\n" * 7, encoding="utf-8")
    assert data_error(read, path).startswith(
        f"data.train: {path} has 7 rows with an empty text or label (lines 2, 3, 4, 5, 6 ...)\n"
    )


def test_multi_line_quoted_texts_survive(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"first line\nsecond line, with a comma",a\nnext,b\n')
    assert read(path)[0] == LabelledTexts(
        ("first line\nsecond line, with a comma", "next"), ("a", "b"), lines=(2, 4)
    )


def test_empty_rows_after_a_multi_line_text_are_reported_at_their_real_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"first line\nsecond line",a\n,b\n', encoding="utf-8")
    assert "(lines 4)" in data_error(read, path)


# --- label order ----------------------------------------------------------------------------------


def test_integer_labels_are_ordered_numerically():
    assert label_order(("10", "2", "-1", "2")) == ("-1", "2", "10")


def test_other_labels_are_ordered_alphabetically():
    assert label_order(("web", "code", "10", "code")) == ("10", "code", "web")


def test_label_order_does_not_depend_on_the_hash_seed():
    code = "from zoo.data import label_order; print(label_order(('1', '01', '001', '2')))"
    seen = set()
    for seed in range(8):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        seen.add(result.stdout)
    assert len(seen) == 1, seen


# --- splitting ------------------------------------------------------------------------------------


def test_the_split_keeps_every_class_in_both_parts():
    data = rows(*("a" * 10 + "b" * 6 + "c" * 4))
    train, validation = stratified_split(data, 0.25, seed=1)
    assert (len(train), len(validation)) == (15, 5)
    assert set(train.labels) == set(validation.labels) == {"a", "b", "c"}
    assert sorted(train.texts + validation.texts) == sorted(data.texts)


def test_the_split_keeps_texts_with_their_labels():
    data = LabelledTexts(
        tuple(f"{label}-{i}" for i, label in enumerate("aabbccdd")), tuple("aabbccdd")
    )
    train, validation = stratified_split(data, 0.5, seed=3)
    for part in (train, validation):
        assert all(
            text.startswith(label) for text, label in zip(part.texts, part.labels, strict=True)
        )


def test_the_split_keeps_the_file_rows_and_lines_of_each_text():
    texts = tuple(f"{label}-{i}" for i, label in enumerate("aabbccdd"))
    data = LabelledTexts(texts, tuple("aabbccdd"), rows=tuple(range(10, 18)), lines=(2,) * 8)
    for part in stratified_split(data, 0.5, seed=3):
        assert [10 + int(text.split("-")[1]) for text in part.texts] == list(part.rows)


def test_the_split_is_deterministic_for_a_seed():
    data = rows(*("ab" * 20))
    assert stratified_split(data, 0.2, seed=7) == stratified_split(data, 0.2, seed=7)
    assert stratified_split(data, 0.2, seed=7) != stratified_split(data, 0.2, seed=8)


def test_a_label_with_one_row_cannot_be_split():
    assert data_error(stratified_split, rows("a", "a", "b", "c", "c"), 0.5, seed=1) == (
        "data.validation: label 'b' has only one row in data.train, too few to split off a "
        "validation row\n"
        "  hint: add rows of that label, or give data.validation a file"
    )


def test_a_fraction_smaller_than_the_number_of_labels_is_rejected():
    assert data_error(stratified_split, rows(*("abcd" * 5)), 0.1, seed=1) == (
        "data.validation = 0.1 of 20 rows leaves 2 validation rows, fewer than the 4 labels\n"
        "  hint: change data.validation or add rows"
    )


def test_a_fraction_that_leaves_too_few_training_rows_is_a_data_error():
    with pytest.raises(DataError):
        stratified_split(rows(*("abcde" * 2)), 0.7, seed=1)


# --- load_splits: a recipe's [data] section ------------------------------------------------------


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return path.name


def test_load_splits_reads_train_and_test_and_splits_off_validation(tmp_path):
    train = "text,label\n" + "".join(f"t{i},{'xy'[i % 2]}\n" for i in range(10))
    data = DataSection(
        train=write(tmp_path / "train.csv", train),
        test=write(tmp_path / "test.csv", "text,label\nu,x\nv,y\n"),
    )
    splits = load_splits(data, tmp_path, seed=1)
    assert splits.labels == ("x", "y")
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (8, 2, 2)
    assert splits.encodings == {"train": "utf-8-sig", "test": "utf-8-sig"}
    assert splits.dropped == {"train": 0, "test": 0}


def test_load_splits_drops_empty_texts_and_counts_them_per_file(tmp_path):
    train = "text,label\n" + "".join(f"t{i},{'xy'[i % 2]}\n" for i in range(10)) + ",x\nnull,y\n"
    data = DataSection(
        train=write(tmp_path / "train.csv", train),
        test=write(tmp_path / "test.csv", "text,label\nu,x\n,y\n"),
        empty_texts="drop",
    )
    splits = load_splits(data, tmp_path, seed=1)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (8, 2, 1)
    assert splits.dropped == {"train": 2, "test": 1}


def test_load_splits_fails_on_empty_texts_by_default(tmp_path):
    data = DataSection(train=write(tmp_path / "train.csv", "text,label\na,x\n,y\nb,y\n"))
    assert data_error(load_splits, data, tmp_path, seed=1).startswith(
        f"data.train: {tmp_path / 'train.csv'} has 1 row with an empty text or label (lines 3)\n"
    )


def test_a_single_class_is_rejected(tmp_path):
    data = DataSection(train=write(tmp_path / "train.csv", "text,label\na,x\nb,x\nc,x\n"))
    assert data_error(load_splits, data, tmp_path, seed=1) == (
        "data.train: every row has the label 'x'; a classifier needs two or more\n"
        "  hint: add rows of another label, or check that data.label_column names the labels"
    )


def test_test_labels_unseen_in_train_are_rejected(tmp_path):
    data = DataSection(
        train=write(tmp_path / "train.csv", "text,label\na,x\nb,x\nc,y\nd,y\n"),
        test=write(tmp_path / "test.csv", "text,label\ne,x\nf,z\ng,w\n"),
        validation=0.5,
    )
    assert data_error(load_splits, data, tmp_path, seed=1) == (
        "data.test: labels not seen in data.train: 'w', 'z'\n"
        "  hint: a model cannot predict a label it never saw; add training rows for it"
    )


def test_a_validation_file_is_used_as_it_is(tmp_path):
    data = DataSection(
        train=write(tmp_path / "train.csv", "text,label\na,x\nb,y\n"),
        validation=write(tmp_path / "val.csv", "text,label\nc,y\n"),
    )
    splits = load_splits(data, tmp_path, seed=1)
    assert splits.train == LabelledTexts(("a", "b"), ("x", "y"))
    assert splits.validation == LabelledTexts(("c",), ("y",))
    assert splits.test is None


def test_validation_file_labels_unseen_in_train_are_rejected(tmp_path):
    data = DataSection(
        train=write(tmp_path / "train.csv", "text,label\na,x\nb,y\n"),
        validation=write(tmp_path / "val.csv", "text,label\nc,z\n"),
    )
    assert data_error(load_splits, data, tmp_path, seed=1).startswith(
        "data.validation: labels not seen in data.train: 'z'\n"
    )


def test_each_seed_gets_its_own_validation_split_from_one_reading(tmp_path, monkeypatch):
    import zoo.data

    train = "text,label\n" + "".join(f"t{i},{'xy'[i % 2]}\n" for i in range(20))
    data = DataSection(train=write(tmp_path / "train.csv", train), validation=0.2)
    reads = []
    real = zoo.data.read_table
    monkeypatch.setattr(zoo.data, "read_table", lambda *a, **k: reads.append(a) or real(*a, **k))

    splits = zoo.data.load_splits_for_seeds(data, tmp_path, (1, 2, 3))

    assert len(reads) == 1  # the file is read once for every seed
    held_out = {seed: set(s.validation.texts) for seed, s in splits.items()}
    assert len({frozenset(v) for v in held_out.values()}) == 3  # three different splits
    for s in splits.values():
        assert sorted(s.train.texts + s.validation.texts) == sorted(f"t{i}" for i in range(20))
