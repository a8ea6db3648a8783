"""The results store: what goes in comes out, from any number of processes at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from zoo.errors import ZooError
from zoo.store import (
    SCHEMA_VERSION,
    STORE_NAME,
    ResultsStore,
    RunRecord,
    fingerprint_files,
    hash_text,
)

METRICS = {
    "test": {
        "accuracy": 0.875,
        "f1_macro": 0.7056,
        "f1_weighted": 0.8607,
        "per_class": {
            "code": {"precision": 0.9, "recall": 0.95, "f1": 0.92, "support": 51},
            "remote": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 4},
        },
    },
    "validation": None,
}


def make_run(**changes) -> RunRecord:
    fields = {
        "recipe_name": "demo",
        "recipe_hash": hash_text("[run]\nname = 'demo'\n"),
        "data_fingerprint": "d" * 64,
        "model": "e5-small",
        "method": "full",
        "seed": 42,
        "status": "ok",
    }
    return RunRecord(**(fields | changes))


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    return ResultsStore.in_dir(tmp_path / "runs")


def test_a_run_comes_back_as_it_went_in(store):
    run = make_run(
        settings={"epochs": 6, "learning_rate": 1e-4, "lr_scheduler": "cosine", "max_steps": None},
        metrics=METRICS,
        train_seconds=191.1,
        peak_memory_bytes=4_402_341_888,
        parameters=117_653_760,
        run_dir="/work/runs/demo/e5-small-20261125-102354",
        reason="메모: 한국어도 그대로",  # stored as text, not \u escapes, and read back the same
    )
    run_id = store.record(run)
    assert store.runs() == [attrs.evolve(run, run_id=run_id)]
    assert store.latest() == attrs.evolve(run, run_id=run_id)


def test_the_store_lives_in_the_output_directory(tmp_path):
    store = ResultsStore.in_dir(tmp_path / "new" / "runs")
    assert store.path == tmp_path / "new" / "runs" / STORE_NAME
    assert store.path.is_file()
    with closing(sqlite3.connect(store.path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_no_connection_stays_open_between_calls(store):
    store.record(make_run())
    store.runs()
    # SQLite removes the write-ahead log when the last connection to the file closes.
    assert not store.path.with_name(STORE_NAME + "-wal").exists()


def test_runs_are_listed_oldest_first_with_new_ids(store):
    ids = [store.record(make_run(seed=seed)) for seed in (3, 1, 2)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [r.seed for r in store.runs()] == [3, 1, 2]
    assert store.latest().seed == 2


def test_an_empty_store_has_no_runs(store):
    assert store.runs() == []
    assert store.latest() is None


def test_a_failed_run_is_recorded_with_its_reason(store):
    store.record(make_run())
    reason = "RuntimeError: CUDA out of memory"
    store.record(make_run(model="koalpaca-12.8b", method="qlora", status="failed", reason=reason))
    failed = store.latest()
    assert (failed.model, failed.method, failed.status, failed.reason) == (
        "koalpaca-12.8b",
        "qlora",
        "failed",
        reason,
    )
    assert failed.metrics == {} and failed.train_seconds is None


@pytest.mark.parametrize("status", ["refused", "interrupted"])
def test_every_status_is_kept(store, status):
    store.record(make_run(status=status, reason="why"))
    assert store.latest().status == status


def test_a_record_with_an_unknown_status_is_a_bug_caught_at_once():
    with pytest.raises(ValueError, match="status"):
        make_run(status="crashed")


def test_runs_filter_by_data_and_by_recipe(store):
    store.record(make_run(data_fingerprint="a", recipe_name="one", seed=1))
    store.record(make_run(data_fingerprint="b", recipe_name="one", seed=2))
    store.record(make_run(data_fingerprint="a", recipe_name="two", seed=3))
    assert [r.seed for r in store.runs(data_fingerprint="a")] == [1, 3]
    assert [r.seed for r in store.runs(recipe_name="one")] == [1, 2]
    assert [r.seed for r in store.runs(data_fingerprint="a", recipe_name="two")] == [3]
    assert store.runs(data_fingerprint="c") == []


# Each process waits for "go" on stdin, then opens the store itself (a fresh file: the two race
# to create it too) and records its runs one call at a time, as `zoo run` does.
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from zoo.store import ResultsStore, RunRecord

    path, name = Path(sys.argv[1]), sys.argv[2]
    sys.stdin.readline()
    for seed in range(20):
        ResultsStore(path).record(RunRecord(
            recipe_name=name, recipe_hash="h", data_fingerprint="d",
            model=name, method="full", seed=seed, status="ok",
        ))
    """
)


