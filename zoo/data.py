"""Reading labelled CSV/TSV files and splitting them: plain Python, no torch.

Korean spreadsheets often come as cp949 (a superset of euc-kr); 'auto' tries UTF-8 (with or
without a byte-order mark) and then cp949.
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


@attrs.frozen
class LabelledTexts:
    texts: tuple[str, ...]
    labels: tuple[str, ...]

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


def decode(path: Path, encoding: str, setting: str) -> tuple[str, str]:
    """The file's text and the encoding that decoded it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{setting}: file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    tried = AUTO_ENCODINGS if encoding == "auto" else (encoding,)
    for name in tried:
        # A byte-order mark is never part of the data (Excel writes one); utf-8-sig drops it.
        codec = "utf-8-sig" if name == "utf-8" else name
        try:
            return raw.decode(codec), name
        except UnicodeDecodeError:
            continue
    raise DataError(
        f"{setting}: {path} is not text in {' or '.join(tried)}",
        hint="save it as UTF-8, or set data.encoding to the file's encoding",
    )


def _delimiter(path: Path, sample: str) -> str:
    if path.suffix.lower() in {".tsv", ".tab"}:
        return "\t"
    if path.suffix.lower() == ".csv":
        return ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;").delimiter
    except csv.Error:
        return ","


def read_table(
    path: Path, *, text_column: str, label_column: str, encoding: str = "auto", setting: str
) -> tuple[LabelledTexts, str]:
    """Read one labelled file; returns its rows and the encoding used."""
    text, used = decode(path, encoding, setting)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(path, text[:4096]))
    columns = reader.fieldnames or []
    missing = [c for c in (text_column, label_column) if c not in columns]
    if missing:
        found = ", ".join(repr(c) for c in columns) or "none"
        raise DataError(
            f"{setting}: {path} has no column {missing[0]!r} (columns: {found})",
            hint="set data.text_column and data.label_column to the file's column names",
        )
    texts, labels, empty = [], [], []
    line = reader.line_num + 1  # where the next record starts; quoted texts may span lines
    for row in reader:
        text_value = (row.get(text_column) or "").strip()
        label_value = (row.get(label_column) or "").strip()
        if not text_value or not label_value:
            empty.append(line)
        else:
            texts.append(text_value)
            labels.append(label_value)
        line = reader.line_num + 1
    if empty:
        shown = ", ".join(map(str, empty[:5])) + (" ..." if len(empty) > 5 else "")
        rows = "row" if len(empty) == 1 else "rows"
        raise DataError(
            f"{setting}: {path} has {len(empty)} {rows} with an empty text or label "
            f"(lines {shown})",
            hint="fill them in or remove them",
        )
    if not texts:
        raise DataError(f"{setting}: {path} has no data rows")
    return LabelledTexts(tuple(texts), tuple(labels)), used


def read_texts(
    path: Path, *, text_column: str, id_column: str | None, encoding: str = "auto", setting: str
) -> tuple[list[str], list[str] | None]:
    """Read the texts to classify (and their ids) from an unlabelled CSV/TSV file, in order."""
    text, _used = decode(path, encoding, setting)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(path, text[:4096]))
    columns = reader.fieldnames or []
    for column in (text_column, id_column):
        if column is not None and column not in columns:
            found = ", ".join(repr(c) for c in columns) or "none"
            raise DataError(f"{setting}: {path} has no column {column!r} (columns: {found})")
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
    train_x, val_x, train_y, val_y = train_test_split(
        rows.texts, rows.labels, test_size=fraction, random_state=seed, stratify=rows.labels
    )
    return LabelledTexts(tuple(train_x), tuple(train_y)), LabelledTexts(tuple(val_x), tuple(val_y))


def _check_known(rows: LabelledTexts, known: tuple[str, ...], setting: str) -> None:
    unseen = sorted(set(rows.labels) - set(known))
    if unseen:
        raise DataError(
            f"{setting}: labels not seen in data.train: {', '.join(map(repr, unseen[:5]))}",
            hint="a model cannot predict a label it never saw; add training rows for it",
        )


def load_splits(data, base_dir: Path, seed: int) -> Splits:
    """Read train (and test, and validation) as a recipe's [data] section describes them."""
    columns = {"text_column": data.text_column, "label_column": data.label_column}

    def read(relative: str, setting: str) -> tuple[LabelledTexts, str]:
        path = (base_dir / relative).resolve()
        return read_table(path, encoding=data.encoding, setting=setting, **columns)

    encodings = {}
    train, encodings["train"] = read(data.train, "data.train")
    labels = label_order(train.labels)
    if len(labels) < 2:
        raise DataError(
            f"data.train: every row has the label {labels[0]!r}; a classifier needs two or more"
        )
    if isinstance(data.validation, str):
        validation, encodings["validation"] = read(data.validation, "data.validation")
        _check_known(validation, labels, "data.validation")
    else:
        train, validation = stratified_split(train, data.validation, seed)
    test = None
    if data.test is not None:
        test, encodings["test"] = read(data.test, "data.test")
        _check_known(test, labels, "data.test")
    return Splits(train=train, validation=validation, test=test, labels=labels, encodings=encodings)
