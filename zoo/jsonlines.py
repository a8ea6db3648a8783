"""A JSON Lines file (`.jsonl`, `.ndjson`) as a table: one JSON object per line, read as
exactly as a CSV file.

Each line that is not blank holds one object; the columns zoo reads are its keys (compared in
NFC, as CSV headers are). A file is refused, with its line, when a line is not JSON, is JSON
but not an object, names a key twice, lacks a key that zoo reads, or holds a value that is not
text where zoo reads text: a string, or for labels and ids also an integer (`1`, not `1.0`:
a float label would be read back as another string than the one meant). `null` is a missing
value, as an empty cell of a CSV file is. Every other key of an object is left alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.cells import clean
from zoo.errors import DataError
from zoo.options import TEXT_OPTIONS, Options
from zoo.table import Record, Table

SUFFIXES = (".jsonl", ".ndjson")
HINT = 'write one JSON object per line, such as {"text": "...", "label": "..."}'


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def parse_jsonl(
    text: str, *, path: Path, setting: str, options: Options, columns: dict[str, str]
) -> Table:
    """The objects of a JSON Lines file as a table of the `columns` zoo reads (by the option
    that names each, cleaned), each record with its line."""
    names = tuple(columns.values())
    records = []
    # Lines end at "\n" (or "\r\n") alone: str.splitlines would also split at U+2028 and
    # other characters that a JSON string may hold as they are.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        where = f"{setting}: line {number} of {path}"
        found = _object(line, where)
        fields = []
        for option, name in columns.items():
            if name not in found:
                keys = ", ".join(repr(k) for k in found) or "none"
                raise DataError(
                    f"{where} has no key {name!r} (its keys: {keys})",
                    hint=f"give every line that key, or set {getattr(options, option)} to the "
                    "key that holds it",
                )
            fields.append(_text(found[name], where, name, text_only=option in TEXT_OPTIONS))
        records.append(Record(tuple(fields), number, number))
    if not records:
        raise DataError(f"{setting}: {path} has no JSON objects", hint=HINT)
    return Table(names, tuple(records), separator="")


def _object(line: str, where: str) -> dict[str, Any]:
    def no_twice(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in pairs:
            name = clean(key)
            if name in found:
                raise DataError(f"{where} names the key {name!r} twice", hint=HINT)
            found[name] = value
        return found

    try:
        value = json.loads(line, object_pairs_hook=no_twice)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where} is not JSON (column {exc.colno}: {exc.msg})", hint=HINT) from None
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else f"a {type(value).__name__}"
        raise DataError(f"{where} is {kind}, not a JSON object", hint=HINT)
    return value


def _text(value: Any, where: str, name: str, *, text_only: bool) -> str:
    """A value as the cell of a CSV file would hold it."""
    if value is None:
        return ""  # missing, as an empty cell
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and not text_only:
        return str(value)
    allowed = "a string" if text_only else "a string or an integer"
    shown = json.dumps(value, ensure_ascii=False)
    raise DataError(
        f"{where}: {name!r} is {shown}, not {allowed}",
        hint=f'write it as {allowed}, such as "{value}"'
        if not isinstance(value, dict | list)
        else f"give {name!r} {allowed}",
    )
