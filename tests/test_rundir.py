"""Run directories: one reader for every command that reads them, and run.json records.

Each damaged-directory case starts from a real run of the `tfidf` baseline (trained in a second
in this process), damages one thing, and runs the real command line: exit code 2, one message
that names what is missing or damaged and how to fix it, no traceback, nothing written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from zoo.cli import main
from zoo.store import ResultsStore

TRAIN = "text,label\n" + "".join(
    f"{word} number {i},{label}\n"
    for i in range(6)
    for word, label in (("server down", "ops"), ("sort a list", "code"), ("disk full", "ops"))
)
TEST = "text,label\nserver is down,ops\nsort my list,code\n"
INPUT = "id,text\n1,disk is full\n2,sort a list\n"
RECIPE = """\
[run]
name = "rd"
output_dir = "runs"

[data]
train = "train.csv"
test = "test.csv"

[[models]]
model = "tfidf"
"""


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "")
    for name in ("ZOO_BLOCK_PLUGINS", "COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder under `root`."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def zoo(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train_tfidf(directory: Path, capsys, recipe: str = RECIPE) -> Path:
    """A real tfidf run in `directory`; returns its run directory."""
    (directory / "train.csv").write_text(TRAIN, encoding="utf-8")
    (directory / "test.csv").write_text(TEST, encoding="utf-8")
    (directory / "recipe.toml").write_text(recipe, encoding="utf-8")
    code, out, err = zoo(capsys, "run", directory / "recipe.toml", "--json")
    assert code == 0, err
    [run] = json.loads(out)["runs"]
    return Path(run["run_dir"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One finished tfidf run, made once; tests work on copies (`run_copy`)."""
    import contextlib
    import io
    import os

    directory = tmp_path_factory.mktemp("trained")
    (directory / "train.csv").write_text(TRAIN, encoding="utf-8")
    (directory / "test.csv").write_text(TEST, encoding="utf-8")
    (directory / "recipe.toml").write_text(RECIPE, encoding="utf-8")
    out = io.StringIO()
    old = os.environ.get("ZOO_PLUGINS")
    os.environ["ZOO_PLUGINS"] = ""
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(["run", str(directory / "recipe.toml"), "--json"]) == 0
    finally:
        if old is None:
            del os.environ["ZOO_PLUGINS"]
        else:
            os.environ["ZOO_PLUGINS"] = old
    [run] = json.loads(out.getvalue())["runs"]
    return Path(run["run_dir"])


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    """A copy of the trained run's whole folder (data, recipe, output dir and store) in
    `tmp_path`; returns the copied run directory."""
    source = trained.parents[2]
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    run_dir = tmp_path / trained.relative_to(source)
    # run.json holds absolute paths of the original folder: point them here.
    for name in ("run.json", "recipe.toml"):
        path = run_dir / name
        path.write_text(
            path.read_text(encoding="utf-8").replace(str(source), str(tmp_path)), encoding="utf-8"
        )
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(tmp_path / "runs" / "zoo-results.sqlite")) as store:
        store.execute(
            "UPDATE runs SET run_dir = replace(run_dir, ?, ?)", (str(source), str(tmp_path))
        )
        store.commit()
    (tmp_path / "input.csv").write_text(INPUT, encoding="utf-8")
    return run_dir


