"""A Parquet file (`.parquet`) as a table of the columns zoo reads, as strictly as a CSV file.

Parquet has rows, not lines: each record's "line" is its row number counting from 1 (the first
row is 1), which is what messages, data notices and predictions.csv then name. Its column
names are compared in NFC, as CSV headers are, and a name that two columns share after that is
refused. A column zoo reads must hold text: strings (or a dictionary-encoded string column),
or for labels and ids also integers; a null is a missing value. pyarrow, which `datasets`
needs, reads it; it is imported only for a Parquet file.
"""

from __future__ import annotations

from pathlib import Path

from zoo.cells import clean
from zoo.errors import DataError
from zoo.options import TEXT_OPTIONS, Options
from zoo.table import Record, Table

SUFFIXES = (".parquet", ".pq")
# What read_table and run.json say a Parquet file's "encoding" was: Parquet strings are UTF-8.
ENCODING = "parquet"


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def read_parquet(path: Path, *, setting: str, options: Options, columns: dict[str, str]) -> Table:
    """The `columns` zoo reads (by the option that names each, cleaned) of a Parquet file, each
    record with its row number from 1."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{setting}: {path} is not a Parquet file that pyarrow can read ({exc})",
            hint="write it again with pandas' to_parquet or pyarrow, or save it as CSV",
        ) from None
    by_name: dict[str, list[str]] = {}
    for name in schema.names:
        by_name.setdefault(clean(name), []).append(name)
    found = []
    for option, name in columns.items():
        if name not in by_name:
            listed = ", ".join(repr(n) for n in by_name) or "none"
            raise DataError(
                f"{setting}: {path} has no column {name!r} (its columns: {listed})",
                hint=f"set {getattr(options, option)} to the column's name",
            )
        if len(by_name[name]) > 1:
            raise DataError(
                f"{setting}: {path} has {len(by_name[name])} columns named {name!r} "
                f"({', '.join(map(repr, by_name[name]))} in NFC)",
                hint=f"rename all but one of them: {getattr(options, option)} names one column",
            )
        found.append((option, name, by_name[name][0]))
    table = pq.read_table(path, columns=[original for _, _, original in found])
    values = []
    for option, name, original in found:
        column = table.column(original)
        kind = column.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        whole = pa.types.is_integer(kind) and option not in TEXT_OPTIONS
        if not (text or whole):
            allowed = "strings" if option in TEXT_OPTIONS else "strings or integers"
            raise DataError(
                f"{setting}: column {name!r} of {path} holds {kind}, not {allowed}",
                hint=f"write {name!r} as {allowed} (a float label would be read back as "
                "another label)",
            )
        values.append(["" if v is None else str(v) for v in column.to_pylist()])
    records = tuple(
        Record(tuple(fields), row + 1, row + 1)
        for row, fields in enumerate(zip(*values, strict=True))
    )
    if not records:
        raise DataError(f"{setting}: {path} has no rows", hint="add one row per text")
    return Table(tuple(name for _, name, _ in found), records, separator="")
