"""Reading labelled CSV/TSV files and splitting them: plain Python, no torch.

Korean spreadsheets often come as cp949 (a superset of euc-kr); 'auto' tries UTF-8 (with or
without a byte-order mark) and then cp949. A file that is not a text table (an image, a workbook,
JSON) is a `DataError` that says what it is, never a decoding or csv traceback.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from pathlib import Path

import attrs

from zoo.errors import DataError

AUTO_ENCODINGS = ("utf-8-sig", "cp949")

# What spreadsheets and pandas write for a missing value; a text that reads so counts as empty.
MISSING_TEXTS = frozenset({"nan", "-nan", "none", "null", "na", "n/a", "#n/a", "<na>"})

# The first bytes of files that are no text at all, and what they are.
SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx workbook?)",
    b"\xd0\xcf\x11\xe0": "an old Office file (an Excel .xls workbook?)",
}
SEPARATORS = {",": ("commas", ".csv"), "\t": ("tabs", ".tsv"), ";": ("semicolons", ".txt")}


def _positions(instance: LabelledTexts) -> tuple[int, ...]:
    return tuple(range(len(instance.texts)))


def _one_line_each(instance: LabelledTexts) -> tuple[int, ...]:
    return tuple(row + 2 for row in instance.rows)  # below a one-line header


@attrs.frozen
class LabelledTexts:
    """Labelled rows and where each came from, so that every number can be traced to its rows."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    # Each row's position among the data rows of its file (0 = the first row below the header),
    # counting rows that were left out; a split keeps them.
    rows: tuple[int, ...] = attrs.field(default=attrs.Factory(_positions, takes_self=True))
    # The line of its file where each row starts (quoted texts may span lines).
    lines: tuple[int, ...] = attrs.field(default=attrs.Factory(_one_line_each, takes_self=True))

    def __attrs_post_init__(self) -> None:
        if not len(self.texts) == len(self.labels) == len(self.rows) == len(self.lines):
            raise ValueError("texts, labels, rows and lines must have the same length")

    def take(self, indices) -> LabelledTexts:
        """The rows at these positions, in this order, with their provenance."""
        return LabelledTexts(
            tuple(self.texts[i] for i in indices),
            tuple(self.labels[i] for i in indices),
            tuple(self.rows[i] for i in indices),
            tuple(self.lines[i] for i in indices),
        )

    def __len__(self) -> int:
        return len(self.texts)


@attrs.frozen
class Splits:
    train: LabelledTexts
    validation: LabelledTexts
    test: LabelledTexts | None
    # Label names in id order: labels[i] is the name of class id i.
    labels: tuple[str, ...]
    encodings: dict[str, str] = attrs.field(factory=dict)
    # Rows left out of each file ("train", "validation", "test") for an empty text or label,
    # with data.empty_texts = "drop".
    dropped: dict[str, int] = attrs.field(factory=dict)
    # What reading changed that the user should know (rows left out, ...): one sentence each,
    # starting with the setting ("data.train: ..."); `zoo run` prints them and run.json keeps them.
    notices: tuple[str, ...] = ()


