"""A data file's text as a table: the header, and each record with the line where it starts.

The structure is checked, never guessed. The csv module reads the file in strict mode (CSV
quoting as RFC 4180 has it: a field that starts with a quote ends at the next lone quote, `""`
is a quote inside it), record by record; blank lines are no records (as in pandas). A data
file is refused, with its line, when
- a record has more or fewer fields than the header (an unquoted comma in a text);
- the header names a column that zoo reads twice;
- a quoted field never ends, or ends where no field can end (text after its closing quote);
- a quoted field spans lines that look like records of their own (a stray opening quote that
  happens to be closed further down would otherwise swallow the rows in between): a line that
  splits at the separator into the header's number of fields, with a value inside the quoted
  field, in the label column, that is a label elsewhere in the file.
A tab-separated file that CSV quoting cannot read may be a TSV written without quoting (NSMC
is: one of its texts starts with a quote and goes on after the closing one). It is then read
again with no quoting at all, each line one record and each quote part of its text; that
reading must pass the same checks, its label and id values must not start with a quote and no
field may hold a doubled quote between two quotes (CSV quoting's escape), and a notice says so.
"""

from __future__ import annotations

import bisect
import csv
import io
from collections import Counter
from pathlib import Path

import attrs

from zoo.cells import clean, is_missing
from zoo.errors import DataError
from zoo.options import TEXT_OPTIONS, Options
from zoo.textfile import LINE_BREAK, NOT_A_TABLE

QUOTE = '"'
# Each separator's name, and the file name that makes zoo use it.
SEPARATORS = {",": ("comma", ".csv"), "\t": ("tab", ".tsv"), ";": ("semicolon", ".txt")}
QUOTE_HINT = (
    'remove the stray quote, or quote the whole field and double each quote inside it ("a '
    '""quoted"" word")'
)


@attrs.frozen
class Record:
    fields: tuple[str, ...]  # as the file has them (not yet cleaned)
    line: int  # the line where the record starts
    end: int  # the line where it ends (quoted fields may span lines)


@attrs.frozen
class Table:
    header: tuple[str, ...]  # column names, cleaned (NFC, no surrounding whitespace)
    records: tuple[Record, ...]  # the data records below the header
    separator: str
    notices: tuple[str, ...] = ()

    def values(self, column: str) -> tuple[str, ...]:
        """The column's raw values, record by record."""
        at = self.header.index(column)
        return tuple(record.fields[at] for record in self.records)


class _Unreadable(Exception):
    """A structure problem under CSV quoting; a tab-separated file may still read without."""

    def __init__(self, line: int, error: DataError, reason: str, lines=None) -> None:
        super().__init__(error.message)
        self.line = line  # where the problem starts
        self.error = error
        self.reason = reason  # for the notice when the file reads without quoting
        # For a record that the csv module gave up on: its first line and the line it gave up.
        self.lines: tuple[int, int] | None = lines


def parse(
    text: str,
    *,
    path: Path,
    setting: str,
    options: Options,
    columns: dict[str, str],
    keys: tuple[str, ...] | None,
) -> Table:
    """Read a data file's text as a table.

    `columns`: the columns zoo reads, by the option that names each ({"text_column": "text",
    "label_column": "label"}), cleaned; they must be there, once each. `keys`: the columns whose
    values tell a swallowed record (the label column), or None for every column but the text
    column whose values repeat (an unlabelled file's categories; ids never repeat).
    """
    if not text.strip():
        raise _empty(path, setting)
    from zoo.jsonlines import is_jsonl, parse_jsonl

    if is_jsonl(path):
        return parse_jsonl(text, path=path, setting=setting, options=options, columns=columns)
    reading = _Reading(text, path, setting, options, columns, keys)
    try:
        return reading.read(quoting=True)
    except _Unreadable as problem:
        if reading.separator != "\t":
            raise reading.not_json(problem.error) from None
        try:
            table = reading.read(quoting=False)
        except _Unreadable:
            raise reading.not_json(problem.error) from None
        notice = (
            f"{setting}: {path} is read as a TSV file without quoting (each line one row, "
            f"quotes kept as part of the text) because {problem.reason}"
        )
        return attrs.evolve(table, notices=(notice,))