def test_two_processes_record_at_the_same_moment(tmp_path):
    path = tmp_path / STORE_NAME
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    errors = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [w.returncode for w in writers] == [0, 0], errors
    assert errors == ["", ""]
    runs = ResultsStore(path).runs()
    assert len(runs) == 40
    for name in ("first", "second"):
        assert sorted(r.seed for r in runs if r.model == name) == list(range(20))


def test_a_store_from_a_newer_zoo_is_refused(tmp_path):
    store = ResultsStore(tmp_path / STORE_NAME)
    store.record(make_run())
    with closing(sqlite3.connect(store.path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ZooError) as raised:
        ResultsStore(store.path)
    assert str(raised.value) == (
        f"{store.path} was written by a newer zoo (results schema version "
        f"{SCHEMA_VERSION + 1}; this zoo reads version {SCHEMA_VERSION} and older)\n"
        "  hint: upgrade zoo to read it, or record into another output directory"
    )


def test_an_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / STORE_NAME
    path.touch()
    ResultsStore(path).record(make_run())
    assert len(ResultsStore(path).runs()) == 1


def test_another_sqlite_database_is_not_taken_for_a_store(tmp_path):
    path = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(ZooError, match="is an SQLite file, but not a zoo results store"):
        ResultsStore(path)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path):
    path = tmp_path / STORE_NAME
    path.write_text("model,f1\n" * 200, encoding="utf-8")
    with pytest.raises(ZooError, match=f"results store {path}: file is not a database"):
        ResultsStore(path)