def decode(path: Path, encoding: str, setting: str) -> tuple[str, str]:
    """The file's text and the encoding that decoded it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{setting}: file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode Text"
        raise DataError(
            f"{setting}: {path} is UTF-16 text, which zoo does not read",
            hint="save it as UTF-8 (in Excel: CSV UTF-8)",
        )
    kind = next((kind for magic, kind in SIGNATURES.items() if raw.startswith(magic)), None)
    if kind is None and b"\0" in raw:
        kind = "a binary file"
    if kind is not None:
        raise DataError(
            f"{setting}: {path} is {kind}, not a CSV or TSV table",
            hint="save the table as CSV (UTF-8) with a header line naming its columns",
        )
    tried = AUTO_ENCODINGS if encoding == "auto" else (encoding,)
    failures = []
    for name in tried:
        # A byte-order mark is never part of the data (Excel writes one); utf-8-sig drops it.
        codec = "utf-8-sig" if name == "utf-8" else name
        try:
            return raw.decode(codec), name
        except UnicodeDecodeError as exc:
            failures.append(exc)
    first = failures[0]
    line = raw.count(b"\n", 0, first.start) + 1
    raise DataError(
        f"{setting}: {path} is not text in {' or '.join(tried)} "
        f"(line {line} has the byte 0x{raw[first.start]:02x}, which is not {_name(tried[0])})",
        hint="save it as UTF-8, or set data.encoding to the file's encoding",
    )


def _name(encoding: str) -> str:
    return "UTF-8" if encoding.startswith("utf-8") else encoding


def _delimiter(path: Path, sample: str) -> str:
    if path.suffix.lower() in {".tsv", ".tab"}:
        return "\t"
    if path.suffix.lower() == ".csv":
        return ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;").delimiter
    except csv.Error:
        return ","


def _reader(path: Path, text: str) -> csv.DictReader:
    # Long texts are fine (models truncate them); the csv module's own limit is 128 KiB a field.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    return csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(path, text[:4096]))


def _no_column(
    path: Path,
    text: str,
    columns: list[str],
    missing: str,
    setting: str,
    hint: str = "set data.text_column and data.label_column to the file's column names",
) -> DataError:
    """The error for a file without the column asked for, saying what the file looks like."""
    if not text.strip():
        return DataError(
            f"{setting}: {path} is empty",
            hint="a data file needs a header line naming its columns (e.g. text,label) and one "
            "row per labelled text",
        )
    if text.lstrip()[0] in "{[":
        return DataError(
            f"{setting}: {path} looks like JSON, not a CSV or TSV table",
            hint="save the table as CSV (UTF-8) with a header line naming its columns",
        )
    found = ", ".join(repr(c) for c in columns) or "none"
    if len(columns) == 1:
        for separator, (name, suffix) in SEPARATORS.items():
            if separator in columns[0]:
                hint = f"its header line is separated by {name}: name the file {suffix}"
                break
    return DataError(f"{setting}: {path} has no column {missing!r} (columns: {found})", hint=hint)


def read_table(
    path: Path,
    *,
    text_column: str,
    label_column: str,
    encoding: str = "auto",
    setting: str,
    empty_texts: str = "fail",
) -> tuple[LabelledTexts, str, int]:
    """Read one labelled file; returns its rows, the encoding used and how many rows were left
    out for an empty text or label (`empty_texts="drop"`; with "fail" they are an error)."""
    text, used = decode(path, encoding, setting)
    reader = _reader(path, text)
    columns = reader.fieldnames or []
    missing = [c for c in (text_column, label_column) if c not in columns]
    if missing:
        raise _no_column(path, text, columns, missing[0], setting)
    texts, labels, empty, missing_values = [], [], [], set()
    rows, lines = [], []
    line = reader.line_num + 1  # where the next record starts; quoted texts may span lines
    try:
        for position, row in enumerate(reader):
            text_value = (row.get(text_column) or "").strip()
            label_value = (row.get(label_column) or "").strip()
            if text_value.lower() in MISSING_TEXTS:
                missing_values.add(text_value)
                text_value = ""
            if not text_value or not label_value:
                empty.append(line)
            else:
                texts.append(text_value)
                labels.append(label_value)
                rows.append(position)
                lines.append(line)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(
            f"{setting}: {path} cannot be read as a table at line {line}: {exc}",
            hint="check the quotes on that line",
        ) from None
    if empty and empty_texts != "drop":
        shown = ", ".join(map(str, empty[:5])) + (" ..." if len(empty) > 5 else "")
        rows = "row" if len(empty) == 1 else "rows"
        also = ""
        if missing_values:
            listed = ", ".join(repr(v) for v in sorted(missing_values))
            also = f"; {listed} {'counts' if len(missing_values) == 1 else 'count'} as empty"
        raise DataError(
            f"{setting}: {path} has {len(empty)} {rows} with an empty text or label "
            f"(lines {shown}{also})",
            hint='fill them in or remove them, or set data.empty_texts = "drop" to leave them out',
        )
    if not texts:
        left_out = (
            f" left after leaving out {len(empty)} with an empty text or label" if empty else ""
        )
        raise DataError(
            f"{setting}: {path} has no data rows{left_out}",
            hint="add one row per labelled text below the header line",
        )
    rows_read = LabelledTexts(tuple(texts), tuple(labels), tuple(rows), tuple(lines))
    return rows_read, used, len(empty)


def read_texts(
    path: Path, *, text_column: str, id_column: str | None, encoding: str = "auto", setting: str
) -> tuple[list[str], list[str] | None]:
    """Read the texts to classify (and their ids) from an unlabelled CSV/TSV file, in order."""
    text, _used = decode(path, encoding, setting)
    reader = _reader(path, text)
    columns = reader.fieldnames or []
    for column in (text_column, id_column):
        if column is not None and column not in columns:
            hint = (
                "the input needs the text column the model was trained on "
                "(data.text_column of the run's recipe)"
                if column == text_column
                else "--id-column must name a column of the input file"
            )
            raise _no_column(path, text, columns, column, setting, hint)
    rows = list(reader)
    if not rows:
        raise DataError(f"{setting}: {path} has no data rows")
    texts = [(row.get(text_column) or "").strip() for row in rows]
    ids = [row.get(id_column) or "" for row in rows] if id_column else None
    return texts, ids


def label_order(labels: tuple[str, ...]) -> tuple[str, ...]:
    """Label names in a stable order: numerically if they are all integers, else alphabetically."""
    names = set(labels)
    if all(n.lstrip("-").isdigit() for n in names):
        return tuple(sorted(names, key=lambda n: (int(n), n)))
    return tuple(sorted(names))


def stratified_split(
    rows: LabelledTexts, fraction: float, seed: int
) -> tuple[LabelledTexts, LabelledTexts]:
    """Hold out `fraction` of the rows, keeping each class's share."""
    from sklearn.model_selection import train_test_split

    counts = Counter(rows.labels)
    rare = sorted(label for label, n in counts.items() if n < 2)
    if rare:
        raise DataError(
            f"data.validation: label {rare[0]!r} has only one row in data.train, too few to "
            "split off a validation row",
            hint="add rows of that label, or give data.validation a file",
        )
    # scikit-learn rounds the held-out part up; each part needs a row of every label.
    held_out = math.ceil(len(rows) * fraction)
    for part, size in (("validation", held_out), ("training", len(rows) - held_out)):
        if size < len(counts):
            raise DataError(
                f"data.validation = {fraction} of {len(rows)} rows leaves {size} {part} rows, "
                f"fewer than the {len(counts)} labels",
                hint="change data.validation or add rows",
            )
    train_at, validation_at = train_test_split(
        range(len(rows)), test_size=fraction, random_state=seed, stratify=rows.labels
    )
    return rows.take(train_at), rows.take(validation_at)