class _Reading:
    """One file's text, read with CSV quoting or without."""

    def __init__(self, text, path, setting, options, columns, keys) -> None:
        self.text, self.path, self.setting, self.options = text, path, setting, options
        self.columns, self.keys = columns, keys
        self.separator = _separator(path, text)
        self.lines = io.StringIO(text, newline="").readlines()
        self.starts = [0]  # starts[k]: where line k + 1 starts in the text
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def read(self, *, quoting: bool) -> Table:
        records, problem = self._records(quoting)
        if not records:
            if problem is not None:
                raise problem
            raise _empty(self.path, self.setting)
        header = tuple(clean(name) for name in records[0].fields)
        self._check_columns(header)
        data = records[1:]
        # Of the structure problems, the one that comes first in the file.
        problems = [problem] if problem is not None else []
        problems += self._wrong_counts(data, len(header))
        if quoting:
            # The record the csv module gave up on may have swallowed rows before it did.
            given_up = problem.lines if problem is not None else None
            partial = [Record((), *given_up)] if given_up and given_up[1] > given_up[0] else []
            problems += self._swallowed(data, header, partial)
        if problems:
            raise self._suspect_earlier(min(problems, key=lambda p: p.line), data)
        if not quoting:
            self._check_unquoted(records[0], data, header)
        return Table(header, tuple(data), self.separator)

    def _suspect_earlier(self, problem: _Unreadable, data: list[Record]) -> _Unreadable:
        """A stray quote turns the quotes after it inside out, so the problem shows where the
        quoted text it opened ends: a quoted text spanning lines just above is the suspect."""
        above = [r for r in data if r.end < problem.line]
        suspect = above[-1] if above and above[-1].end > above[-1].line else None
        if suspect is None:
            return problem
        error = problem.error
        message = (
            f"{error.message} (if the text on lines {suspect.line}-{suspect.end} was not meant "
            f"to span lines, the stray quote is on line {suspect.line})"
        )
        return _Unreadable(
            problem.line, DataError(message, hint=error.hint), problem.reason, problem.lines
        )

    def not_json(self, error: DataError) -> DataError:
        if self.text.lstrip()[0] in "{[":
            return DataError(
                f"{self.setting}: {self.path} looks like JSON, not a CSV or TSV table",
                hint="if it holds one JSON object per line, name it .jsonl; else " + NOT_A_TABLE,
            )
        return error

    # --- records ----------------------------------------------------------------------------

    def _records(self, quoting: bool) -> tuple[list[Record], _Unreadable | None]:
        """The records up to the end, or up to a quote problem."""
        if quoting:
            reader = csv.reader(self.lines, delimiter=self.separator, quotechar=QUOTE, strict=True)
        else:
            reader = csv.reader(self.lines, delimiter=self.separator, quoting=csv.QUOTE_NONE)
        # Long texts are fine (models truncate them); the csv module's own limit is 128 KiB.
        csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
        records, end = [], 0
        try:
            for fields in reader:
                start, end = end + 1, reader.line_num
                if fields and not (len(fields) == 1 and not fields[0].strip()):
                    records.append(Record(tuple(fields), start, end))
        except csv.Error as exc:
            return records, self._quote_problem(end + 1, exc)
        return records, None

    def _line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def _quote_problem(self, line: int, exc: csv.Error) -> _Unreadable:
        _spans, problem = _scan(self.text, self.starts[line - 1], self.separator)
        where = f"{self.setting}: {self.path} line"
        if problem is None:  # not a quote: say what the csv module said
            error = DataError(f"{where} {line} cannot be read as a table: {exc}", hint=QUOTE_HINT)
            return _Unreadable(line, error, f"line {line} cannot be read with CSV quoting")
        opened = self._line_of(problem[0])
        lines = (line, self._line_of(problem[-1] if len(problem) > 1 else len(self.text) - 1))
        name = SEPARATORS.get(self.separator, (repr(self.separator),))[0]
        if len(problem) == 1:
            what = f"the quote that starts a field on line {opened} is never closed"
            if opened == line:
                message = (
                    f"{where} {opened}: the quote that starts a field here is never closed (the "
                    "field would run to the end of the file)"
                )
            else:  # an earlier quoted field of the row ran on, and another one opened
                message = (
                    f"{where} {line}: the row that starts here runs on to the end of the file: "
                    + what
                )
            return _Unreadable(line, DataError(message, hint=QUOTE_HINT), what, lines)
        closed = self._line_of(problem[1])
        if opened == line:
            ends = "" if closed == opened else f", ends on line {closed}"
            message = (
                f"{where} {opened}: a quoted field starts here{ends} and has more text after its "
                f"closing quote, before the next {name}"
            )
        else:
            message = (
                f"{where} {line}: the row that starts here runs on to line {closed}, where a "
                f"quoted field (from line {opened}) has more text after its closing quote"
            )
        reason = f"line {opened} has a text that starts with a quote and goes on after it"
        return _Unreadable(line, DataError(message, hint=QUOTE_HINT), reason, lines)

    # --- checks -----------------------------------------------------------------------------

    def _check_columns(self, header: tuple[str, ...]) -> None:
        for option, name in self.columns.items():
            where = [i + 1 for i, column in enumerate(header) if column == name]
            if not where:
                raise self.not_json(self._no_column(header, name, option))
            if len(where) > 1:
                at = ", ".join(map(str, where))
                raise DataError(
                    f"{self.setting}: {self.path} has {len(where)} columns named {name!r} "
                    f"(columns {at} of the header)",
                    hint=f"rename all but one of them: {getattr(self.options, option)} names "
                    "one column",
                )

    def _no_column(self, header: tuple[str, ...], name: str, option: str) -> DataError:
        options = self.options
        if option == "id_column":
            hint = f"{options.id_column} must name a column of the input file"
        elif options.on_command_line:
            hint = options.tell("text_column", "the name of the column with the texts")
        else:
            hint = (
                f"set {options.text_column} and {options.label_column} to the file's column names"
            )
        if len(header) == 1:
            for separator, (word, suffix) in SEPARATORS.items():
                if separator in header[0] and separator != self.separator:
                    hint = f"its header line is separated by {word}s: name the file {suffix}"
                    break
        found = ", ".join(repr(c) for c in header) or "none"
        return DataError(
            f"{self.setting}: {self.path} has no column {name!r} (columns: {found})", hint=hint
        )

    def _wrong_counts(self, data: list[Record], expected: int) -> list[_Unreadable]:
        wrong = [record for record in data if len(record.fields) != expected]
        if not wrong:
            return []
        first, others = wrong[0], wrong[1:]
        also = ""
        if others:
            shown = ", ".join(str(r.line) for r in others[:5]) + (" ..." if len(others) > 5 else "")
            also = f" (so do {len(others)} more: lines {shown})"
        name, suffix = SEPARATORS.get(self.separator, (repr(self.separator), ""))
        count = len(first.fields)
        error = DataError(
            f"{self.setting}: {self.path} line {first.line} has {count} "
            f"{'field' if count == 1 else 'fields'}, but the header has {expected}{also}",
            hint=f'quote a text that holds a {name} ("my code, it crashes"), or check the '
            f"separator (zoo splits this file at each {name})",
        )
        return [_Unreadable(first.line, error, f"line {first.line} has {count} fields")]

    def _key_columns(self, data: list[Record], header: tuple[str, ...]) -> list[int]:
        if self.keys is not None:
            return [header.index(name) for name in self.keys]
        texts_at = {header.index(self.columns[o]) for o in TEXT_OPTIONS if o in self.columns}
        repeating = []
        for at in range(len(header)):
            counts = Counter(clean(r.fields[at]) for r in data)
            if at not in texts_at and any(n > 1 for v, n in counts.items() if not is_missing(v)):
                repeating.append(at)
        return repeating

    def _swallowed(self, data: list[Record], header: tuple[str, ...], partial) -> list[_Unreadable]:
        """The first quoted field whose lines look like records of their own."""
        spanning = [record for record in data if record.end > record.line] + partial
        if not spanning:
            return []
        data = [record for record in data if len(record.fields) == len(header)]
        keys = self._key_columns(data, header)
        known = {at: Counter(clean(r.fields[at]) for r in data) for at in keys}
        for record in spanning:
            found = self._swallowed_line(record, len(header), keys, known)
            if found is None:
                continue
            opened, closed, line, body = found
            shown = body if len(body) <= 60 else body[:57] + "..."
            error = DataError(
                f"{self.setting}: {self.path} line {opened}: the quoted field that starts here "
                f"runs on to line {closed} and takes in line {line}, which looks like a row of "
                f"its own ({shown!r})",
                hint=QUOTE_HINT,
            )
            return [_Unreadable(opened, error, f"the quoted field on line {opened} takes in rows")]
        return []

    def _swallowed_line(self, record: Record, count: int, keys: list[int], known: dict):
        start = self.starts[record.line - 1]
        text = self.text[start : self.starts[record.end]]
        spans, _problem = _scan(text, 0, self.separator)
        multi = [(s, e) for s, e in spans if LINE_BREAK.search(text, s, e)]
        offset = 0
        for number, line in enumerate(self.lines[record.line - 1 : record.end], record.line):
            body = line.rstrip("\r\n")
            pieces = body.split(self.separator)
            at = offset
            for index, piece in enumerate(pieces if len(pieces) == count else ()):
                inside = next((s for s, e in multi if s <= at and at + len(piece) <= e), None)
                value = clean(piece)
                own = clean(record.fields[index]) if index < len(record.fields) else None
                if (
                    index in keys
                    and inside is not None
                    and not is_missing(value)
                    and known[index][value] - (own == value) > 0
                ):
                    opened = record.line + len(LINE_BREAK.findall(text, 0, inside))
                    end = next(e for s, e in multi if s == inside)
                    closed = record.line + len(LINE_BREAK.findall(text, 0, end))
                    return opened, closed, number, body
                at += len(piece) + len(self.separator)
            offset += len(line)
        return None

    def _check_unquoted(self, header_record: Record, data: list[Record], header) -> None:
        """Reading without quoting is for files that use none: no quote may start a column
        name or a value zoo reads besides the text, and no field may hold CSV's escape."""
        read = {header.index(n) for o, n in self.columns.items() if o not in TEXT_OPTIONS}
        for record in (header_record, *data):
            for index, field in enumerate(record.fields):
                value = field.strip()
                quoted = len(value) >= 2 and value[0] == value[-1] == QUOTE
                starts = value.startswith(QUOTE) and (record is header_record or index in read)
                if starts or (quoted and QUOTE * 2 in value[1:-1]):
                    raise _Unreadable(record.line, DataError("uses CSV quoting"), "")


