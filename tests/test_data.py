"""Reading labelled CSV/TSV files and splitting them (zoo.data): plain Python, no torch."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from zoo.data import (
    FileRows,
    InputTexts,
    LabelledTexts,
    label_order,
    load_splits,
    read_input,
    read_table,
    read_texts,
    stratified_split,
)
from zoo.errors import DataError
from zoo.options import RECIPE
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
        notices=(
            'data.train: left out 3 rows with an empty text or label (data.empty_texts = "drop")',
        ),
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
    # Lines that are not row + 2, as below texts that span lines.
    texts = tuple(f"{label}-{i}" for i, label in enumerate("aabbccdd"))
    lines = tuple(20 + 3 * i for i in range(8))
    data = LabelledTexts(texts, tuple("aabbccdd"), rows=tuple(range(10, 18)), lines=lines)
    for part in stratified_split(data, 0.5, seed=3):
        assert [10 + int(text.split("-")[1]) for text in part.texts] == list(part.rows)
        assert [20 + 3 * int(text.split("-")[1]) for text in part.texts] == list(part.lines)


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
    assert data_error(stratified_split, rows(*("abcde" * 2)), 0.7, seed=1) == (
        "data.validation = 0.7 of 10 rows leaves 3 training rows, fewer than the 5 labels\n"
        "  hint: change data.validation or add rows"
    )


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

    splits = zoo.data.load_units(data, tmp_path, (1, 2, 3))

    assert list(splits) == [(1, None), (2, None), (3, None)]
    assert len(reads) == 1  # the file is read once for every seed
    held_out = {seed: set(s.validation.texts) for seed, s in splits.items()}
    assert len({frozenset(v) for v in held_out.values()}) == 3  # three different splits
    for s in splits.values():
        assert sorted(s.train.texts + s.validation.texts) == sorted(f"t{i}" for i in range(20))


# --- structure: checked, never guessed ------------------------------------------------------------

QUOTE_HINT = (
    "  hint: remove the stray quote, or quote the whole field and double each quote inside it "
    '("a ""quoted"" word")'
)


def data_file(tmp_path: Path, text: str, name: str = "train.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_a_row_with_more_fields_than_the_header_is_refused_at_its_line(tmp_path):
    # Read by position, "it crashes" would be the label and "a" nothing at all.
    path = data_file(tmp_path, "text,label\nfine,a\nmy code, it crashes,a\nalso fine,b\n")
    assert data_error(read, path) == (
        f"data.train: {path} line 3 has 3 fields, but the header has 2\n"
        '  hint: quote a text that holds a comma ("my code, it crashes"), or check the '
        "separator (zoo splits this file at each comma)"
    )


def test_every_row_with_the_wrong_number_of_fields_is_counted(tmp_path):
    path = data_file(tmp_path, "text,label\nfine,a\nno label\nx,y,z\nfine,b\n")
    assert data_error(read, path).startswith(
        f"data.train: {path} line 3 has 1 field, but the header has 2 (so do 1 more: lines 4)\n"
    )


def test_a_tsv_row_with_a_stray_tab_names_the_tab(tmp_path):
    path = data_file(tmp_path, "text\tlabel\nfine\ta\nmy code\tit crashes\ta\n", "train.tsv")
    assert data_error(read, path) == (
        f"data.train: {path} line 3 has 3 fields, but the header has 2\n"
        '  hint: quote a text that holds a tab ("my code, it crashes"), or check the '
        "separator (zoo splits this file at each tab)"
    )


def test_a_header_that_names_a_column_zoo_reads_twice_is_refused(tmp_path):
    path = data_file(tmp_path, "text,label,text\nhello,a,bye\nbye,b,hello\n")
    assert data_error(read, path) == (
        f"data.train: {path} has 2 columns named 'text' (columns 1, 3 of the header)\n"
        "  hint: rename all but one of them: data.text_column names one column"
    )


def test_columns_zoo_does_not_read_may_share_a_name(tmp_path):
    path = data_file(tmp_path, "note,text,note,label\nx,hello,y,a\n,bye,,b\n")
    assert read(path)[0] == LabelledTexts(("hello", "bye"), ("a", "b"))


def test_header_names_are_trimmed(tmp_path):
    path = data_file(tmp_path, "text, label\nhello, a\n")
    assert read(path)[0] == LabelledTexts(("hello",), ("a",))


def test_a_stray_quote_that_runs_to_the_end_of_the_file_is_refused_where_it_starts(tmp_path):
    rows = "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(20))
    path = data_file(tmp_path, 'text,label\nfine,a\n"a stray quote,b\n' + rows)
    assert data_error(read, path) == (
        f"data.train: {path} line 3: the quote that starts a field here is never closed (the "
        "field would run to the end of the file)\n" + QUOTE_HINT
    )


def test_a_stray_quote_closed_inside_a_later_text_is_refused_where_it_starts(tmp_path):
    path = data_file(tmp_path, 'text,label\n"a stray quote,b\nnext,a\nhe said "hi",b\n')
    assert data_error(read, path) == (
        f"data.train: {path} line 2: a quoted field starts here, ends on line 4 and has more "
        "text after its closing quote, before the next comma\n" + QUOTE_HINT
    )


def test_text_after_a_closing_quote_is_refused(tmp_path):
    path = data_file(tmp_path, 'text,label\n"quoted" and not,a\n')
    assert data_error(read, path) == (
        f"data.train: {path} line 2: a quoted field starts here and has more text after its "
        "closing quote, before the next comma\n" + QUOTE_HINT
    )


def test_a_quote_problem_inside_a_row_that_started_earlier_is_reported_where_the_row_starts(
    tmp_path,
):
    # The stray quote on line 3 ends at the first quote of line 5, whose second quote opens a
    # field that ends badly on line 7: the row from line 3 is the one to look at.
    text = 'text,label\nfine,c\n"stray,b\nrow,d\n",,,",e\nmore,f\n"quoted" text,g\n'
    path = data_file(tmp_path, text)
    assert data_error(read, path) == (
        f"data.train: {path} line 3: the row that starts here runs on to line 7, where a quoted "
        "field (from line 5) has more text after its closing quote\n" + QUOTE_HINT
    )


def test_a_problem_just_below_a_text_that_spans_lines_names_that_text_as_the_suspect(tmp_path):
    # The stray quote on line 2 turns the quotes after it inside out: line 3's opening quote
    # closes it, and line 5's closing quote opens a field that never ends.
    path = data_file(tmp_path, 'label,id,note,text\na,0,x,"x\na,1,"\n\n",x\n')
    assert data_error(read, path) == (
        f"data.train: {path} line 5: the quote that starts a field here is never closed (the "
        "field would run to the end of the file) (if the text on lines 2-3 was not meant to span "
        "lines, the stray quote is on line 2)\n" + QUOTE_HINT
    )


def test_a_stray_quote_closed_cleanly_further_down_is_refused_for_the_rows_it_swallows(tmp_path):
    # The stray quote ends at the quote after 12: strict csv reads one text of 21 lines.
    rows = "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(20))
    path = data_file(tmp_path, 'text,label\nfine,a\n"a stray quote,b\n' + rows + 'a 12",b\n')
    assert data_error(read, path) == (
        f"data.train: {path} line 3: the quoted field that starts here runs on to line 24 and "
        "takes in line 4, which looks like a row of its own ('row 0,a')\n" + QUOTE_HINT
    )


def test_a_stray_quote_in_a_label_first_file_is_refused_for_the_rows_it_swallows(tmp_path):
    path = data_file(tmp_path, 'label,text\na,fine\nb,"stray\na,row\nb,closed"\n')
    assert data_error(read, path).startswith(
        f"data.train: {path} line 3: the quoted field that starts here runs on to line 5 and "
        "takes in line 4, which looks like a row of its own ('a,row')\n"
    )


def test_multi_line_texts_with_separators_in_them_are_read(tmp_path):
    # Lines of a text that hold the separator but no label where the label would be are no rows.
    text = 'label,text\na,"first, line\nsecond, line"\nb,"a list:\n1, one\n2, two"\na,x\nb,y\n'
    path = data_file(tmp_path, text)
    assert read(path)[0] == LabelledTexts(
        ("first, line\nsecond, line", "a list:\n1, one\n2, two", "x", "y"),
        ("a", "b", "a", "b"),
        lines=(2, 4, 7, 8),
    )


def test_blank_lines_are_not_rows(tmp_path):
    path = data_file(tmp_path, "\ntext,label\n\nhello,a\n   \n\nbye,b\n\n")
    assert read(path)[0] == LabelledTexts(("hello", "bye"), ("a", "b"), rows=(0, 1), lines=(4, 7))


def test_a_tsv_written_without_quoting_is_read_with_its_quotes(tmp_path):
    # As NSMC has it: a text that starts with a quote and goes on after the closing one.
    text = 'id\tdocument\tlabel\n1\t"quoted words" and more\t1\n2\t"all quoted"\t0\n3\tplain\t0\n'
    path = data_file(tmp_path, text, "train.tsv")
    read = read_table(path, text_column="document", label_column="label", setting="data.train")
    assert read.rows == LabelledTexts(
        ('"quoted words" and more', '"all quoted"', "plain"), ("1", "0", "0")
    )
    assert read.notices == (
        f"data.train: {path} is read as a TSV file without quoting (each line one row, quotes "
        "kept as part of the text) because line 2 has a text that starts with a quote and goes "
        "on after it",
    )


def test_a_tsv_that_uses_csv_quoting_elsewhere_is_not_read_without_it(tmp_path):
    # An escaped quote ("") shows CSV quoting: one broken field is an error, not a new reading.
    text = 'text\tlabel\n"a ""quoted"" word"\ta\n"broken" quote\tb\n'
    path = data_file(tmp_path, text, "train.tsv")
    assert data_error(read, path).startswith(
        f"data.train: {path} line 3: a quoted field starts here and has more text after its "
        "closing quote, before the next tab\n"
    )


def test_a_tsv_whose_labels_are_quoted_is_not_read_without_quoting(tmp_path):
    text = 'text\tlabel\n"broken" quote\t"a"\nfine\t"b"\n'
    path = data_file(tmp_path, text, "train.tsv")
    assert "line 2: a quoted field starts here" in data_error(read, path)


def test_a_sniffed_separator_is_checked_like_any_other(tmp_path):
    path = data_file(tmp_path, "text;label\nhello;a\nbye;b;c\n", "train.txt")
    assert data_error(read, path).startswith(
        f"data.train: {path} line 3 has 3 fields, but the header has 2\n"
        '  hint: quote a text that holds a semicolon ("my code, it crashes")'
    )


# --- encodings: one per file ----------------------------------------------------------------------


def test_utf8_with_rows_appended_in_cp949_is_refused_at_the_first_cp949_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(KOREAN.encode("utf-8") + "과제가 어려워요,과제\n".encode("cp949"))
    # Decoded whole as cp949, the UTF-8 rows' labels would read 怨쇱젣 and the like.
    assert data_error(read, path) == (
        f"data.train: {path} mixes encodings: line 2 is UTF-8, but line 4 is not (it has the "
        "byte 0xb0, and reads as cp949)\n"
        "  hint: save the whole file as UTF-8 (re-save or re-type the lines that are not); zoo "
        "reads a file in one encoding"
    )


def test_a_byte_order_mark_says_utf8_even_when_the_other_rows_are_ascii(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\nhello,a\n" + "안녕,b\n".encode("cp949"))
    assert data_error(read, path).startswith(
        f"data.train: {path} mixes encodings: line 1 is UTF-8, but line 3 is not"
    )


def test_cp949_rows_above_utf8_rows_are_refused_too(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(
        "text,label\n결제가 두 번 됐어요,결제\n".encode("cp949") + "비밀번호,계정\n".encode()
    )
    assert data_error(read, path).startswith(
        f"data.train: {path} mixes encodings: line 3 is UTF-8, but line 2 is not"
    )


def test_utf8_latin_rows_with_a_cp949_row_are_refused(tmp_path):
    # café in UTF-8 is also valid cp949 (caf챕): the UTF-8 lines outnumber the others.
    path = tmp_path / "train.csv"
    latin = "".join(f"café {i},{'ab'[i % 2]}\n" for i in range(4))
    path.write_bytes(f"text,label\n{latin}".encode() + "결제,a\n".encode("cp949"))
    assert data_error(read, path).startswith(
        f"data.train: {path} mixes encodings: line 2 is UTF-8, but line 6 is not"
    )


def test_an_explicit_encoding_is_obeyed(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes("text,label\ncafé,a\n".encode())
    assert read(path, encoding="cp949") == (LabelledTexts(("caf챕",), ("a",)), "cp949")


def test_a_nul_byte_is_reported_with_its_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\nhello,a\nhel\x00lo,b\n")
    assert data_error(read, path) == (
        f"data.train: {path} has a NUL byte (0x00) on line 3, which no text file has\n"
        "  hint: the file is binary or damaged there; save the table as CSV (UTF-8) with a "
        "header line naming its columns"
    )


def test_utf16_without_a_byte_order_mark_says_so(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes("text,label\nhello,a\n".encode("utf-16-le"))
    assert data_error(read, path).startswith(
        f"data.train: {path} is UTF-16 text, which zoo does not read\n"
    )


def test_a_folder_given_as_a_file(tmp_path):
    assert data_error(read, tmp_path) == (
        f"data.train: {tmp_path} is a folder, not a file\n"
        "  hint: name the CSV or TSV file itself, not the folder that holds it"
    )


# --- cells: NFC, whitespace and missing values, for texts and labels alike ------------------------

NFC, NFD = "코드", unicodedata.normalize("NFD", "코드")


def test_nfc_and_nfd_labels_are_one_class_and_a_notice_says_so(tmp_path):
    assert NFC != NFD
    path = data_file(tmp_path, f"text,label\na,{NFC}\nb,{NFD}\nc,{NFD}\nd,웹\n")
    read = read_table(path, text_column="text", label_column="label", setting="data.train")
    assert read.rows.labels == (NFC, NFC, NFC, "웹")
    assert read.notices == (
        "data.train: labels spelled in another Unicode form than NFC (such as NFD) are read "
        "in NFC, one label with their NFC spelling: '코드' (2 rows)",
    )


def test_texts_header_names_and_column_names_are_compared_in_nfc(tmp_path):
    path = data_file(tmp_path, f"{NFD},label\n{NFD} 질문,a\n")
    texts, _ = read(path, text_column=NFD)
    assert texts.texts == (f"{NFC} 질문",)
    assert read(path, text_column=NFC)[0] == texts


def test_a_label_that_reads_as_missing_counts_as_missing_like_a_text(tmp_path):
    path = data_file(tmp_path, "text,label\nfine,a\nno label,NaN\nnone here,NULL\n")
    assert data_error(read, path).startswith(
        f"data.train: {path} has 2 rows with an empty text or label "
        "(lines 3, 4; 'NULL', 'NaN' count as empty)\n"
    )


def test_missing_words_are_case_sensitive_as_in_pandas(tmp_path):
    # korean-hate-speech's label for "no hate" is none: a label, as it is for pandas.
    path = data_file(tmp_path, "text,label\nfine,none\nalso fine,hate\nNan,none\n")
    assert read(path)[0] == LabelledTexts(("fine", "also fine", "Nan"), ("none", "hate", "none"))


def test_the_missing_words_are_exactly_pandas_defaults(tmp_path):
    import pandas

    from zoo.cells import MISSING

    words = sorted(MISSING - {""}) + ["none", "Nan", "NAN", "nil", "-", "0", "N.A."]
    path = data_file(tmp_path, "word\n" + "".join(f"{w}\n" for w in words) + "x\n")
    read_by_pandas = pandas.read_csv(path, keep_default_na=True)["word"].tolist()[:-1]
    assert {w for w, v in zip(words, read_by_pandas, strict=True) if pandas.isna(v)} == MISSING - {
        ""
    }


def test_read_texts_reads_as_strictly_as_read_table(tmp_path):
    path = data_file(tmp_path, f'id,text\n7,  {NFD}  \n8,NaN\n9,"two\nlines"\n')
    assert read_texts(path, text_column="text", id_column="id", setting="--input") == (
        [NFC, "", "two\nlines"],
        ["7", "8", "9"],
    )
    bad = data_file(tmp_path, "id,text\n1,my code, it crashes\n", "bad.csv")
    assert data_error(read_texts, bad, text_column="text", id_column=None, setting="--input") == (
        f"--input: {bad} line 2 has 3 fields, but the header has 2\n"
        '  hint: quote a text that holds a comma ("my code, it crashes"), or check the '
        "separator (zoo splits this file at each comma)"
    )


def test_read_texts_hints_name_zoo_predicts_options(tmp_path):
    path = data_file(tmp_path, "id,body\n1,hello\n", "input.csv")
    call = {"setting": "--input", "id_column": None}
    assert data_error(read_texts, path, text_column="text", **call) == (
        f"--input: {path} has no column 'text' (columns: 'id', 'body')\n"
        "  hint: give --text-column the name of the column with the texts"
    )
    assert data_error(read_texts, path, text_column="body", **{**call, "id_column": "key"}) == (
        f"--input: {path} has no column 'key' (columns: 'id', 'body')\n"
        "  hint: --id-column must name a column of the input file"
    )
    path.write_bytes("id,body\n1,결제\n".encode("cp949"))
    assert data_error(read_texts, path, text_column="body", encoding="utf-8", **call) == (
        f"--input: {path} is not text in utf-8 (line 2 has the byte 0xb0, which is not UTF-8)\n"
        "  hint: save it as UTF-8, or give --encoding the file's encoding"
    )


def test_read_texts_refuses_a_stray_quote_that_swallows_rows_of_a_labelled_test_file(tmp_path):
    # The unlabelled reader knows no label column; a column whose values repeat serves.
    text = 'id,text,label\n1,fine,a\n2,"stray,b\n3,row,a\n4,closed",b\n5,more,a\n6,more,b\n'
    path = data_file(tmp_path, text)
    assert "line 3: the quoted field that starts here runs on to line 5" in data_error(
        read_texts, path, text_column="text", id_column="id", setting="--input"
    )


def test_unicode_digit_labels_are_ordered_alphabetically():
    # str.isdigit takes ① and ², int() does not.
    assert label_order(("①", "②", "10", "²")) == ("10", "²", "①", "②")
    assert label_order(("٣", "1")) == ("1", "٣")


# --- what each message and notice says, to the row ------------------------------------------------


def test_labelled_texts_refuse_columns_of_different_lengths():
    with pytest.raises(ValueError) as caught:
        LabelledTexts(("a", "b"), ("x",))
    assert str(caught.value) == "texts, labels, rows and lines must have the same length"


def test_a_header_that_names_the_label_column_twice_names_data_label_column(tmp_path):
    path = data_file(tmp_path, "label,text,label\na,hello,b\nb,bye,a\n")
    assert data_error(read, path) == (
        f"data.train: {path} has 2 columns named 'label' (columns 1, 3 of the header)\n"
        "  hint: rename all but one of them: data.label_column names one column"
    )


def test_one_row_left_out_is_one_row(tmp_path):
    path = data_file(tmp_path, "text,label\nfine,a\n,b\nfine too,b\n")
    read = read_table(
        path, text_column="text", label_column="label", setting="data.train", empty_texts="drop"
    )
    assert read.notices == (
        'data.train: left out 1 row with an empty text or label (data.empty_texts = "drop")',
    )


def test_every_label_that_nfc_merged_is_named_with_its_rows(tmp_path):
    web = unicodedata.normalize("NFD", "웹")
    path = data_file(tmp_path, f"text,label\na,{NFD}\nb,{web}\nc,{web}\nd,{NFC}\n")
    read = read_table(path, text_column="text", label_column="label", setting="data.train")
    assert read.notices == (
        "data.train: labels spelled in another Unicode form than NFC (such as NFD) are read "
        "in NFC, one label with their NFC spelling: '웹' (2 rows), '코드' (1 row)",
    )


@pytest.mark.parametrize(
    ("empty", "shown"), [(5, "lines 2, 3, 4, 5, 6"), (6, "lines 2, 3, 4, 5, 6 ...")]
)
def test_up_to_five_empty_lines_are_shown_and_dots_say_there_are_more(tmp_path, empty, shown):
    path = data_file(tmp_path, "text,label\n" + ",x\n" * empty + "fine,x\n")
    assert data_error(read, path).startswith(
        f"data.train: {path} has {empty} rows with an empty text or label ({shown})\n"
    )


def test_one_missing_value_word_counts_as_empty(tmp_path):
    path = data_file(tmp_path, "text,label\nfine,a\nNaN,b\nNaN,c\n")
    assert data_error(read, path) == (
        f"data.train: {path} has 2 rows with an empty text or label "
        "(lines 3, 4; 'NaN' counts as empty)\n"
        '  hint: fill them in or remove them, or set data.empty_texts = "drop" to leave them out'
    )


# --- read_input: the texts zoo predict classifies ------------------------------------------------


def test_read_input_gives_each_text_its_line_and_the_encoding_that_read_it(tmp_path):
    path = tmp_path / "input.csv"
    path.write_bytes('text\n"결제가\n두 번"\n비밀번호\n'.encode("cp949"))
    assert read_input(path, text_column="text", setting="--input") == InputTexts(
        texts=("결제가\n두 번", "비밀번호"), ids=None, lines=(2, 4), encoding="cp949"
    )


def test_read_input_keeps_the_notices_of_its_reading(tmp_path):
    text = 'id\tdocument\n1\t"quoted words" and more\n2\tplain\n'
    path = data_file(tmp_path, text, "input.tsv")
    read = read_input(path, text_column="document", id_column="id", setting="--input")
    assert read == InputTexts(
        texts=('"quoted words" and more', "plain"),
        ids=("1", "2"),
        lines=(2, 3),
        encoding="utf-8-sig",
        notices=(
            f"--input: {path} is read as a TSV file without quoting (each line one row, quotes "
            "kept as part of the text) because line 2 has a text that starts with a quote and "
            "goes on after it",
        ),
    )


def test_an_input_file_without_rows_says_so(tmp_path):
    path = data_file(tmp_path, "id,text\n", "input.csv")
    assert data_error(read_input, path, text_column="text", setting="--input") == (
        f"--input: {path} has no data rows\n"
        "  hint: add one row per text to classify below the header line"
    )


def test_read_texts_without_an_id_column_gives_no_ids(tmp_path):
    path = data_file(tmp_path, "id,text\n7,hello\n8,bye\n", "input.csv")
    assert read_texts(path, text_column="text", id_column=None, setting="--input") == (
        ["hello", "bye"],
        None,
    )


def test_read_texts_hints_name_the_options_it_is_given(tmp_path):
    path = data_file(tmp_path, "id,body\n1,hello\n", "input.csv")
    call = {"setting": "data.test", "id_column": None, "options": RECIPE}
    assert data_error(read_texts, path, text_column="text", **call) == (
        f"data.test: {path} has no column 'text' (columns: 'id', 'body')\n"
        "  hint: set data.text_column and data.label_column to the file's column names"
    )


# --- load_splits passes on what the recipe says, and says what it found ---------------------------


def test_load_splits_reads_in_the_recipes_encoding(tmp_path):
    (tmp_path / "train.csv").write_bytes(KOREAN.encode("cp949"))
    data = DataSection(train="train.csv", validation=0.5, encoding="utf-8")
    assert data_error(load_splits, data, tmp_path, seed=1).startswith(
        f"data.train: {tmp_path / 'train.csv'} is not text in utf-8 "
    )


def test_load_splits_refuses_one_number_spelled_two_ways_naming_the_file(tmp_path):
    train = "text,label\na,1\nb,0\nc,1.0\nd,0\n"
    data = DataSection(train=write(tmp_path / "train.csv", train), validation=0.5)
    assert data_error(load_splits, data, tmp_path, seed=1).startswith(
        f"data.train: {tmp_path / 'train.csv'} spells one label two ways: '1' (line 2) and "
        "'1.0' (line 4) are the same number"
    )


def test_unseen_labels_spelled_like_training_labels_are_named_in_the_hint(tmp_path):
    data = DataSection(
        train=write(tmp_path / "train.csv", "text,label\na,code\nb,web\n"),
        test=write(tmp_path / "test.csv", "text,label\nc,Web\nd,Code\ne,code\n"),
        validation=write(tmp_path / "val.csv", "text,label\nf,code\n"),
    )
    assert data_error(load_splits, data, tmp_path, seed=1) == (
        "data.test: labels not seen in data.train: 'Code', 'Web'\n"
        "  hint: 'Code' looks like the training label 'code' spelled another way; write it as "
        "data.train does"
    )


def test_only_the_first_five_unseen_labels_are_named(tmp_path):
    test = "text,label\n" + "".join(f"t{i},{label}\n" for i, label in enumerate("abcdefx"))
    data = DataSection(
        train=write(tmp_path / "train.csv", "text,label\nu,x\nv,y\n"),
        test=write(tmp_path / "test.csv", test),
        validation=write(tmp_path / "val.csv", "text,label\nw,x\n"),
    )
    assert data_error(load_splits, data, tmp_path, seed=1).startswith(
        "data.test: labels not seen in data.train: 'a', 'b', 'c', 'd', 'e'\n"
    )


def test_load_splits_says_what_each_file_may_get_wrong(tmp_path):
    data = DataSection(
        train=write(tmp_path / "train.csv", "text,label\na,code\nb,Code\na,web\nc,web\n"),
        validation=write(tmp_path / "val.csv", "text,label\nb,code\nnew,web\n"),
        test=write(tmp_path / "test.csv", "text,label\nnew,web\nc,web\n"),
    )
    splits = load_splits(data, tmp_path, seed=1)
    assert splits.encodings == {
        "train": "utf-8-sig",
        "validation": "utf-8-sig",
        "test": "utf-8-sig",
    }
    assert splits.dropped == {"train": 0, "validation": 0, "test": 0}
    assert splits.notices == (
        "data.train: the labels 'code', 'Code' differ only in case or spacing (lines 2, 3) and "
        "are different classes",
        "data.train: 1 text appears with different labels (e.g. 'code' on line 2, 'web' on line 4)",
        "data.validation: 1 of 2 texts are also in data.train (lines 2): their scores are not "
        "those of unseen text",
        "data.test: 1 of 2 texts are also in data.train (lines 3): their scores are not those "
        "of unseen text",
    )


def test_a_split_of_a_file_with_repeated_rows_says_so(tmp_path):
    train = "text,label\n" + "".join(f"t{i},{'xy'[i % 2]}\n" for i in range(8)) + "t1,y\n"
    data = DataSection(train=write(tmp_path / "train.csv", train), validation=0.25)
    assert load_splits(data, tmp_path, seed=1).notices == (
        "data.train: 1 row repeats an earlier row (e.g. line 10 repeats line 3): a validation "
        "split may score texts that training saw",
    )