def edit_json(path: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def command(name: str, run_dir: Path) -> list[str]:
    folder = run_dir.parents[2]
    return {
        "show": ["show", run_dir],
        "report": ["report", run_dir],
        "predict": [
            "predict",
            run_dir,
            "--input",
            folder / "input.csv",
            "--output",
            folder / "o.csv",
        ],
        "resume": ["run", "--resume", run_dir],
        "record": ["record", run_dir],
    }[name]


RUN_DIR_HINT = (
    "give a run directory that 'zoo run' made: OUTPUT_DIR/RUN_NAME/MODEL-seedN-YYYYmmdd-HHMMSS"
)
RESTORE = (
    "zoo writes this itself; restore it from a copy of the run directory, or train the run "
    "again with zoo run {run}/recipe.toml"
)
ALL = ("show", "report", "predict", "resume", "record")


def set_status(status: str, **facts) -> Callable[[Path], None]:
    def damage(run_dir: Path) -> None:
        edit_json(run_dir / "run.json", lambda r: r.update(status=status, **facts))

    return damage


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def damage(run_dir: Path) -> None:
        path = run_dir / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    return damage


def remove(name: str) -> Callable[[Path], None]:
    def damage(run_dir: Path) -> None:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return damage


def drop_metric(split: str, key: str) -> Callable[[Path], None]:
    return lambda run_dir: edit_json(run_dir / "metrics.json", lambda m: m[split].pop(key))


@attrs.frozen
class Damaged:
    id: str
    damage: Callable[[Path], None]
    commands: tuple[str, ...]
    message: str  # {run}: the run directory
    hint: str


def in_data(line: str) -> Callable[[Path], None]:
    """Add a line to recipe.toml's [data] table."""

    def damage(run_dir: Path) -> None:
        recipe = run_dir / "recipe.toml"
        text = recipe.read_text(encoding="utf-8")
        recipe.write_text(text.replace("[data]\n", f"[data]\n{line}\n", 1), encoding="utf-8")

    return damage


DAMAGED = [
    Damaged(
        "fold-not-a-number",
        lambda run_dir: edit_json(run_dir / "run.json", lambda r: r.update(fold="two", folds=5)),
        ("record",),
        "{run}/run.json is damaged: fold is a string, not a positive integer",
        RESTORE,
    ),
    Damaged(
        "preprocess-not-a-list",
        in_data('preprocess = "mask-urls"'),
        ("predict",),
        "{run}/recipe.toml: data.preprocess is 'mask-urls', not a list of text transforms",
        "zoo run writes it as the recipe had it; restore it from a copy of the run directory",
    ),
    Damaged(
        "does-not-exist",
        lambda run_dir: shutil.rmtree(run_dir),
        ALL,
        "run directory {run} does not exist",
        RUN_DIR_HINT,
    ),
    Damaged(
        "a-file",
        lambda run_dir: (shutil.rmtree(run_dir), run_dir.write_text("x", encoding="utf-8")),
        ALL,
        "{run} is a file, not a run directory",
        RUN_DIR_HINT,
    ),
    Damaged(
        "no-run-json",
        remove("run.json"),
        ALL,
        "{run} is not a zoo run directory: it has no run.json",
        RUN_DIR_HINT,
    ),
    Damaged(
        "run-json-not-json",
        write("run.json", '{"model": "tfidf",\n  status: "ok"}'),
        ALL,
        "{run}/run.json is damaged: not JSON (line 2, column 3: Expecting property name "
        "enclosed in double quotes)",
        RESTORE,
    ),
    Damaged(
        "run-json-a-list",
        write("run.json", '["tfidf", "ok"]'),
        ALL,
        "{run}/run.json is damaged: a list, not a JSON object",
        RESTORE,
    ),
    Damaged(
        "run-json-not-utf8",
        write("run.json", b'{"model": "tfidf",\n "reason": "\xff"}'),
        ALL,
        "{run}/run.json is damaged: not UTF-8 (byte 0xff on line 2)",
        RESTORE,
    ),
    Damaged(
        "no-recipe",
        remove("recipe.toml"),
        ("predict",),
        "{run}/recipe.toml is missing",
        "zoo run writes it as the run starts; restore it from a copy of the run directory",
    ),
    Damaged(
        "recipe-not-toml",
        write("recipe.toml", "[run]\nname = rd\n"),
        ("predict",),
        "{run}/recipe.toml is damaged: not TOML (Invalid value (at line 2, column 8))",
        RESTORE,
    ),
    Damaged(
        "no-metrics",
        remove("metrics.json"),
        ("show", "report", "record"),
        "{run}/metrics.json is missing, though run.json says the run finished",
        RESTORE,
    ),
    Damaged(
        "metrics-not-an-object",
        write("metrics.json", "[0.5, 0.5]"),
        ("show", "report", "record"),
        "{run}/metrics.json is damaged: a list, not a JSON object",
        RESTORE,
    ),
    Damaged(
        "metrics-without-a-metric",
        drop_metric("test", "f1_macro"),
        ("show", "report", "record"),
        "{run}/metrics.json is damaged: the test scores have no f1_macro",
        RESTORE,
    ),
    Damaged(
        "metrics-without-validation",
        lambda run_dir: edit_json(run_dir / "metrics.json", lambda m: m.pop("validation")),
        ("show", "report", "record"),
        "{run}/metrics.json is damaged: the validation scores are missing",
        RESTORE,
    ),
    Damaged(
        "metrics-with-a-ragged-confusion-matrix",
        lambda run_dir: edit_json(
            run_dir / "metrics.json", lambda m: m["test"]["confusion_matrix"]["matrix"].pop()
        ),
        ("show", "report", "record"),
        "{run}/metrics.json is damaged: the test confusion matrix is not 2 x 2",
        RESTORE,
    ),
    Damaged(
        "labels-broken",
        write("labels.json", '{"id2label": {"1": "code", "2": "ops"}}'),
        ("report", "predict"),
        "{run}/labels.json is damaged: no id2label map from 0, 1, ... to distinct label names",
        RESTORE,
    ),
    Damaged(
        "no-log-history",
        remove("log_history.json"),
        ("report",),
        "{run}/log_history.json is missing",
        RESTORE,
    ),
    Damaged(
        "no-model",
        remove("model"),
        ("predict",),
        "{run}/model is missing: the run's trained model is not there",
        RESTORE,
    ),
    Damaged(
        "model-without-weights",
        remove("model/weights.npz"),
        ("predict",),
        "{run}/model holds no weights (none of model.safetensors, model.safetensors.index.json, "
        "adapter_model.safetensors, pytorch_model.bin, weights.npz)",
        RESTORE,
    ),
    Damaged(
        "failed",
        set_status("failed", reason="RuntimeError: boom"),
        ("report", "predict"),
        "{run} holds a run that did not finish (status 'failed': RuntimeError: boom): it has "
        "no results",
        "train it again with zoo run {run}/recipe.toml",
    ),
    Damaged(
        "still-running",
        set_status("running"),
        ("report", "predict"),
        "{run} holds a run that did not finish (status 'running'): it has no results",
        "it is still training, or its process was killed; if it was killed, continue it with "
        "zoo run --resume {run}",
    ),
    Damaged(
        "finished",
        lambda run_dir: None,
        ("resume",),
        "{run} holds a finished run (status 'ok'): there is nothing to resume",
        "'zoo show {run}' shows its results; zoo run {run}/recipe.toml trains it again in a new "
        "run directory",
    ),
    Damaged(
        "interrupted-baseline",
        set_status("interrupted"),
        ("resume",),
        "{run} cannot be resumed: 'tfidf' (method 'full') saves no checkpoints",
        "start it again: zoo run {run}/recipe.toml",
    ),
    Damaged(
        "interrupted-before-its-first-checkpoint",
        set_status("interrupted", checkpoints=True),
        ("resume",),
        "{run} has no checkpoint to resume from (it stopped before its first one)",
        "start it again: zoo run {run}/recipe.toml",
    ),
    Damaged(
        "made-by-an-older-zoo",
        lambda run_dir: edit_json(run_dir / "run.json", lambda r: r.pop("recipe_hash")),
        ("record",),
        "{run}/run.json lacks what a results-store record needs (recipe_hash): an older zoo "
        "made it",
        "train it again with zoo run {run}/recipe.toml to have it in the store",
    ),
    Damaged(
        "still-running-is-not-recorded",
        set_status("running"),
        ("record",),
        "{run} holds a run that has not ended (status 'running'): there is nothing to record yet",
        "it is still training, or its process was killed; if it was killed, continue it with "
        "zoo run --resume {run} (that records it)",
    ),
]


@pytest.mark.parametrize(
    ("case", "name"),
    [(case, name) for case in DAMAGED for name in case.commands],
    ids=[f"{case.id}-{name}" for case in DAMAGED for name in case.commands],
)
def test_a_damaged_run_directory(case, name, run_copy, tmp_path, capsys):
    case.damage(run_copy)
    before = snapshot(tmp_path)
    code, out, err = zoo(capsys, *command(name, run_copy))
    assert (code, out) == (2, "")
    assert err == (
        f"error: {case.message.format(run=run_copy)}\n  hint: {case.hint.format(run=run_copy)}\n"
    )
    assert snapshot(tmp_path) == before


# --- the commands on a good run directory -----------------------------------------------------


@pytest.mark.parametrize("name", ["show", "report", "predict"])
def test_a_good_run_directory_serves_every_command(name, run_copy, capsys):
    code, _out, err = zoo(capsys, *command(name, run_copy))
    assert code == 0, err


def test_show_of_a_failed_run_shows_its_reason(run_copy, capsys):
    set_status("failed", reason="RuntimeError: boom")(run_copy)
    code, out, _err = zoo(capsys, "show", run_copy)
    assert code == 0
    assert "tfidf (failed)" in out and "reason: RuntimeError: boom" in out


# --- run.json: one record from start to end ---------------------------------------------------


IDENTITY = {
    "recipe_name",
    "recipe_hash",
    "data_fingerprint",
    "output_dir",
    "model",
    "registered_model",
    "method",
    "seed",
}


def test_run_json_holds_the_identity_a_store_record_needs(trained):
    record = json.loads((trained / "run.json").read_text(encoding="utf-8"))
    assert set(record) >= IDENTITY
    assert (record["recipe_name"], record["model"], record["method"], record["seed"]) == (
        "rd",
        "tfidf",
        "full",
        42,
    )
    assert record["output_dir"] == str(trained.parents[1])
    [stored] = ResultsStore(trained.parents[1] / "zoo-results.sqlite").runs()
    assert (stored.recipe_hash, stored.data_fingerprint) == (
        record["recipe_hash"],
        record["data_fingerprint"],
    )
    assert record["status"] == "ok" and record["ended"] == stored.recorded_at
    assert record["checkpoints"] is False  # the baseline saves none
    assert record["started_with"]["labels"] == ["code", "ops"]


def test_a_run_json_is_written_as_the_run_starts(tmp_path, capsys, monkeypatch):
    """While the model trains, run.json already says who the run is and that it is running."""
    import zoo_plugins.tfidf as tfidf

    seen = {}
    real = tfidf.train

    def train(job, make_run_dir, progress):
        run_dir = make_run_dir()
        seen.update(json.loads((run_dir / "run.json").read_text(encoding="utf-8")))
        return real(job, lambda: run_dir, progress)

    monkeypatch.setattr(tfidf, "train", train)
    train_tfidf(tmp_path, capsys)
    assert seen["status"] == "running"
    assert set(seen) >= IDENTITY
    assert seen["started_with"]["data_files"]["data.train"]["path"] == str(tmp_path / "train.csv")


def test_a_failed_run_keeps_its_identity_in_run_json(tmp_path, capsys, monkeypatch):
    import zoo_plugins.tfidf as tfidf

    def train(job, make_run_dir, progress):
        make_run_dir()
        raise RuntimeError("boom")

    monkeypatch.setattr(tfidf, "train", train)
    (tmp_path / "train.csv").write_text(TRAIN, encoding="utf-8")
    (tmp_path / "test.csv").write_text(TEST, encoding="utf-8")
    (tmp_path / "recipe.toml").write_text(RECIPE, encoding="utf-8")
    code, _out, _err = zoo(capsys, "run", tmp_path / "recipe.toml")
    assert code == 1
    [run_dir] = (tmp_path / "runs" / "rd").iterdir()
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert set(record) >= IDENTITY
    assert (record["status"], record["reason"]) == ("failed", "RuntimeError: boom")
    assert "Traceback" in (run_dir / "error.txt").read_text(encoding="utf-8")


def test_an_interrupted_baseline_is_told_to_start_again_not_to_resume(
    tmp_path, capsys, monkeypatch
):
    import zoo_plugins.tfidf as tfidf

    def train(job, make_run_dir, progress):
        make_run_dir()
        raise KeyboardInterrupt

    monkeypatch.setattr(tfidf, "train", train)
    (tmp_path / "train.csv").write_text(TRAIN, encoding="utf-8")
    (tmp_path / "test.csv").write_text(TEST, encoding="utf-8")
    (tmp_path / "recipe.toml").write_text(RECIPE, encoding="utf-8")
    code, _out, err = zoo(capsys, "run", tmp_path / "recipe.toml")
    assert code == 130
    [run_dir] = (tmp_path / "runs" / "rd").iterdir()
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "interrupted"
    assert "resume" not in record
    assert record["restart"] == f"zoo run {run_dir / 'recipe.toml'}"
    assert record["reason"] == (
        "interrupted by the user (Ctrl-C or SIGTERM); it saves no checkpoints, so it cannot be "
        "resumed"
    )
    assert f"start it again with zoo run {run_dir / 'recipe.toml'}" in err
    assert "--resume" not in err
    [stored] = ResultsStore(tmp_path / "runs" / "zoo-results.sqlite").runs()
    assert (stored.status, stored.run_dir) == ("interrupted", str(run_dir))


# --- the effective recipe retrains the same entry ----------------------------------------------


def test_the_run_directory_recipe_keeps_every_model_entry_setting(tmp_path, capsys):
    """allow_pickle, trust_remote_code, name, checkpoint (made absolute): rerunning
    RUN_DIR/recipe.toml must not refuse what the original recipe allowed."""
    from zoo.recipe import TRAINING_KEYS, ModelEntry, load_recipe, settings_for

    recipe_text = RECIPE.replace(
        'model = "tfidf"\n',
        'model = "tfidf"\nname = "baseline"\nallow_pickle = true\ncheckpoint = "weights"\n'
        "learning_rate = 0.5\n",
    )
    (tmp_path / "weights").mkdir()
    (tmp_path / "train.csv").write_text(TRAIN, encoding="utf-8")
    (tmp_path / "test.csv").write_text(TEST, encoding="utf-8")
    (tmp_path / "recipe.toml").write_text(recipe_text, encoding="utf-8")
    original = load_recipe(tmp_path / "recipe.toml")
    run_dir = train_tfidf(tmp_path, capsys, recipe_text)

    code, out, err = zoo(capsys, "validate", run_dir / "recipe.toml")
    assert (code, out) == (0, f"ok {run_dir / 'recipe.toml'}: run 'rd', models: baseline\n"), err
    again = load_recipe(run_dir / "recipe.toml")
    [entry], [before] = again.models, original.models
    for field in attrs.fields(ModelEntry):
        if field.name not in TRAINING_KEYS and field.name != "checkpoint":
            assert getattr(entry, field.name) == getattr(before, field.name), field.name
    assert entry.checkpoint == str(tmp_path / "weights")
    from zoo.plugins import get_plugin_manager
    from zoo.registry import collect_models

    registry = collect_models(get_plugin_manager())
    spec = registry.get("tfidf")
    assert settings_for(again, entry, spec) == settings_for(original, before, spec)


# --- a busy results store never costs a training run ------------------------------------------

TWO_MODELS = RECIPE + '[[models]]\nmodel = "tfidf"\nname = "second"\n'


@pytest.fixture
def impatient(monkeypatch):
    """Wait 0.05 s for the store's lock instead of 30 s, and retry after 0.01 s, 0.02 s."""
    import zoo.store

    monkeypatch.setattr(zoo.store, "BUSY_TIMEOUT_SECONDS", 0.05)
    monkeypatch.setattr(zoo.store, "RETRY_SECONDS", 0.01)


def test_a_store_held_by_another_process_costs_no_run_and_zoo_record_records_them_later(
    tmp_path, capsys, impatient
):
    import sqlite3
    from contextlib import closing

    (tmp_path / "train.csv").write_text(TRAIN, encoding="utf-8")
    (tmp_path / "test.csv").write_text(TEST, encoding="utf-8")
    (tmp_path / "recipe.toml").write_text(TWO_MODELS, encoding="utf-8")
    store_path = tmp_path / "runs" / "zoo-results.sqlite"
    ResultsStore.in_dir(tmp_path / "runs")  # the store exists; another process holds it
    with closing(sqlite3.connect(store_path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        code, out, err = zoo(capsys, "run", tmp_path / "recipe.toml", "--json")
        other.execute("ROLLBACK")

    assert code == 0, err
    runs = json.loads(out)["runs"]
    assert [(r["model"], r["status"]) for r in runs] == [("tfidf", "ok"), ("second", "ok")]
    dirs = [Path(r["run_dir"]) for r in runs]
    for run in runs:
        assert (
            f"warning: the ok run of {run['model']!r} (seed 42) was not recorded: the results "
            f"store {store_path} is busy: another process held it for 0.2 s (3 tries)\n"
            "  hint: its run directory holds all that the record needs; record it later with: "
            f"zoo record {run['run_dir']}\n"
        ) in err
    assert (
        f"warning: 2 runs were not recorded in the results store; record them with: "
        f"zoo record {dirs[0]} {dirs[1]}\n"
    ) in err
    assert ResultsStore(store_path).runs() == []

    from zoo.rundir import read_run, store_record

    code, out, err = zoo(capsys, "record", *dirs)
    assert (code, err) == (0, "")
    stored = ResultsStore(store_path).runs()
    assert out == "".join(
        f"recorded {d}: {r.model!r} (seed 42, ok) in {store_path} as run #{r.run_id}\n"
        for d, r in zip(dirs, stored, strict=True)
    )
    for run_dir, record in zip(dirs, stored, strict=True):
        assert attrs.evolve(record, run_id=None) == store_record(
            read_run(run_dir, needs=("identity",))
        )
        assert record.metrics == json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        assert record.settings["learning_rate"] == 5e-5

    code, out, _err = zoo(capsys, "record", *dirs)  # again: nothing is added twice
    assert code == 0
    assert out == "".join(
        f"{d}: {r.model!r} (seed 42, ok) is in {store_path} already, as run #{r.run_id}\n"
        for d, r in zip(dirs, stored, strict=True)
    )
    assert ResultsStore(store_path).runs() == stored


def test_a_run_recorded_by_zoo_run_is_not_recorded_again(run_copy, capsys):
    store_path = run_copy.parents[1] / "zoo-results.sqlite"
    [before] = ResultsStore(store_path).runs()
    code, out, _err = zoo(capsys, "record", run_copy)
    assert code == 0
    assert out == (
        f"{run_copy}: 'tfidf' (seed 42, ok) is in {store_path} already, as run #{before.run_id}\n"
    )
    assert ResultsStore(store_path).runs() == [before]


def test_zoo_record_checks_every_directory_before_it_writes(run_copy, tmp_path, capsys):
    store_path = run_copy.parents[1] / "zoo-results.sqlite"
    store_path.unlink()  # a run the store lost
    before = snapshot(tmp_path)
    code, _out, err = zoo(capsys, "record", run_copy, tmp_path / "nowhere")
    assert code == 2
    assert err.startswith(f"error: run directory {tmp_path / 'nowhere'} does not exist\n")
    assert snapshot(tmp_path) == before
    code, _out, _err = zoo(capsys, "record", run_copy)
    assert code == 0
    [record] = ResultsStore(store_path).runs()
    assert (record.model, record.status, record.run_dir) == ("tfidf", "ok", str(run_copy))


def test_a_failed_run_is_recorded_with_its_reason(run_copy, capsys):
    store_path = run_copy.parents[1] / "zoo-results.sqlite"
    store_path.unlink()
    set_status("failed", reason="RuntimeError: boom")(run_copy)
    assert zoo(capsys, "record", run_copy)[0] == 0
    [record] = ResultsStore(store_path).runs()
    assert (record.status, record.reason, record.metrics) == ("failed", "RuntimeError: boom", {})


def test_every_model_entry_key_survives_the_run_directory_recipe(tmp_path):
    """Each key of a [[models]] entry that is not a training setting, set to a value other than
    its default, comes back the same from RUN_DIR/recipe.toml (a new key must be added here).
    Two entries between them set every key: shots is few-shot's alone, head a trained one's."""
    from zoo.recipe import TRAINING_KEYS, ModelEntry, load_recipe
    from zoo.rundir import effective_recipe

    (tmp_path / "train.csv").write_text(TRAIN, encoding="utf-8")
    (tmp_path / "weights").mkdir()
    (tmp_path / "recipe.toml").write_text(
        '[run]\nname = "rd"\n\n[data]\ntrain = "train.csv"\n\n'
        '[[models]]\nmodel = "minilm"\nmethod = "lora"\nname = "mini"\ncheckpoint = "weights"\n'
        "allow_pickle = true\ntrust_remote_code = true\n"
        'lora = { r = 4, alpha = 8, dropout = 0.1, target_modules = ["query"] }\n'
        'head = "label-words"\nprompt = "Q: {text} \\"{labels}\\" A:"\n'
        'label_words = { a = "에이", b = "비" }\n\n'
        '[[models]]\nmodel = "koalpaca-5.8b"\nmethod = "few-shot"\nname = "few"\nshots = 2\n',
        encoding="utf-8",
    )
    recipe = load_recipe(tmp_path / "recipe.toml")
    keys = [f.name for f in attrs.fields(ModelEntry) if f.name not in TRAINING_KEYS]
    defaults = {f.name: f.default for f in attrs.fields(ModelEntry)}
    unset = [k for k in keys if all(getattr(e, k) == defaults[k] for e in recipe.models)]
    assert unset == []  # every key is set here

    from zoo.plugins import get_plugin_manager
    from zoo.recipe import settings_for
    from zoo.registry import collect_models

    registry = collect_models(get_plugin_manager())
    for entry in recipe.models:
        settings = settings_for(recipe, entry, registry.get(entry.model))
        run_dir = tmp_path / "runs" / "rd" / f"{entry.label}-seed42-20261201-101010"
        run_dir.mkdir(parents=True)
        (run_dir / "recipe.toml").write_text(effective_recipe(recipe, entry, settings), "utf-8")
        [again] = load_recipe(run_dir / "recipe.toml").models
        for key in keys:
            expected = getattr(entry, key)
            if key == "checkpoint" and expected is not None:
                expected = str(tmp_path / "weights")
            assert getattr(again, key) == expected, key


def test_resuming_may_change_where_a_run_logs_but_not_what_it_learns():
    from zoo.rundir import resume_problems

    started = {"recipe": {"training": {"epochs": 3, "report_to": ["mlflow"]}}}
    now = {"recipe": {"training": {"epochs": 3}}, "data_files": {}, "labels": []}
    assert resume_problems(started, now) == []
    now["recipe"]["training"]["epochs"] = 4
    assert resume_problems(started, now) == ["training.epochs: 3 when the run started, 4 now"]
