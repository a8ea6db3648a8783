"""Reading labelled CSV/TSV (and JSON Lines, `zoo.jsonlines`, and Parquet, `zoo.parquet`)
files and splitting them: plain Python, no torch.

A data file is read exactly or refused with its line, in three steps that each have a module:
its bytes become text in one encoding (`zoo.textfile`: UTF-8, else cp949, never a mix), the
text becomes records with the line where each starts (`zoo.table`: the csv module in strict
mode, every record with the header's number of fields), and each cell becomes a value
(`zoo.cells`: Unicode NFC, no surrounding whitespace, pandas' missing-value words, case and
all, count as missing, for texts and labels alike). `zoo predict` reads its input through the
same steps (`read_texts`), so that training and prediction see the same texts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from zoo.cells import clean, is_missing, text_to_classify
from zoo.datachecks import (
    check_labels,
    conflict_notices,
    duplicate_notices,
    label_notices,
    overlap_notices,
    spelled_like,
)
from zoo.errors import DataError
from zoo.options import PREDICT, RECIPE, Options
from zoo.parquet import ENCODING, is_parquet, read_parquet
from zoo.table import Table, parse
from zoo.textfile import read_text
from zoo.transforms import NO_PREPROCESSING, Pipeline


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
    # counting rows that were left out but not blank lines, which are no rows; a split keeps them.
    rows: tuple[int, ...] = attrs.field(default=attrs.Factory(_positions, takes_self=True))
    # The line of its file where each row starts (quoted texts may span lines).
    lines: tuple[int, ...] = attrs.field(default=attrs.Factory(_one_line_each, takes_self=True))
    # With a text pair (data.text_column = [first, second]): each row's second text; `texts`
    # holds the first ones.
    pairs: tuple[str, ...] | None = None

    def __attrs_post_init__(self) -> None:
        if not len(self.texts) == len(self.labels) == len(self.rows) == len(self.lines):
            raise ValueError("texts, labels, rows and lines must have the same length")
        if self.pairs is not None and len(self.pairs) != len(self.texts):
            raise ValueError("a text pair's second texts must be as many as its first ones")

    @property
    def inputs(self) -> tuple[str | tuple[str, str], ...]:
        """What the model reads of each row: its text, or its pair of texts."""
        if self.pairs is None:
            return self.texts
        return tuple(zip(self.texts, self.pairs, strict=True))

    def take(self, indices) -> LabelledTexts:
        """The rows at these positions, in this order, with their provenance."""
        indices = list(indices)
        return LabelledTexts(
            tuple(self.texts[i] for i in indices),
            tuple(self.labels[i] for i in indices),
            tuple(self.rows[i] for i in indices),
            tuple(self.lines[i] for i in indices),
            None if self.pairs is None else tuple(self.pairs[i] for i in indices),
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
    # With data.validation = { folds = K }: which fold (1 to K) is the validation split.
    fold: int | None = None
    folds: int | None = None
    # Multi-label data (data.label_separator): what joins a row's labels, which `labels` then
    # lists one by one.
    separator: str | None = None

    def multi_hot(self, rows: LabelledTexts) -> Any:
        """rows x labels 0/1 of multi-label rows."""
        from zoo.multilabel import multi_hot

        assert self.separator is not None
        return multi_hot(rows.labels, self.labels, self.separator)


@attrs.frozen
class FileRows:
    """One labelled file as read: its rows, how, and what reading changed."""

    rows: LabelledTexts
    encoding: str
    # Rows left out for an empty or missing text or label (data.empty_texts = "drop").
    dropped: int = 0
    # One sentence each, starting with the setting: rows left out, labels that NFC merged...
    notices: tuple[str, ...] = ()


def text_columns(text_column: str | Sequence[str]) -> dict[str, str]:
    """The `columns` entries (Table's) of a text column, or of the two of a text pair."""
    names = [text_column] if isinstance(text_column, str) else list(text_column)
    return dict(zip(("text_column", "pair_column"), map(clean, names), strict=False))


def read_table(
    path: Path,
    *,
    text_column: str | Sequence[str],
    label_column: str,
    encoding: str = "auto",
    setting: str,
    empty_texts: str = "fail",
    options: Options = RECIPE,
    label_separator: str | None = None,
) -> FileRows:
    """Read one labelled file; rows with an empty or missing text (either text of a pair) or
    label are an error, or left out with `empty_texts="drop"`. With `label_separator`, a
    label cell names several labels; each row's are written in label order (`label_set`)."""
    label_column = clean(label_column)
    columns = text_columns(text_column)
    table, used = _table(
        path,
        encoding,
        setting,
        options,
        columns=columns | {"label_column": label_column},
        keys=(label_column,),
    )
    texts, pairs, labels, rows, lines = [], [], [], [], []
    empty, missing_words, renamed = [], set(), Counter()
    texts_at = [table.header.index(name) for name in columns.values()]
    label_at = table.header.index(label_column)
    for position, record in enumerate(table.records):
        raw_label = record.fields[label_at]
        values = [clean(record.fields[at]) for at in texts_at]
        label_value = clean(raw_label)
        missing_words |= {v for v in (*values, label_value) if v and is_missing(v)}
        if any(map(is_missing, values)) or is_missing(label_value):
            empty.append(record.line)
            continue
        if label_value != raw_label.strip():
            renamed[label_value] += 1
        if label_separator is not None:
            label_value = label_set(label_value, label_separator, f"{setting}: {path}", record)
        texts.append(values[0])
        pairs.extend(values[1:])
        labels.append(label_value)
        rows.append(position)
        lines.append(record.line)
    if empty and empty_texts != "drop":
        raise _empty_rows(path, setting, empty, missing_words, options)
    if not texts:
        left_out = (
            f" left after leaving out {len(empty)} with an empty text or label" if empty else ""
        )
        raise DataError(
            f"{setting}: {path} has no data rows{left_out}",
            hint="add one row per labelled text below the header line",
        )
    notices = list(table.notices)
    if empty:
        notices.append(
            f"{setting}: left out {len(empty)} {_rows(len(empty))} with an empty text or label "
            f'({options.empty_texts} = "drop")'
        )
    if renamed:
        listed = ", ".join(f"{label!r} ({n} {_rows(n)})" for label, n in sorted(renamed.items()))
        notices.append(
            f"{setting}: labels spelled in another Unicode form than NFC (such as NFD) are "
            f"read in NFC, one label with their NFC spelling: {listed}"
        )
    second = tuple(pairs) if len(columns) == 2 else None
    read = LabelledTexts(tuple(texts), tuple(labels), tuple(rows), tuple(lines), second)
    return FileRows(read, used, len(empty), tuple(notices))


def label_set(cell: str, separator: str, where: str, record: Any) -> str:
    """A multi-label cell with its labels in label order (`label_order`), so that one set is
    one spelling; an empty label or one named twice is refused with its line."""
    from zoo.multilabel import split_labels

    names = split_labels(cell, separator)
    problem = None
    if "" in names:
        problem = f"an empty label between separators {separator!r}"
    elif len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        problem = f"the label {twice!r} twice"
    if problem:
        raise DataError(
            f"{where} line {record.line} has {problem} in its labels {cell!r}",
            hint=f"name each of the row's labels once, joined by {separator!r}",
        )
    return separator.join(label_order(tuple(names)))


def _table(path, encoding, setting, options, *, columns, keys) -> tuple[Table, str]:
    """A data file as a table and how it was decoded: Parquet by pyarrow, any other file as
    text (CSV, TSV, JSON Lines) in one encoding."""
    if is_parquet(path):
        return read_parquet(path, setting=setting, options=options, columns=columns), ENCODING
    text, used = read_text(path, encoding, setting, options)
    return parse(
        text, path=path, setting=setting, options=options, columns=columns, keys=keys
    ), used


def _rows(count: int) -> str:
    return "row" if count == 1 else "rows"


def _empty_rows(path, setting, empty, missing_words, options) -> DataError:
    shown = ", ".join(map(str, empty[:5])) + (" ..." if len(empty) > 5 else "")
    also = ""
    if missing_words:
        listed = ", ".join(repr(v) for v in sorted(missing_words))
        also = f"; {listed} {'counts' if len(missing_words) == 1 else 'count'} as empty"
    return DataError(
        f"{setting}: {path} has {len(empty)} {_rows(len(empty))} with an empty text or label "
        f"(lines {shown}{also})",
        hint=f'fill them in or remove them, or set {options.empty_texts} = "drop" to leave '
        "them out",
    )


@attrs.frozen
class InputTexts:
    """An unlabelled file's texts (and ids) in file order, and where each came from."""

    texts: tuple[str, ...]
    ids: tuple[str, ...] | None
    lines: tuple[int, ...]
    encoding: str
    notices: tuple[str, ...] = ()
    # With a text pair: each row's second text (`texts` holds the first ones).
    pairs: tuple[str, ...] | None = None


def read_input(
    path: Path,
    *,
    text_column: str | Sequence[str],
    id_column: str | None = None,
    encoding: str = "auto",
    setting: str,
    options: Options = PREDICT,
) -> InputTexts:
    """Read the texts to classify (one column, or the two of a text pair) from a data file,
    as strictly as training data: the same encodings, structure checks, NFC and whitespace; a
    missing text is an empty one. Ids are kept as the file has them, to be written back."""
    columns = text_columns(text_column)
    if id_column is not None:
        columns["id_column"] = clean(id_column)
    table, used = _table(path, encoding, setting, options, columns=columns, keys=None)
    if not table.records:
        raise DataError(
            f"{setting}: {path} has no data rows",
            hint="add one row per text to classify below the header line",
        )

    def texts_of(option: str) -> tuple[str, ...] | None:
        if option not in columns:
            return None
        return tuple(text_to_classify(raw) for raw in table.values(columns[option]))

    ids = table.values(columns["id_column"]) if id_column is not None else None
    lines = tuple(record.line for record in table.records)
    texts = texts_of("text_column")
    assert texts is not None
    return InputTexts(texts, ids, lines, used, table.notices, texts_of("pair_column"))


def read_texts(
    path: Path,
    *,
    text_column: str | Sequence[str],
    id_column: str | None,
    encoding: str = "auto",
    setting: str,
    options: Options = PREDICT,
) -> tuple[list[str], list[str] | None]:
    """The texts to classify (and their ids) from an unlabelled CSV/TSV file, in order
    (`read_input` says more)."""
    read = read_input(
        path,
        text_column=text_column,
        id_column=id_column,
        encoding=encoding,
        setting=setting,
        options=options,
    )
    return list(read.texts), None if read.ids is None else list(read.ids)


# An integer as a label: ASCII digits only (str.isdigit also takes ①, ² and ٣).
INTEGER = re.compile(r"-?[0-9]+")


def label_order(labels: tuple[str, ...]) -> tuple[str, ...]:
    """Label names in a stable order: numerically if they are all integers, else alphabetically."""
    names = set(labels)
    if all(INTEGER.fullmatch(n) for n in names):
        return tuple(sorted(names, key=lambda n: (int(n), n)))
    return tuple(sorted(names))


def each_label(rows: LabelledTexts, separator: str) -> LabelledTexts:
    """Multi-label rows as one row per (row, label): what the checks of single labels read."""
    from zoo.multilabel import split_labels

    pairs = [
        (i, name) for i, cell in enumerate(rows.labels) for name in split_labels(cell, separator)
    ]
    taken = rows.take([i for i, _ in pairs])
    return attrs.evolve(taken, labels=tuple(name for _, name in pairs))


def multi_label_split(
    rows: LabelledTexts, fraction: float, seed: int, separator: str
) -> tuple[LabelledTexts, LabelledTexts]:
    """Hold out `fraction` of multi-label rows at random (a row's label set is too fine to
    stratify by); each label must keep a training row."""
    from sklearn.model_selection import train_test_split

    train_at, validation_at = train_test_split(
        range(len(rows)), test_size=fraction, random_state=seed
    )
    train, validation = rows.take(train_at), rows.take(validation_at)
    missing = sorted(
        set(each_label(rows, separator).labels) - set(each_label(train, separator).labels)
    )
    if missing:
        raise DataError(
            f"data.validation = {fraction} leaves the label {missing[0]!r} without a training "
            f"row (seed {seed})",
            hint="add rows of that label, lower data.validation, or give data.validation a file",
        )
    return train, validation


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


def fold_splits(
    rows: LabelledTexts, folds: int, seed: int, separator: str | None = None
) -> list[tuple[LabelledTexts, LabelledTexts]]:
    """Stratified K-fold: for each fold (in order), the other folds' rows and the fold's rows.
    The folds are disjoint, cover every row, and keep each class's share; the seed shuffles.
    Multi-label rows (`separator`) are folded at random, each label kept in every fold's
    training rows."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if separator is not None:
        parts = []
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
        every = set(each_label(rows, separator).labels)
        for fold, (train_at, validation_at) in enumerate(splitter.split(range(len(rows))), 1):
            train = rows.take(train_at)
            missing = sorted(every - set(each_label(train, separator).labels))
            if missing:
                raise DataError(
                    f"data.validation = {{ folds = {folds} }}: fold {fold} leaves the label "
                    f"{missing[0]!r} without a training row (seed {seed})",
                    hint="use fewer folds, or add rows of that label",
                )
            parts.append((train, rows.take(validation_at)))
        return parts

    few = sorted((n, label) for label, n in Counter(rows.labels).items() if n < folds)
    if few:
        count, label = few[0]
        raise DataError(
            f"data.validation = {{ folds = {folds} }}: label {label!r} has {count} "
            f"{_rows(count)} in data.train, fewer than the {folds} folds, so some folds would "
            "have none of it to validate on",
            hint=f"use at most {max(2, count)} folds, or add rows of that label",
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [
        (rows.take(train_at), rows.take(validation_at))
        for train_at, validation_at in splitter.split(range(len(rows)), rows.labels)
    ]


def _check_known(rows: LabelledTexts, known: tuple[str, ...], setting: str) -> None:
    unseen = sorted(set(rows.labels) - set(known))
    if unseen:
        hint = "a model cannot predict a label it never saw; add training rows for it"
        likely = [(label, spelled_like(label, known)) for label in unseen]
        likely = [(label, other) for label, other in likely if other is not None]
        if likely:
            label, other = likely[0]
            hint = f"{label!r} looks like the training label {other!r} spelled another way; " + (
                "write it as data.train does"
            )
        raise DataError(
            f"{setting}: labels not seen in data.train: {', '.join(map(repr, unseen[:5]))}",
            hint=hint,
        )


def _check_learnable(train: LabelledTexts, labels: tuple[str, ...], separator: str) -> None:
    """A label that every training row carries tells the model nothing to learn."""
    from zoo.multilabel import multi_hot

    carried = multi_hot(train.labels, labels, separator).all(axis=0)
    everywhere = [name for name, every in zip(labels, carried, strict=True) if every]
    if everywhere:
        raise DataError(
            f"data.train: every row has the label {everywhere[0]!r} (among its others): there is "
            "nothing to learn about it",
            hint="remove it from the label cells, or add rows without it",
        )


def preprocessed(
    rows: LabelledTexts, preprocess: Pipeline, setting: str, path: Path
) -> tuple[LabelledTexts, str | None]:
    """The rows with `preprocess` applied to their texts, and a notice of how many it changed
    (None without preprocessing). A text that it leaves empty is an error naming its line."""
    if not preprocess.steps:
        return rows, None
    texts = tuple(preprocess(text) for text in rows.texts)
    pairs = None if rows.pairs is None else tuple(preprocess(text) for text in rows.pairs)
    blank = [not t.strip() for t in texts]
    if pairs is not None:
        blank = [b or not t.strip() for b, t in zip(blank, pairs, strict=True)]
    empty = [line for b, line in zip(blank, rows.lines, strict=True) if b]
    listed = ", ".join(preprocess.names)
    if empty:
        shown = ", ".join(map(str, empty[:5])) + (" ..." if len(empty) > 5 else "")
        raise DataError(
            f"{setting}: data.preprocess ({listed}) leaves {len(empty)} {_rows(len(empty))} of "
            f"{path} with an empty text (lines {shown})",
            hint="a model cannot learn from an empty text: change data.preprocess, or remove "
            "those rows",
        )
    preprocessed = attrs.evolve(rows, texts=texts, pairs=pairs)
    changed = sum(old != new for old, new in zip(rows.inputs, preprocessed.inputs, strict=True))
    notice = f"{setting}: data.preprocess ({listed}) changed {changed} of {len(texts)} texts"
    return preprocessed, notice


# What one run trains on: its seed, and its fold (None without cross-validation).
Unit = tuple[int, int | None]


def load_splits(data, base_dir: Path, seed: int) -> Splits:
    """Read train (and test, and validation) as a recipe's [data] section describes them (with
    folds, the first fold's splits)."""
    return next(iter(load_units(data, base_dir, (seed,)).values()))


def load_units(
    data, base_dir: Path, seeds: tuple[int, ...], preprocess: Pipeline = NO_PREPROCESSING
) -> dict[Unit, Splits]:
    """The splits of each (seed, fold), seed by seed, fold by fold; the files are read once,
    only the validation split (and with folds, the training rows) differ. `preprocess` (the
    recipe's data.preprocess) is applied to every text as it is read, before any check."""
    columns = {"text_column": data.text_column, "label_column": data.label_column}
    separator = data.label_separator
    encodings, dropped, notices = {}, {}, []

    def one_each(rows: LabelledTexts) -> LabelledTexts:
        """The rows as the checks of labels read them: one row per label of a row."""
        return rows if separator is None else each_label(rows, separator)

    def read(relative: str, key: str) -> LabelledTexts:
        path = (base_dir / relative).resolve()
        read = read_table(
            path,
            encoding=data.encoding,
            setting=f"data.{key}",
            empty_texts=data.empty_texts,
            label_separator=separator,
            **columns,
        )
        rows, changed = preprocessed(read.rows, preprocess, f"data.{key}", path)
        check_labels(one_each(rows), f"data.{key}", path)
        encodings[key], dropped[key] = read.encoding, read.dropped
        notices.extend(read.notices)
        if changed is not None:
            notices.append(changed)
        return rows

    train = read(data.train, "train")
    notices.extend(
        label_notices(one_each(train), "data.train") + conflict_notices(train, "data.train")
    )
    labels = label_order(one_each(train).labels)
    if len(labels) < 2:
        raise DataError(
            f"data.train: every row has the label {labels[0]!r}; a classifier needs two or more",
            hint="add rows of another label, or check that data.label_column names the labels",
        )
    if separator is not None:
        _check_learnable(train, labels, separator)
    validation_file = None
    if isinstance(data.validation, str):
        validation_file = read(data.validation, "validation")
        _check_known(one_each(validation_file), labels, "data.validation")
        notices.extend(overlap_notices(train, validation_file, "data.validation"))
    else:
        notices.extend(duplicate_notices(train, "data.train"))
    test = None
    if data.test is not None:
        test = read(data.test, "test")
        _check_known(one_each(test), labels, "data.test")
        notices.extend(overlap_notices(train, test, "data.test"))

    def splits(train_part: LabelledTexts, validation: LabelledTexts, **fold: Any) -> Splits:
        return Splits(
            train=train_part,
            validation=validation,
            test=test,
            labels=labels,
            encodings=encodings,
            dropped=dropped,
            notices=tuple(notices),
            separator=separator,
            **fold,
        )

    units: dict[Unit, Splits] = {}
    for seed in seeds:
        if validation_file is not None:
            units[seed, None] = splits(train, validation_file)
        elif isinstance(data.validation, float) and separator is not None:
            units[seed, None] = splits(*multi_label_split(train, data.validation, seed, separator))
        elif isinstance(data.validation, float):
            units[seed, None] = splits(*stratified_split(train, data.validation, seed))
        else:
            parts = fold_splits(train, data.validation.folds, seed, separator)
            for fold in data.validation.numbers:
                units[seed, fold] = splits(*parts[fold - 1], fold=fold, folds=data.validation.folds)
    return units
