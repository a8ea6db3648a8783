"""The results store: every run of every model, ok or not, in one SQLite file per output directory.

Several `zoo run` processes may share an output directory, so each call opens its own connection,
writes in one short `BEGIN IMMEDIATE` transaction and closes it again: a crashed process leaves
nothing locked, and WAL lets readers go on while someone writes. A writer that finds the store
busy waits, then tries again a few times; the caller decides what a store that stays busy costs
(`zoo run` keeps training and says how to record the run later).

Readers (`ResultsStore.read_only`) write nothing: no schema, no journal mode, and no -wal or -shm
file beside a store that no one has open (SQLite creates both for a read-only connection to a WAL
database, and cannot remove them again, so such a store is read as an immutable file, and read
again through SQLite's locks if it changed meanwhile).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs

from zoo.errors import UsageError
from zoo.spec import METHODS, Method

STORE_NAME = "zoo-results.sqlite"
SCHEMA_VERSION = 3

Status = Literal["ok", "failed", "refused", "interrupted"]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]

# How long a writer waits for another process's transaction before SQLite gives up, and how
# often it then tries again (pausing RETRY_SECONDS, then twice that, ...).
BUSY_TIMEOUT_SECONDS = 30.0
WRITE_ATTEMPTS = 3
RETRY_SECONDS = 1.0

T = TypeVar("T")


class StoreError(UsageError):
    """A results store that cannot be read or written (exit code 2: the output directory named
    on the command line or in the recipe holds something zoo cannot use). `busy`: another
    process held the store for longer than zoo waits."""

    def __init__(self, message: str, *, hint: str | None = None, busy: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.busy = busy


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
    # Cross-validation (data.validation = { folds = K }): a fold's run has `fold` (1 to K) and
    # `folds` (K); the ensemble of a seed's K fold models has `folds` alone.
    fold: int | None = None
    folds: int | None = None
    # A trial of a hyperparameter search ([search]): its number (1, 2, ...), the values it
    # tried, and whether it is the one the search chose on the validation split.
    trial: int | None = None
    params: Mapping[str, Any] | None = None
    best: bool | None = None
    run_id: int | None = None

    @property
    def ensemble(self) -> bool:
        return self.folds is not None and self.fold is None


# RunRecord's fields (and run.json's keys) of cross-validation.
FOLD_KEYS = ("fold", "folds")

# The `runs` columns are RunRecord's fields (settings and metrics as JSON text): a new field
# needs a new schema version and a migration below.
_FIELDS = tuple(f.name for f in attrs.fields(RunRecord) if f.name != "run_id")
_JSON_FIELDS = ("settings", "metrics")
# Trials of a search; null on runs of no search.
TRIAL_KEYS = ("trial", "params", "best")

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
    (
        "ALTER TABLE runs ADD COLUMN fold INTEGER",
        "ALTER TABLE runs ADD COLUMN folds INTEGER",
    ),
    (
        "ALTER TABLE runs ADD COLUMN trial INTEGER",
        "ALTER TABLE runs ADD COLUMN params TEXT",
        "ALTER TABLE runs ADD COLUMN best INTEGER",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


class ResultsStore:
    """The results of every run under one output directory (`OUTPUT_DIR/zoo-results.sqlite`).

    `ResultsStore(path)` creates or migrates the schema (a writer); `ResultsStore.read_only(path)`
    reads a store as it is and writes nothing.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.is_read_only = read_only
        if not read_only:
            self._retrying(self._prepare)

    @classmethod
    def in_dir(cls, output_dir: Path) -> ResultsStore:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        return cls(Path(output_dir) / STORE_NAME)

    @classmethod
    def read_only(cls, path: Path) -> ResultsStore:
        """A reader of an existing store file; an empty file reads as a store without runs."""
        if not Path(path).is_file():
            raise StoreError(f"no results store at {path}")
        return cls(path, read_only=True)

    def record(self, run: RunRecord) -> int:
        """Add one run; returns its new `run_id`."""
        return self.record_once(run, always=True)[0]

    def record_once(self, run: RunRecord, *, always: bool = False) -> tuple[int, bool]:
        """Add one run unless the store holds it already (the same run directory, status and
        time: `zoo record` run twice adds nothing); returns its `run_id` and whether it is new."""
        assert not self.is_read_only
        values = [_to_column(name, getattr(run, name)) for name in _FIELDS]
        marks = ", ".join("?" for _ in _FIELDS)
        insert = f"INSERT INTO runs ({', '.join(_FIELDS)}) VALUES ({marks})"
        same = "SELECT run_id FROM runs WHERE run_dir = ? AND status = ? AND recorded_at = ?"

        def write() -> tuple[int, bool]:
            with self._connect(write=True) as conn:
                if not always and run.run_dir is not None:
                    found = conn.execute(same, (run.run_dir, run.status, run.recorded_at))
                    row = found.fetchone()
                    if row is not None:
                        return row[0], False
                cursor = conn.execute(insert, values)
            assert cursor.lastrowid is not None
            return cursor.lastrowid, True

        return self._retrying(write)

    def mark_best(self, chosen: int, others: Sequence[int]) -> None:
        """Mark run `chosen` the best trial of its search and the runs `others` not."""
        assert not self.is_read_only

        def write() -> None:
            with self._connect(write=True) as conn:
                conn.execute("UPDATE runs SET best = 1 WHERE run_id = ?", (chosen,))
                conn.executemany(
                    "UPDATE runs SET best = 0 WHERE run_id = ?", [(i,) for i in others]
                )

        self._retrying(write)

    def runs(
        self, *, data_fingerprint: str | None = None, recipe_name: str | None = None
    ) -> list[RunRecord]:
        """The recorded runs, oldest first, optionally only those on this data or recipe."""
        where = {"data_fingerprint": data_fingerprint, "recipe_name": recipe_name}
        where = {k: v for k, v in where.items() if v is not None}
        sql = "SELECT {columns} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
        rows = self._select(sql + " ORDER BY run_id", list(where.values()))
        return [self._from_row(row) for row in rows]

    def latest(self) -> RunRecord | None:
        rows = self._select("SELECT {columns} FROM runs ORDER BY run_id DESC LIMIT 1", [])
        return self._from_row(rows[0]) if rows else None

    def _select(self, sql: str, parameters: list[Any]) -> list[tuple[Any, ...]]:
        """`sql` with {columns} for run_id and the record's fields; a reader of a store that an
        older zoo wrote (which it does not migrate) reads the columns it lacks as NULL."""

        def query(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            if self.is_read_only and not self._has_schema(conn):
                return []
            present = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            columns = [name if name in present else f"NULL AS {name}" for name in _FIELDS]
            query_sql = sql.format(columns=", ".join(["run_id", *columns]))
            return conn.execute(query_sql, parameters).fetchall()

        if self.is_read_only:
            return self._read(query)
        with self._connect() as conn:
            return query(conn)

    def _has_schema(self, conn: sqlite3.Connection) -> bool:
        """A reader's check of the schema, which it never creates: False for an empty file."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        self._refuse_newer(version)
        if version == 0:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreError(f"{self.path} is an SQLite file, but not a zoo results store")
            return False
        return True

    def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only query without leaving anything beside the store (see the module)."""
        for _ in range(3):
            before = self._file_state()
            if before[0]:  # someone has the store open: its -wal and -shm files exist already
                break
            with self._connect(immutable=True) as conn:
                result = query(conn)
            if self._file_state() == before:  # no one wrote meanwhile: what was read holds
                return result
        with self._connect(read_only=True) as conn:
            return query(conn)

    def _file_state(self) -> tuple[Any, ...]:
        companions = [self.path.with_name(self.path.name + s) for s in ("-wal", "-shm")]
        stat = self.path.stat()
        return (any(p.exists() for p in companions), stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _retrying(self, write: Callable[[], T]) -> T:
        """`write()`, tried again while another process holds the store."""
        pause, waited = RETRY_SECONDS, 0.0
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return write()
            except StoreError as exc:
                if not exc.busy:
                    raise
                if attempt == WRITE_ATTEMPTS:
                    total = attempt * BUSY_TIMEOUT_SECONDS + waited
                    raise StoreError(
                        f"the results store {self.path} is busy: another process held it for "
                        f"{total:.1f} s ({attempt} tries)",
                        hint="see which zoo (or sqlite3) process has it open",
                        busy=True,
                    ) from exc
            time.sleep(pause)
            waited += pause
            pause *= 2
        raise AssertionError("unreachable")

    @contextmanager
    def _connect(
        self, *, write: bool = False, read_only: bool = False, immutable: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """A connection for one call, closed afterwards; `write`: inside BEGIN IMMEDIATE, which
        takes the write lock up front so that two writers queue instead of deadlocking;
        `read_only`, `immutable`: SQLite's URI modes for readers."""
        target: str | Path = self.path
        if read_only or immutable or self.is_read_only:
            target = self.path.resolve().as_uri() + ("?immutable=1" if immutable else "?mode=ro")
        try:
            # isolation_level=None: no implicit transactions; this code begins and commits.
            conn = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                uri=isinstance(target, str),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the results store {self.path}: {exc}") from exc
        try:
            if write:
                conn.execute("BEGIN IMMEDIATE")
            yield conn
            if write:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"results store {self.path}: {exc}", busy=_is_busy(exc)) from exc
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
                if not exc.busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _from_row(self, row: tuple[Any, ...]) -> RunRecord:
        run_id, *values = row
        fields = dict(zip(_FIELDS, values, strict=True))
        try:
            for name in _JSON_FIELDS:
                try:
                    fields[name] = json.loads(fields[name])
                except (json.JSONDecodeError, TypeError) as exc:
                    raise ValueError(f"its {name} column is not valid JSON ({exc})") from None
                if not isinstance(fields[name], dict):
                    raise ValueError(f"its {name} column is not a JSON object")
            for name in FOLD_KEYS:
                if fields[name] is not None and type(fields[name]) is not int:
                    raise ValueError(f"its {name} column is {fields[name]!r}, not an integer")
            fields.update(_trial_fields(fields))
            for name, allowed in (("method", METHODS), ("status", STATUSES)):
                if fields[name] not in allowed:
                    choices = ", ".join(allowed)
                    raise ValueError(f"its {name} column is {fields[name]!r}, none of {choices}")
            return RunRecord(run_id=run_id, **fields)
        except (ValueError, TypeError) as exc:  # what RunRecord's validators raise too
            raise StoreError(
                f"{self.path}: run #{run_id} ({fields['model']!r}, seed {fields['seed']}, "
                f"recorded {fields['recorded_at']}) is damaged: {exc}",
                hint=f"delete that row (sqlite3 {self.path} 'DELETE FROM runs WHERE run_id = "
                f"{run_id}'), and record its run directory again with zoo record RUN_DIR",
            ) from None


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _trial_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The trial columns read back: params from JSON, best from SQLite's 0 and 1."""
    trial, params, best = fields["trial"], fields["params"], fields["best"]
    if trial is not None and (type(trial) is not int or trial < 1):
        raise ValueError(f"its trial column is {trial!r}, not a positive integer")
    if params is not None:
        try:
            params = json.loads(params)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"its params column is not valid JSON ({exc})") from None
        if not isinstance(params, dict):
            raise ValueError("its params column is not a JSON object")
    if best not in (None, 0, 1):
        raise ValueError(f"its best column is {best!r}, not 0 or 1")
    return {"params": params, "best": None if best is None else bool(best)}


def _to_column(name: str, value: Any) -> Any:
    if name == "params":
        return None if value is None else json.dumps(dict(value), ensure_ascii=False)
    if name == "best":
        return None if value is None else int(value)
    if name in _JSON_FIELDS:
        # default=str as in zoo.files.write_json: a Path in the settings is kept as its text.
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def hash_text(text: str) -> str:
    """sha256 hex of `text` as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_digest(path: Path) -> str:
    """sha256 hex of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fingerprint_files(paths: Iterable[Path]) -> str:
    """sha256 hex over the bytes of each file in the given order, independent of their names.

    It hashes each file's sha256 in turn, so moving bytes from one file to the next changes it.
    """
    return fingerprint_digests(file_digest(path) for path in paths)


def fingerprint_digests(digests: Iterable[str]) -> str:
    """`fingerprint_files` from the files' sha256 hex digests."""
    digest = hashlib.sha256()
    for hexdigest in digests:
        digest.update(bytes.fromhex(hexdigest))
    return digest.hexdigest()
