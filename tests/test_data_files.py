"""Random data files with a known content: zoo reads back exactly those rows, or refuses the
file with the line where it goes wrong; never anything in between.

The files are written here with their own small CSV writer (quotes, separators and line breaks
inside fields, byte-order marks, cp949, NFD, whitespace around values, pandas' missing-value
words, blank lines), and what zoo must read is computed from the documented rules (NFC, strip,
missing words), not with zoo's code. Damaged files (a stray quote, one closed further down, a
field too many, a cp949 row appended to UTF-8) must be refused at the right line, or read
exactly as the rules read them.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from zoo.data import read_table
from zoo.errors import DataError

# pandas' default missing-value words, as pandas spells them.
MISSING = {
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
}  # fmt: skip
LINE_BREAK = re.compile(r"\r\n|\r|\n")
SETTINGS = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Labels, and the pieces texts are made of. No text holds a label between separators, so no
# line of a valid file's multi-line text looks like a row of its own (zoo refuses those).
LABELS = ["a", " b ", "코드", unicodedata.normalize("NFD", "코드"), "1", "10", "none", "①"]
PIECES = [
    "x", "y z", "가나", unicodedata.normalize("NFD", "다라"), "7", "'", '"', ",", "\t", ";",
    "\n", "\r\n", " ", "\u3000", "NaN", "None", "null", "Nan",
]  # fmt: skip
WORDS = ["x", "y", "가나", unicodedata.normalize("NFD", "다라"), "7", "NaN"]
# Korean syllables whose cp949 bytes are no UTF-8 (a cp949 file that happens to be valid
# UTF-8 is read as UTF-8: the bytes cannot tell).
CP949_ROW = "결제 문의"


def cleaned(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


def line_of(text: str, offset: int) -> int:
    return 1 + len(LINE_BREAK.findall(text, 0, offset))


@attrs.frozen
class Written:
    """A data file as written, and what reading it must give."""

    text: str  # the file's text
    separator: str
    suffix: str
    text_column: str  # as the recipe names it
    header: tuple[str, ...]
    records: tuple[tuple[str, ...], ...]  # each record's fields as written
    lines: tuple[int, ...]  # where each record starts
    text_starts: tuple[int, ...]  # where each record's text field starts in `text`
    text_quoted: tuple[bool, ...]  # whether that field was written quoted
    ends: tuple[int, ...]  # where each record's line break is in `text`

    @property
    def text_at(self) -> int:
        return [cleaned(name) for name in self.header].index(cleaned(self.text_column))

    @property
    def label_at(self) -> int:
        return [cleaned(name) for name in self.header].index("label")

    def label(self, record: int) -> str:
        return cleaned(self.records[record][self.label_at])

    def expected(self) -> list[tuple[int, str, str, int]]:
        """(row, text, label, line) of each row kept, by the documented rules."""
        rows = []
        for position, (fields, line) in enumerate(zip(self.records, self.lines, strict=True)):
            text, label = cleaned(fields[self.text_at]), cleaned(fields[self.label_at])
            if text not in MISSING and label not in MISSING:
                rows.append((position, text, label, line))
        return rows


def quote(field: str, separator: str, always: bool) -> str:
    if always or any(c in field for c in (separator, '"', "\n", "\r")):
        return '"' + field.replace('"', '""') + '"'
    return field


@st.composite
def data_files(draw, *, quote_all=None, min_rows=1, few_labels=False) -> Written:
    separator, suffix = draw(st.sampled_from([(",", ".csv"), ("\t", ".tsv"), ("\t", ".txt")]))
    always = draw(st.booleans()) if quote_all is None else quote_all
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text_name = draw(
        st.sampled_from(["text", " text ", "본문", unicodedata.normalize("NFD", "본문")])
    )
    names = [text_name, "label"] + draw(
        st.lists(st.sampled_from(["id", "note", "note"]), max_size=2)
    )
    order = draw(st.permutations(range(len(names))))
    header = tuple(names[i] for i in order)
    # Some texts of plain words only, which a writer leaves unquoted.
    words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
    texts = st.one_of(words, st.lists(st.sampled_from(PIECES), max_size=6).map("".join))
    labels = st.one_of(
        st.sampled_from(LABELS[:3] if few_labels else LABELS),
        st.sampled_from(["NaN", "", " None ", "#N/A"]),
    )
    rows = draw(st.lists(st.tuples(texts, labels, texts), min_size=min_rows, max_size=12))
    out = io.StringIO()
    out.write(draw(st.sampled_from(["", "\n"])))
    out.write(separator.join(quote(n, separator, always) for n in header) + ending)
    records, lines, starts, quoted, ends = [], [], [], [], []
    for number, (text, label, note) in enumerate(rows):
        values = {text_name: text, "label": label, "id": str(number), "note": note}
        fields = tuple(values[name] for name in header)
        lines.append(line_of(out.getvalue(), out.tell()))
        written = [quote(field, separator, always) for field in fields]
        at = header.index(text_name)
        starts.append(out.tell() + sum(len(w) + len(separator) for w in written[:at]))
        quoted.append(written[at].startswith('"'))
        out.write(separator.join(written))
        ends.append(out.tell())
        out.write(ending)
        records.append(fields)
        out.write(draw(st.sampled_from(["", "", "", ending, "   " + ending])))  # blank lines
    column = draw(st.sampled_from([text_name, cleaned(text_name)]))  # the recipe's spelling
    return Written(
        out.getvalue(), separator, suffix, column, header, tuple(records), tuple(lines),
        tuple(starts), tuple(quoted), tuple(ends),
    )  # fmt: skip


def encodings(written: Written):
    """The byte encodings this file's text can be saved in."""
    names = ["utf-8", "utf-8-sig"]
    try:
        raw = written.text.encode("cp949")
    except UnicodeEncodeError:
        return st.sampled_from(names)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        names.append("cp949")
    return st.sampled_from(names)


