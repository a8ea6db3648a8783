"""[search]: hyperparameter search with Optuna, each trial a run of its own; the best trial is
chosen on the validation split alone, its model kept, and it heads the leaderboard."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sqlite3
from pathlib import Path

import pytest
from tiny_models import write_demo_slice

from zoo.cli import main
from zoo.errors import RecipeError
from zoo.recipe import SearchRange, load_recipe
from zoo.rundir import MODEL, RunDirError, read_run
from zoo.search import best_index, distributions, trial_count
from zoo.store import ResultsStore, RunRecord, StoreError

SEARCH = """\
[run]
name = "search"
output_dir = "runs"

[data]
train = "train.csv"
test = "test.csv"

[[models]]
model = "finbert"
checkpoint = "{checkpoint}"

[training]
max_steps = 20
batch_size = 8
max_length = 64

[search]
{search}
"""

LEARNING_RATES = """\
sampler = "random"
trials = 4
space = { learning_rate = { low = 1e-4, high = 1e-1, log = true } }
"""


def write_search(directory: Path, search: str, checkpoint: str | Path = "/nowhere") -> Path:
    write_demo_slice(directory)
    path = directory / "recipe.toml"
    path.write_text(SEARCH.format(checkpoint=checkpoint, search=search), encoding="utf-8")
    return path


def run_json(capsys, *args: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", *args, "--json"])
    capsys.readouterr()
    assert code == 0
    return json.loads(out.getvalue())


# ---------------------------------------------------------------------------------------------
# The recipe


@pytest.mark.parametrize(
    ("search", "message"),
    [
        (
            'sampler = "grid"\nspace = { learning_rate = { low = 1e-5, high = 1e-4 } }',
            "search.space: a grid needs lists of values (or integer ranges): learning_rate is a "
            "continuous range; give its values as a list",
        ),
        (
            'sampler = "grid"\ntrials = 3\nspace = { max_length = [32, 64] }',
            "search.trials: 3 trials, but the grid has 2 points",
        ),
        (
            "space = { max_length = [32, 64] }",
            "search.trials: the 'tpe' sampler needs a number of trials",
        ),
        (
            "trials = 2\nspace = { lerning_rate = [1e-4, 1e-3] }",
            "search.space: 'lerning_rate' is no [training] key a search can vary (did you mean "
            "'learning_rate'?)",
        ),
        (
            "trials = 2\nspace = { learning_rate = { low = 0.0, high = 1e-3, log = true } }",
            "search.space: learning_rate: a log range needs low above 0, got 0.0",
        ),
        (
            "trials = 2\nspace = { max_length = { low = 32.5, high = 64 } }",
            "search.space: max_length: low float 32.5: expected an integer, got float 32.5",
        ),
        (
            "trials = 2\nspace = { epochs = [2, 2] }",
            "search.space: epochs: a value is listed twice",
        ),
        ('trials = 2\nspace = { metric = ["accuracy"] }', "search.space: 'metric' is no"),
        ("trials = 0\nspace = { epochs = [1, 2] }", "search.trials: must be at least 1, got 0"),
    ],
)
def test_a_search_that_cannot_run_is_refused_with_its_reason(tmp_path, search, message):
    path = write_search(tmp_path, search)
    with pytest.raises(RecipeError) as raised:
        load_recipe(path)
    assert any(str(p).startswith(message) for p in raised.value.problems), raised.value.problems


def test_a_search_with_cross_validation_is_refused(tmp_path):
    path = write_search(tmp_path, "trials = 2\nspace = { epochs = [1, 2] }")
    text = path.read_text(encoding="utf-8").replace(
        'test = "test.csv"', 'test = "test.csv"\nvalidation = { folds = 3 }'
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecipeError, match="cross-validation"):
        load_recipe(path)


def test_ranges_become_optuna_distributions_of_their_kind(tmp_path, tiny_bert):
    path = write_search(
        tmp_path,
        'sampler = "grid"\nspace = { max_length = { low = 32, high = 96, step = 32 }, '
        'lr_scheduler = ["linear", "cosine"] }',
        tiny_bert,
    )
    search = load_recipe(path).search
    assert search.space["max_length"] == SearchRange(low=32, high=96, step=32)
    assert trial_count(search) == 3 * 2
    found = distributions(search)
    assert (found["max_length"].low, found["max_length"].high, found["max_length"].step) == (
        32,
        96,
        32,
    )
    assert list(found["lr_scheduler"].choices) == ["linear", "cosine"]
    float_search = load_recipe(write_search(tmp_path, LEARNING_RATES, tiny_bert)).search
    rate = distributions(float_search)["learning_rate"]
    assert (rate.low, rate.high, rate.log) == (1e-4, 1e-1, True)


def test_the_best_trial_is_the_first_of_the_best_scores():
    assert best_index([0.5, 0.7, 0.7, None], maximize=True) == 1
    assert best_index([0.5, 0.7, 0.3, None], maximize=False) == 2
    assert best_index([None, None], maximize=True) is None


# ---------------------------------------------------------------------------------------------
# The store and run directories


def test_an_older_store_gains_the_trial_columns_and_keeps_its_runs(tmp_path):
    path = tmp_path / "zoo-results.sqlite"
    old = RunRecord(
        recipe_name="r",
        recipe_hash="h",
        data_fingerprint="d",
        model="m",
        method="full",
        seed=1,
        status="ok",
    )
    store = ResultsStore(path)
    first = store.record(old)
    with sqlite3.connect(path) as conn:  # as zoo's schema 2 left it
        for column in ("trial", "params", "best"):
            conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        conn.execute("PRAGMA user_version = 2")
    assert ResultsStore.read_only(path).runs()[0].trial is None  # read as it is
    store = ResultsStore(path)  # a writer migrates
    second = store.record(old.__class__(**{**_fields(old), "trial": 2, "params": {"x": 1.5}}))
    store.mark_best(second, [first])
    found = {r.run_id: r for r in store.runs()}
    assert (found[first].trial, found[first].params, found[first].best) == (None, None, False)
    assert (found[second].trial, found[second].params, found[second].best) == (2, {"x": 1.5}, True)


def _fields(record: RunRecord) -> dict:
    import attrs

    return {k: v for k, v in attrs.asdict(record).items() if k != "run_id"}


def test_a_damaged_best_column_is_refused_with_its_row(tmp_path):
    path = tmp_path / "zoo-results.sqlite"
    store = ResultsStore(path)
    run_id = store.record(
        RunRecord(
            recipe_name="r",
            recipe_hash="h",
            data_fingerprint="d",
            model="m",
            method="full",
            seed=1,
            status="ok",
            trial=1,
            params={},
        )
    )
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET best = 'yes' WHERE run_id = ?", (run_id,))
    with pytest.raises(StoreError, match=f"run #{run_id} .* its best column is 'yes'"):
        store.runs()


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("trial", 0, "trial is a number, not a positive integer"),
        ("trial", "2", "trial is a string, not a positive integer"),
        ("params", [1], "params is a list, not an object"),
        ("best", 1, "best is a number, not true or false"),
    ],
)
def test_a_damaged_trial_in_run_json_is_refused(tmp_path, key, value, problem):
    record = {
        "recipe_name": "r",
        "recipe_hash": "h",
        "data_fingerprint": "d",
        "model": "m",
        "method": "full",
        "seed": 1,
        "status": "failed",
        key: value,
    }
    (tmp_path / "run.json").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(RunDirError, match="run.json") as raised:
        read_run(tmp_path, needs=("identity",))
    assert problem in str(raised.value)


# ---------------------------------------------------------------------------------------------
# Running a search


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tiny_bert):
    directory = tmp_path_factory.mktemp("search")
    path = write_search(directory, LEARNING_RATES, tiny_bert)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", str(path), "--json"]) == 0
    return directory, json.loads(out.getvalue())["runs"]


@pytest.mark.slow
def test_each_trial_is_a_run_with_its_values_and_the_best_is_chosen_on_validation(searched):
    directory, runs = searched
    assert [r["trial"] for r in runs] == [1, 2, 3, 4]
    rates = [r["params"]["learning_rate"] for r in runs]
    assert all(1e-4 <= rate <= 1e-1 for rate in rates) and len(set(rates)) == 4
    validation = [r["metrics"]["validation"]["f1_macro"] for r in runs]
    chosen = validation.index(max(validation))  # the first of the best, never the test's
    assert [r["best"] for r in runs] == [i == chosen for i in range(4)]
    for run, rate in zip(runs, rates, strict=True):
        record = read_run(run["run_dir"], needs=("identity", "recipe")).record
        assert (record["trial"], record["params"], record["best"]) == (
            run["trial"],
            run["params"],
            run["best"],
        )
        # The run trained with its trial's value, and its recipe trains just that.
        assert math.isclose(record["settings"]["learning_rate"], rate)
        recipe = read_run(run["run_dir"], needs=("recipe",)).recipe
        assert "search" not in recipe
        assert math.isclose(recipe["training"]["learning_rate"], rate)
        # Only the best trial keeps its model (search.keep_models = "best").
        assert (Path(run["run_dir"]) / MODEL).is_dir() == run["best"]
        assert ("model_removed" in record) != run["best"]
    store = ResultsStore.read_only(directory / "runs" / "zoo-results.sqlite").runs()
    assert [(r.trial, r.best) for r in store] == [(r["trial"], r["best"]) for r in runs]


@pytest.mark.slow
def test_the_leaderboard_heads_with_the_chosen_trial_and_by_trial_shows_them_all(searched, capsys):
    directory, runs = searched
    best = next(r for r in runs if r["best"])
    assert main(["compare", "--output-dir", str(directory / "runs"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["leaderboard"]
    assert [(row["trial"], row["best"]) for row in rows] == [(best["trial"], True)]
    test = best["metrics"]["test"]["f1_macro"]
    assert rows[0]["f1_macro"]["mean"] == pytest.approx(test)
    assert main(["compare", "--output-dir", str(directory / "runs"), "--by", "trial"]) == 0
    shown = capsys.readouterr().out.split("Per-class F1")[0]  # the leaderboard table
    lines = [line for line in shown.splitlines() if "finbert (trial" in line]
    assert [line.split("(trial ")[1].split(",")[0].split(")")[0] for line in lines] == [
        "1",
        "2",
        "3",
        "4",
    ]
    assert f"trial {best['trial']}, best" in shown


@pytest.mark.slow
def test_the_same_seed_tries_the_same_values_and_a_grid_tries_each_point(
    searched, tmp_path, tiny_bert, capsys
):
    _directory, runs = searched
    again = run_json(capsys, str(write_search(tmp_path, LEARNING_RATES, tiny_bert)))["runs"]
    assert [r["params"] for r in again] == [r["params"] for r in runs]
    grid = tmp_path / "grid"
    grid.mkdir()
    search = (
        'sampler = "grid"\nstorage = "journal"\nkeep_models = "all"\n'
        "space = { max_length = [32, 64] }"
    )
    found = run_json(capsys, str(write_search(grid, search, tiny_bert)))["runs"]
    assert sorted(r["params"]["max_length"] for r in found) == [32, 64]
    assert all((Path(r["run_dir"]) / MODEL).is_dir() for r in found)  # keep_models = "all"
    assert (grid / "runs" / "search" / "search.journal").is_file()


PRUNED = """\
sampler = "grid"
pruner = "median"
space = { learning_rate = [5e-3, 3e-3, 1e-9] }
"""


@pytest.mark.slow
def test_the_median_pruner_stops_a_poor_trial_which_is_never_chosen(tmp_path, tiny_bert, capsys):
    path = write_search(tmp_path, PRUNED, tiny_bert)
    text = path.read_text(encoding="utf-8").replace(
        "max_steps = 20", "max_steps = 30\neval_every = 10\nearly_stopping_patience = 0"
    )
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", str(path), "--json"]) == 0
    err = capsys.readouterr().err
    runs = json.loads(out.getvalue())["runs"]
    # A learning rate of 1e-9 learns nothing: below the two earlier trials at its first
    # evaluation, it is stopped there (after 10 of 30 steps) and not chosen.
    poor = runs[2]
    assert poor["params"] == {"learning_rate": 1e-9} and poor["best"] is False
    record = read_run(poor["run_dir"]).record
    assert record["pruned_at_step"] == 10
    history = json.loads((Path(poor["run_dir"]) / "log_history.json").read_text())
    assert "finbert: trial 3 pruned at step 10" in err
    assert max(e.get("step", 0) for e in history) < 30
    assert [r["best"] for r in runs].count(True) == 1
    assert "pruned_at_step" not in read_run(runs[0]["run_dir"]).record


def test_pruning_is_refused_through_an_executor(tmp_path, tiny_bert, capsys):
    path = write_search(tmp_path, PRUNED, tiny_bert)
    assert main(["run", str(path), "--jobs", "2"]) == 2
    err = capsys.readouterr().err
    assert "search.pruner = 'median' prunes trials in this process only" in err
    assert not (tmp_path / "runs").exists()  # refused before anything trained
