"""The results store: every run of every model, ok or not, in one SQLite file per output directory.

Several `zoo run` processes may share an output directory, so each call opens its own connection,
writes in one short `BEGIN IMMEDIATE` transaction and closes it again: a crashed process leaves
nothing locked, and WAL lets readers go on while someone writes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import attrs

from zoo.errors import ZooError

STORE_NAME = "zoo-results.sqlite"
SCHEMA_VERSION = 1

Status = Literal["ok", "failed", "refused", "interrupted"]
Method = Literal["full", "lora", "qlora", "zero-shot", "baseline"]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]

# How long a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_SECONDS = 30.0


class StoreError(ZooError):
    """A results store that cannot be read or written."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@attrs.frozen(kw_only=True)
class RunRecord:
    """One run of one model, as the store keeps it."""

    recipe_name: str
    recipe_hash: str
    data_fingerprint: str
    model: str
    method: Method = attrs.field(validator=attrs.validators.in_(METHODS))
    seed: int
    status: Status = attrs.field(validator=attrs.validators.in_(STATUSES))
    reason: str | None = None
    settings: Mapping[str, Any] = attrs.field(factory=dict)
    metrics: Mapping[str, Any] = attrs.field(factory=dict)
    train_seconds: float | None = None
    peak_memory_bytes: int | None = None
    parameters: int | None = None
    run_dir: str | None = None
    recorded_at: str = attrs.field(factory=_now)
    run_id: int | None = None


# The `runs` columns are RunRecord's fields (settings and metrics as JSON text): a new field
# needs a new schema version and a migration below.
_FIELDS = tuple(f.name for f in attrs.fields(RunRecord) if f.name != "run_id")
_JSON_FIELDS = ("settings", "metrics")

# _MIGRATIONS[v] takes a store from schema version v to v + 1 (0: a new, empty file).
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            run_id INTEGER PRIMARY KEY AUTOINCREMENT,
            recipe_name TEXT NOT NULL,
            recipe_hash TEXT NOT NULL,
            data_fingerprint TEXT NOT NULL,
            model TEXT NOT NULL,
            method TEXT NOT NULL,
            seed INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'refused', 'interrupted')),
            reason TEXT,
            settings TEXT NOT NULL,
            metrics TEXT NOT NULL,
            train_seconds REAL,
            peak_memory_bytes INTEGER,
            parameters INTEGER,
            run_dir TEXT,
            recorded_at TEXT NOT NULL
        )""",
        "CREATE INDEX runs_by_data ON runs (data_fingerprint)",
        "CREATE INDEX runs_by_recipe ON runs (recipe_name)",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


class ResultsStore:
    """The results of every run under one output directory (`OUTPUT_DIR/zoo-results.sqlite`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._prepare()

    @classmethod
    def in_dir(cls, output_dir: Path) -> ResultsStore:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        return cls(Path(output_dir) / STORE_NAME)

    def record(self, run: RunRecord) -> int:
        """Add one run; returns its new `run_id`."""
        values = [_to_column(name, getattr(run, name)) for name in _FIELDS]
        marks = ", ".join("?" for _ in _FIELDS)
        sql = f"INSERT INTO runs ({', '.join(_FIELDS)}) VALUES ({marks})"
        with self._connect(write=True) as conn:
            cursor = conn.execute(sql, values)
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def runs(
        self, *, data_fingerprint: str | None = None, recipe_name: str | None = None
    ) -> list[RunRecord]:
        """The recorded runs, oldest first, optionally only those on this data or recipe."""
        where = {"data_fingerprint": data_fingerprint, "recipe_name": recipe_name}
        where = {k: v for k, v in where.items() if v is not None}
        sql = f"SELECT run_id, {', '.join(_FIELDS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
        with self._connect() as conn:
            rows = conn.execute(sql + " ORDER BY run_id", list(where.values())).fetchall()
        return [_from_row(row) for row in rows]

    def latest(self) -> RunRecord | None:
        sql = f"SELECT run_id, {', '.join(_FIELDS)} FROM runs ORDER BY run_id DESC LIMIT 1"
        with self._connect() as conn:
            row = conn.execute(sql).fetchone()
        return None if row is None else _from_row(row)

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection for one call, closed afterwards; `write`: inside BEGIN IMMEDIATE, which
        takes the write lock up front so that two writers queue instead of deadlocking."""
        try:
            # isolation_level=None: no implicit transactions; this code begins and commits.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the results store {self.path}: {exc}") from exc
        try:
            if write:
                conn.execute("BEGIN IMMEDIATE")
            yield conn
            if write:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"results store {self.path}: {exc}") from exc
        finally:
            if conn.in_transaction:
                conn.rollback()
            conn.close()

    def _prepare(self) -> None:
        """Create or migrate the schema; refuse a file that a newer zoo wrote."""
        with self._connect() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        # The usual case (current schema, WAL) takes no write lock: a read-only store still reads.
        self._refuse_newer(version)
        if version < SCHEMA_VERSION:
            self._migrate()
        if mode != "wal":
            self._use_wal()

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer zoo (results schema version {version}; "
                f"this zoo reads version {SCHEMA_VERSION} and older)",
                hint="upgrade zoo to read it, or record into another output directory",
            )

    def _migrate(self) -> None:
        with self._connect(write=True) as conn:  # read again: another process may have migrated
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._refuse_newer(version)
            if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreError(f"{self.path} is an SQLite file, but not a zoo results store")
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _use_wal(self) -> None:
        # The journal mode lives in the file; switching needs a moment when no one else writes,
        # and SQLite does not wait for that moment, so retry instead of failing the run.
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                with self._connect() as conn:
                    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                    if mode != "wal":
                        conn.execute("PRAGMA journal_mode = WAL")
                return
            except StoreError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _to_column(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        # default=str as in zoo.files.write_json: a Path in the settings is kept as its text.
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _from_row(row: tuple[Any, ...]) -> RunRecord:
    run_id, *values = row
    fields = dict(zip(_FIELDS, values, strict=True))
    for name in _JSON_FIELDS:
        fields[name] = json.loads(fields[name])
    return RunRecord(run_id=run_id, **fields)


def hash_text(text: str) -> str:
    """sha256 hex of `text` as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint_files(paths: Iterable[Path]) -> str:
    """sha256 hex over the bytes of each file in the given order, independent of their names.

    It hashes each file's sha256 in turn, so moving bytes from one file to the next changes it.
    """
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()