def read(path: Path, written: Written):
    return read_table(
        path,
        text_column=written.text_column,
        label_column="label",
        setting="data.train",
        empty_texts="drop",
    )


def rows_of(result) -> list[tuple[int, str, str, int]]:
    rows = result.rows
    return list(zip(rows.rows, rows.texts, rows.labels, rows.lines, strict=True))


def lines_named(message: str) -> set[int]:
    return {int(n) for n in re.findall(r"\bline (\d+)", message)}


def save(tmp_path: Path, written: Written, raw: bytes) -> Path:
    path = tmp_path / f"train{written.suffix}"
    path.write_bytes(raw)
    return path


@SETTINGS
@given(data=st.data())
def test_a_valid_file_reads_back_exactly_its_rows(data, tmp_path):
    written = data.draw(data_files())
    encoding = data.draw(encodings(written))
    path = save(tmp_path, written, written.text.encode(encoding))
    expected = written.expected()
    if not expected:
        with pytest.raises(DataError, match="has no data rows left after leaving out"):
            read(path, written)
        return
    result = read(path, written)
    assert rows_of(result) == expected
    assert result.encoding == ("cp949" if encoding == "cp949" else "utf-8-sig")
    # Only what the rules say reading changes is announced: rows left out, NFD labels.
    assert all("without quoting" not in notice for notice in result.notices)


def plain_rows(text: str, written: Written) -> list[tuple[int, str, str, int]]:
    """A TSV file read without quoting: each non-blank line one record, split at tabs."""
    lines = [
        (number, line)
        for number, line in enumerate(LINE_BREAK.split(text), start=1)
        if line.strip()
    ]
    header = [cleaned(name) for name in lines[0][1].split("\t")]
    text_at, label_at = header.index(cleaned(written.text_column)), header.index("label")
    rows = []
    for position, (number, line) in enumerate(lines[1:]):
        fields = line.split("\t")
        text, label = cleaned(fields[text_at]), cleaned(fields[label_at])
        if text not in MISSING and label not in MISSING:
            rows.append((position, text, label, number))
    return rows