def _check_known(rows: LabelledTexts, known: tuple[str, ...], setting: str) -> None:
    unseen = sorted(set(rows.labels) - set(known))
    if unseen:
        raise DataError(
            f"{setting}: labels not seen in data.train: {', '.join(map(repr, unseen[:5]))}",
            hint="a model cannot predict a label it never saw; add training rows for it",
        )


def load_splits(data, base_dir: Path, seed: int) -> Splits:
    """Read train (and test, and validation) as a recipe's [data] section describes them."""
    return load_splits_for_seeds(data, base_dir, (seed,))[seed]


def load_splits_for_seeds(data, base_dir: Path, seeds: tuple[int, ...]) -> dict[int, Splits]:
    """The splits for each seed; the files are read once, only the validation split differs."""
    columns = {"text_column": data.text_column, "label_column": data.label_column}
    encodings, dropped = {}, {}

    def read(relative: str, key: str) -> LabelledTexts:
        path = (base_dir / relative).resolve()
        rows, encodings[key], dropped[key] = read_table(
            path,
            encoding=data.encoding,
            setting=f"data.{key}",
            empty_texts=data.empty_texts,
            **columns,
        )
        return rows

    train = read(data.train, "train")
    labels = label_order(train.labels)
    if len(labels) < 2:
        raise DataError(
            f"data.train: every row has the label {labels[0]!r}; a classifier needs two or more",
            hint="add rows of another label, or check that data.label_column names the labels",
        )
    validation_file = None
    if isinstance(data.validation, str):
        validation_file = read(data.validation, "validation")
        _check_known(validation_file, labels, "data.validation")
    test = None
    if data.test is not None:
        test = read(data.test, "test")
        _check_known(test, labels, "data.test")

    notices = tuple(
        f"data.{key}: left out {count} {'row' if count == 1 else 'rows'} with an empty text or "
        'label (data.empty_texts = "drop")'
        for key, count in dropped.items()
        if count
    )

    def for_seed(seed: int) -> Splits:
        if validation_file is not None:
            train_part, validation = train, validation_file
        else:
            train_part, validation = stratified_split(train, data.validation, seed)
        return Splits(
            train=train_part,
            validation=validation,
            test=test,
            labels=labels,
            encodings=encodings,
            dropped=dropped,
            notices=notices,
        )

    return {seed: for_seed(seed) for seed in seeds}