def _empty(path: Path, setting: str) -> DataError:
    return DataError(
        f"{setting}: {path} is empty",
        hint="a data file needs a header line naming its columns (e.g. text,label) and one "
        "row per labelled text",
    )


def _scan(text: str, offset: int, separator: str):
    """Walk one record from `offset` as the csv module's strict mode reads it.

    Returns the spans of its quoted fields' contents and its quote problem: None, (where the
    quote opens,) for a quoted field that never ends, or (where it opens, where the text after
    its closing quote is) for one that ends where no field can end.
    """
    spans: list[tuple[int, int]] = []
    at_field_start, i, n = True, offset, len(text)
    while i < n:
        c = text[i]
        if at_field_start and c == QUOTE:
            opened, i = i, i + 1
            while True:
                j = text.find(QUOTE, i)
                if j < 0:
                    spans.append((opened + 1, n))
                    return spans, (opened,)
                if text.startswith(QUOTE * 2, j):
                    i = j + 2
                    continue
                spans.append((opened + 1, j))
                i = j + 1
                break
            if i < n and text[i] not in (separator, "\r", "\n"):
                return spans, (opened, i)
            at_field_start = False
            continue
        if c in "\r\n":
            return spans, None
        at_field_start = c == separator
        i += 1
    return spans, None


def _separator(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in {".tsv", ".tab"}:
        return "\t"
    if suffix == ".csv":
        return ","
    # A guess from the header line, checked like everything else: every record must have as
    # many fields as the header.
    header = next((line for line in text.splitlines() if line.strip()), "")
    try:
        return csv.Sniffer().sniff(header, delimiters=",\t;").delimiter
    except csv.Error:
        return ","