def test_hash_text_is_sha256_of_the_utf8_text():
    assert hash_text("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert hash_text("코드") != hash_text("코드 ")


def test_the_data_fingerprint_follows_the_bytes(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_bytes(b"text,label\nserver down,ops\n")
    test.write_bytes(b"text,label\nsort a list,code\n")
    before = fingerprint_files([train, test])
    assert len(before) == 64 and before == fingerprint_files([train, test])

    train.write_bytes(b"text,label\nserver down,opz\n")  # one byte changed
    assert fingerprint_files([train, test]) != before


def test_the_data_fingerprint_ignores_names_but_not_order_or_boundaries(tmp_path):
    a, b, elsewhere = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "elsewhere.tsv"
    a.write_bytes(b"xy")
    b.write_bytes(b"z")
    elsewhere.write_bytes(b"xy")
    before = fingerprint_files([a, b])
    assert fingerprint_files([elsewhere, b]) == before
    assert fingerprint_files([b, a]) != before
    a.write_bytes(b"x")
    b.write_bytes(b"yz")  # the same bytes in all, split differently between the files
    assert fingerprint_files([a, b]) != before


# --- readers write nothing ------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))}


def test_a_reader_of_an_empty_file_finds_no_runs_and_writes_nothing(tmp_path):
    """A 0-byte file: a writer would make it a store; a reader leaves it as it is."""
    path = tmp_path / STORE_NAME
    path.touch()
    reader = ResultsStore.read_only(path)
    assert reader.runs() == [] and reader.latest() is None
    assert snapshot(tmp_path) == {STORE_NAME: b""}


def test_a_reader_leaves_no_wal_or_shm_file_beside_a_closed_store(store):
    """SQLite makes -wal and -shm files for a read-only connection to a WAL database and cannot
    remove them again; zoo's reader leaves the folder exactly as it was."""
    store.record(make_run(seed=1))
    before = snapshot(store.path.parent)
    assert sorted(before) == [STORE_NAME]
    reader = ResultsStore.read_only(store.path)
    assert [r.seed for r in reader.runs()] == [1]
    assert reader.latest().seed == 1
    assert snapshot(store.path.parent) == before


def test_a_reader_reads_what_was_committed_while_another_process_writes(store):
    store.record(make_run(seed=1))
    with closing(sqlite3.connect(store.path, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE runs SET seed = 99")  # not committed
        assert [r.seed for r in ResultsStore.read_only(store.path).runs()] == [1]
        writer.execute("ROLLBACK")


def test_a_reader_refuses_what_a_writer_refuses(tmp_path):
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(ZooError, match="is an SQLite file, but not a zoo results store"):
        ResultsStore.read_only(other).runs()
    with pytest.raises(ZooError, match=f"^no results store at {tmp_path / 'nothing'}$"):
        ResultsStore.read_only(tmp_path / "nothing")


# --- damaged rows are named -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        (
            "settings",
            "{not json",
            "its settings column is not valid JSON (Expecting property "
            "name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        ("metrics", "[0.5]", "its metrics column is not a JSON object"),
        (
            "method",
            "'dreambooth'",
            "its method column is 'dreambooth', none of full, lora, qlora, zero-shot, few-shot",
        ),
    ],
)
def test_a_damaged_row_is_named_not_a_traceback(store, column, value, problem):
    store.record(make_run(seed=1))
    run_id = store.record(make_run(seed=2, model="minilm"))
    with closing(sqlite3.connect(store.path)) as conn:
        quoted = value if value.startswith("'") else "'" + value.replace("'", "''") + "'"
        conn.execute(f"UPDATE runs SET {column} = {quoted} WHERE run_id = {run_id}")
        conn.commit()
    for reader in (store, ResultsStore.read_only(store.path)):
        with pytest.raises(ZooError) as raised:
            reader.runs()
        message = raised.value.message
        assert message.startswith(f"{store.path}: run #{run_id} ('minilm', seed 2, recorded ")
        assert message.endswith(f") is damaged: {problem}")
        assert raised.value.hint == (
            f"delete that row (sqlite3 {store.path} 'DELETE FROM runs WHERE run_id = {run_id}'), "
            "and record its run directory again with zoo record RUN_DIR"
        )


# --- a busy store: waited for, tried again, then reported ---------------------------------------


@pytest.fixture
def impatient(monkeypatch):
    """Wait 0.05 s for a lock instead of 30 s, and retry after 0.01 s, 0.02 s."""
    import zoo.store

    monkeypatch.setattr(zoo.store, "BUSY_TIMEOUT_SECONDS", 0.05)
    monkeypatch.setattr(zoo.store, "RETRY_SECONDS", 0.01)


def test_a_store_held_by_another_process_past_the_retries_is_busy(store, impatient):
    with closing(sqlite3.connect(store.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(ZooError) as raised:
            store.record(make_run())
        other.execute("ROLLBACK")
    assert raised.value.busy
    assert raised.value.message == (
        f"the results store {store.path} is busy: another process held it for 0.2 s (3 tries)"
    )
    assert store.runs() == []


def test_a_store_released_between_tries_takes_the_record(store, monkeypatch, impatient):
    import threading

    import zoo.store

    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    real_sleep = zoo.store.time.sleep

    def release_then_sleep(seconds):  # the other process finishes while zoo waits to retry
        if other.in_transaction:
            other.execute("ROLLBACK")
        real_sleep(seconds)

    monkeypatch.setattr(zoo.store.time, "sleep", release_then_sleep)
    assert threading.current_thread() is threading.main_thread()
    run_id = store.record(make_run())
    other.close()
    assert [r.run_id for r in store.runs()] == [run_id]


def test_record_once_adds_a_run_directory_once(store):
    run = make_run(
        run_dir="/runs/demo/e5-small-seed42-20261125-102354",
        recorded_at="2026-11-25T10:30:00+00:00",
    )
    first, new = store.record_once(run)
    assert new
    assert store.record_once(run) == (first, False)
    # The same directory resumed and finished later is another record.
    later = attrs.evolve(run, recorded_at="2026-11-25T11:00:00+00:00")
    assert store.record_once(later)[1]
    assert len(store.runs()) == 2


def test_record_adds_a_run_every_time_record_once_only_once(store):
    """`zoo run` records each run it trains (record); `zoo record` run twice adds nothing
    (record_once)."""
    run = make_run(
        run_dir="/runs/demo/e5-small-seed42-20261125-102354",
        recorded_at="2026-11-25T10:30:00+00:00",
    )
    first, second = store.record(run), store.record(run)
    assert first != second
    found, new = store.record_once(run)
    assert not new and found in (first, second)
    assert [r.run_id for r in store.runs()] == [first, second]


def test_a_run_is_recorded_with_the_time_in_utc_to_the_second():
    recorded = datetime.fromisoformat(make_run().recorded_at)
    assert recorded.utcoffset() == timedelta(0)
    assert recorded.microsecond == 0
    assert abs(datetime.now(UTC) - recorded) < timedelta(minutes=1)


def test_settings_are_stored_as_readable_json_text(store):
    """The damaged-row hint sends the user to sqlite3: the JSON columns read as the user wrote
    them (Korean as Korean), and a path is kept as its text."""
    store.record(make_run(settings={"label": "코드", "output_dir": Path("/runs/demo")}))
    with closing(sqlite3.connect(store.path)) as conn:
        [(settings,)] = conn.execute("SELECT settings FROM runs").fetchall()
    assert settings == '{"label": "코드", "output_dir": "/runs/demo"}'
    assert store.latest().settings == {"label": "코드", "output_dir": "/runs/demo"}


# --- one write, one transaction -------------------------------------------------------------------


@pytest.fixture
def statements(monkeypatch) -> list[tuple[str, bool]]:
    """Every statement zoo.store runs (its first two words, in capitals: SQL ignores case), with
    whether it ran inside a transaction."""
    seen: list[tuple[str, bool]] = []

    class Traced(sqlite3.Connection):
        def execute(self, sql, *args):
            seen.append((" ".join(sql.split()[:2]).upper(), self.in_transaction))
            return super().execute(sql, *args)

    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real_connect(*a, **k, factory=Traced))
    return seen


def test_a_new_store_is_created_in_one_write_transaction(tmp_path, statements):
    """Two processes that create one store at once: the second finds the first one's schema
    instead of creating the table again."""
    ResultsStore(tmp_path / STORE_NAME)
    begin = statements.index(("BEGIN IMMEDIATE", False))
    commit = statements.index(("COMMIT", True))
    created = [i for i, (sql, _) in enumerate(statements) if sql.startswith("CREATE")]
    assert created and all(begin < i < commit for i in created)
    assert ("PRAGMA USER_VERSION", True) in statements[begin:commit]  # read again, inside


def test_record_once_looks_for_the_run_and_adds_it_in_one_write_transaction(store, statements):
    """Two `zoo record RUN_DIR` at once add the run once: the look-up and the insert hold the
    write lock together."""
    store.record_once(make_run(run_dir="/runs/x", recorded_at="2026-11-25T10:30:00+00:00"))
    assert statements == [
        ("BEGIN IMMEDIATE", False),
        ("SELECT RUN_ID", True),
        ("INSERT INTO", True),
        ("COMMIT", True),
    ]


def test_opening_a_current_store_takes_no_write_lock(store, impatient):
    """`zoo compare` and `zoo show` open the store while a `zoo run` writes to it."""
    store.record(make_run())
    with closing(sqlite3.connect(store.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        assert len(ResultsStore(store.path).runs()) == 1
        other.execute("ROLLBACK")


def test_a_store_switched_to_wal_while_another_process_migrates_it_waits_for_that(
    store, monkeypatch
):
    """SQLite refuses at once to change the journal mode while another connection holds the
    write lock (a second process creating the same store): zoo polls until it is free, without
    giving up on the first refusal."""
    import zoo.store

    with closing(sqlite3.connect(store.path)) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    pauses = []

    def release_then_pause(seconds):
        pauses.append(seconds)
        if other.in_transaction:
            other.execute("ROLLBACK")

    monkeypatch.setattr(zoo.store.time, "sleep", release_then_pause)
    ResultsStore(store.path)
    other.close()
    assert pauses == [0.05]
    with closing(sqlite3.connect(store.path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_busy_store_is_tried_three_times_with_growing_pauses(store, monkeypatch):
    import zoo.store

    monkeypatch.setattr(zoo.store, "BUSY_TIMEOUT_SECONDS", 0)  # SQLite gives up at once
    pauses = []
    monkeypatch.setattr(zoo.store.time, "sleep", pauses.append)
    with closing(sqlite3.connect(store.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(ZooError) as raised:
            store.record(make_run())
        other.execute("ROLLBACK")
    assert pauses == [1.0, 2.0]
    assert str(raised.value) == (
        f"the results store {store.path} is busy: another process held it for 3.0 s (3 tries)\n"
        "  hint: see which zoo (or sqlite3) process has it open"
    )


def test_a_store_held_through_the_switch_to_wal_is_busy_not_waited_for_forever(
    store, monkeypatch, impatient
):
    import zoo.store

    with closing(sqlite3.connect(store.path)) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    real_sleep, pauses = zoo.store.time.sleep, []

    def pause(seconds):
        pauses.append(seconds)
        assert len(pauses) < 1000, "still waiting for a store that stays busy"
        real_sleep(0.001)

    monkeypatch.setattr(zoo.store.time, "sleep", pause)
    with closing(sqlite3.connect(store.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(ZooError) as raised:
            ResultsStore(store.path)
        other.execute("ROLLBACK")
    assert raised.value.busy
    assert raised.value.message.endswith("(3 tries)")


def version_1_store(path: Path) -> None:
    """A store as zoo wrote it before cross-validation (schema version 1: no fold columns)."""
    from zoo.store import _MIGRATIONS

    with closing(sqlite3.connect(path)) as conn:
        for statement in _MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO runs (recipe_name, recipe_hash, data_fingerprint, model, method, seed, "
            "status, settings, metrics, recorded_at) VALUES ('demo', 'h', 'd', 'e5-small', "
            "'full', 42, 'ok', '{}', '{}', '2026-11-30T10:00:00+00:00')"
        )
        conn.execute("PRAGMA user_version = 1")
        conn.commit()


def test_a_fold_and_an_ensemble_come_back_as_they_went_in(store):
    fold = make_run(fold=2, folds=5)
    ensemble = make_run(folds=5)
    ids = [store.record(run) for run in (fold, ensemble)]
    assert store.runs() == [
        attrs.evolve(fold, run_id=ids[0]),
        attrs.evolve(ensemble, run_id=ids[1]),
    ]
    assert [r.ensemble for r in store.runs()] == [False, True]
    assert not make_run().ensemble


def test_a_store_of_schema_1_is_read_as_it_is_and_migrated_by_a_writer(tmp_path):
    path = tmp_path / STORE_NAME
    version_1_store(path)
    before = path.read_bytes()
    [old] = ResultsStore.read_only(path).runs()
    assert (old.model, old.fold, old.folds) == ("e5-small", None, None)
    assert path.read_bytes() == before  # a reader migrates nothing

    writer = ResultsStore(path)
    writer.record(make_run(fold=1, folds=3))
    assert [(r.fold, r.folds) for r in writer.runs()] == [(None, None), (1, 3)]
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_a_fold_column_that_is_no_integer_is_a_damaged_row(store):
    store.record(make_run(fold=1, folds=3))
    with closing(sqlite3.connect(store.path)) as conn:
        conn.execute("UPDATE runs SET fold = 'one'")
        conn.commit()
    with pytest.raises(ZooError, match=r"its fold column is 'one', not an integer"):
        store.runs()