def strict_csv_rows(text: str, written: Written) -> tuple[list, list[int]] | None:
    """The file as the csv module's strict mode reads it (the rows kept, and the line where
    each record starts), or None where it cannot."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=written.separator, strict=True)
    records, end = [], 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if fields and not (len(fields) == 1 and not fields[0].strip()):
                records.append((fields, start))
    except csv.Error:
        return None
    header = [cleaned(name) for name in records[0][0]]
    if any(len(fields) != len(header) for fields, _ in records):
        return None
    text_at, label_at = header.index(cleaned(written.text_column)), header.index("label")
    rows = []
    for position, (fields, line) in enumerate(records[1:]):
        text, label = cleaned(fields[text_at]), cleaned(fields[label_at])
        if text not in MISSING and label not in MISSING:
            rows.append((position, text, label, line))
    return rows, [line for _fields, line in records[1:]]


def tellable_rows_swallowed(damaged: str, written: Written, first: int) -> bool:
    """Whether the quoted field that opens in record `first` took in a record that zoo can
    tell for one: a whole line of its own, with the header's number of fields and a label (not
    missing) that a record outside the quoted field has too."""
    _rows, starts = strict_csv_rows(damaged, written)
    count = len(written.records)
    swallowed = [k for k in range(first + 1, count) if written.lines[k] not in starts]
    inner = swallowed[:-1]  # the last one holds the closing quote: it is only partly inside
    outside = {written.label(k) for k in range(count) if k != first and k not in swallowed}
    lines = LINE_BREAK.split(damaged)
    return any(
        len(lines[written.lines[k] - 1].split(written.separator)) == len(written.header)
        and written.label(k) not in MISSING
        and written.label(k) in outside
        for k in inner
    )


def kind_of(message: str) -> str:
    """What a refusal says, without its path and numbers (for the statistics)."""
    return re.sub(r"\d+", "N", message.split(".tsv", 1)[-1].split(".csv", 1)[-1].split(".txt")[-1])[
        :60
    ]


DAMAGES = ["stray quote", "stray quote closed further down", "field appended", "cp949 row appended"]


@SETTINGS
@given(data=st.data())
def test_a_damaged_file_is_refused_at_the_right_line_or_read_exactly(data, tmp_path):
    written = data.draw(data_files(quote_all=False, min_rows=2, few_labels=True))
    damage = data.draw(st.sampled_from(DAMAGES))
    text, count = written.text, len(written.records)
    first = data.draw(st.integers(0, count - 1))
    if damage.startswith("stray quote"):
        # At the start of a text that was written without quotes...
        unquoted = [k for k in range(count) if not written.text_quoted[k]]
        assume(unquoted[:-1] if damage.endswith("further down") else unquoted)
        first = data.draw(st.sampled_from(unquoted[:-1] or unquoted))
        at = written.text_starts[first]
        damaged = text[:at] + '"' + text[at:]
        if damage == "stray quote closed further down":
            # ...and a quote at the end of a later one, which closes it where a field may end.
            last = data.draw(st.sampled_from([k for k in unquoted if k > first]))
            end = written.text_starts[last] + len(written.records[last][written.text_at]) + 1
            damaged = damaged[:end] + '"' + damaged[end:]
        raw = damaged.encode("utf-8")
        right_lines = {written.lines[first], line_of(text, at)}
    elif damage == "field appended":
        # At the end of the record's last line.
        end = written.ends[first]
        damaged = text[:end] + written.separator + "extra" + text[end:]
        raw = damaged.encode("utf-8")
        right_lines = {written.lines[first]}
    else:
        values = {written.text_at: CP949_ROW, written.label_at: "a"}
        row = written.separator.join(values.get(i, "x") for i in range(len(written.header)))
        damaged = text + row + "\n"
        raw = text.encode("utf-8") + (row + "\n").encode("cp949")
        right_lines = {line_of(damaged, len(text))}
    path = save(tmp_path, written, raw)
    try:
        result = read(path, written)
    except DataError as refused:
        message = str(refused)
        event(f"{damage}: refused ({kind_of(message)})")
        if "mixes encodings" in message:
            assert int(re.search(r"but line (\d+) is not", message).group(1)) in right_lines
        elif "has no data rows" in message:  # every row left is missing a text or label
            assert not written.expected() or damage.startswith("stray quote")
        else:
            # The line where it goes wrong, or (for a stray quote that turns the quotes after it
            # inside out) the quoted text above the problem that zoo names as the suspect.
            assert lines_named(message) & right_lines, message
        return
    # Read: then exactly as the rules read the damaged file.
    plain = any("without quoting" in notice for notice in result.notices)
    event(f"{damage}: read" + (" as a TSV without quoting" if plain else ""))
    got = rows_of(result)
    if damage == "cp949 row appended":
        # Only a file with nothing but ASCII in it can be cp949 as a whole.
        assert text.isascii()
        assert got == strict_csv_rows(damaged, written)[0]
    elif plain:
        assert written.separator == "\t"
        assert got == plain_rows(damaged, written)
    else:
        assert damage.startswith("stray quote")
        strict = strict_csv_rows(damaged, written)
        assert strict is not None and got == strict[0]
        # Rows went into the quoted text only where none of them could be told for a row.
        assert not tellable_rows_swallowed(damaged, written, first)


# --- the real Korean data sets beside the project ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "text_column", "label_column", "rows"),
    [
        ("nsmc/train_20k.tsv", "document", "label", 20_000),
        ("nsmc/test_4k.tsv", "document", "label", 4_000),
        ("chatbot/ChatbotData.csv", "Q", "label", 11_823),
        ("korean-hate-speech/train.tsv", "comments", "hate", 7_896),
        ("korean-hate-speech/dev.tsv", "comments", "hate", 471),
    ],
)
def test_the_shared_korean_data_sets_read_whole(shared_data, name, text_column, label_column, rows):
    result = read_table(
        shared_data / name, text_column=text_column, label_column=label_column, setting="data.train"
    )
    assert (len(result.rows), result.encoding, result.dropped) == (rows, "utf-8-sig", 0)
    # NSMC is a TSV without quoting: some of its texts start with a quote and go on after it.
    assert bool(result.notices) == name.startswith("nsmc/")
