"""`zoo compare` on a results store: like is compared with like, every run can be listed."""

from __future__ import annotations

import json

import attrs
import pytest

from zoo.cli import main
from zoo.store import ResultsStore, RunRecord


def scores(f1: float) -> dict:
    return {"test": {"accuracy": f1 + 0.05, "f1_macro": f1, "f1_weighted": f1, "per_class": {}}}


def record(model: str, seed: int, f1: float | None, *, data: str = "a" * 64, status="ok"):
    return RunRecord(
        recipe_name="demo",
        recipe_hash="r" * 64,
        data_fingerprint=data,
        model=model,
        method="full",
        seed=seed,
        status=status,
        reason=None if status == "ok" else "CUDA out of memory",
        metrics=scores(f1) if f1 is not None else {},
        train_seconds=10.0,
    )


@pytest.fixture
def store_dir(tmp_path):
    store = ResultsStore.in_dir(tmp_path)
    for seed, (e5, minilm) in zip((1, 2), ((0.70, 0.74), (0.72, 0.76)), strict=True):
        store.record(record("e5-small", seed, e5))
        store.record(record("minilm", seed, minilm))
        store.record(record("tfidf", seed, 0.60))
    store.record(record("xlmr", 1, None, status="failed"))
    store.record(record("other-data-model", 1, 0.99, data="b" * 64))
    store.record(record("minilm", 3, 0.78))  # the latest run: its data is compared
    return tmp_path


def compare(capsys, *args):
    assert main(["compare", *args]) == 0
    return capsys.readouterr().out


def test_runs_are_grouped_by_model_with_mean_and_spread_over_seeds(store_dir, capsys):
    rows = json.loads(compare(capsys, "--output-dir", str(store_dir), "--json"))["leaderboard"]
    assert [(r["model"], r["runs"]) for r in rows] == [
        ("minilm", 3),
        ("e5-small", 2),
        ("tfidf", 2),
        ("xlmr", 0),
    ]
    minilm = rows[0]
    assert minilm["f1_macro"]["mean"] == pytest.approx(0.76)
    assert minilm["f1_macro"]["std"] == pytest.approx(0.02)
    assert rows[-1]["status"] == "failed"


def test_only_runs_on_the_same_data_are_compared_unless_asked(store_dir, capsys):
    default = compare(capsys, "--output-dir", str(store_dir), "--json")
    assert "other-data-model" not in default
    everything = compare(capsys, "--output-dir", str(store_dir), "--json", "--all-data")
    assert "other-data-model" in everything
    chosen = json.loads(compare(capsys, "--output-dir", str(store_dir), "--json", "--data", "bbb"))
    assert [r["model"] for r in chosen["leaderboard"]] == ["other-data-model"]


@pytest.mark.parametrize(
    ("prefix", "problem", "hint"),
    [
        (
            "",
            "--data : 2 recorded data fingerprints begin with it (aaaaaaaaaaaa, bbbbbbbbbbbb); "
            "runs on different data are never compared",
            "give more of the fingerprint",
        ),
        (
            "c",
            "--data c: no recorded run is on data with this fingerprint",
            "the recorded fingerprints begin aaaaaaaaaaaa, bbbbbbbbbbbb",
        ),
    ],
)
def test_a_data_prefix_must_name_one_data_set(store_dir, capsys, prefix, problem, hint):
    # A prefix that fits two fingerprints used to mix runs on different data in one table.
    assert main(["compare", "--output-dir", str(store_dir), "--data", prefix]) == 2
    assert capsys.readouterr() == ("", f"error: {problem}\n  hint: {hint}\n")


def test_each_lists_every_run_on_its_own_row(store_dir, capsys):
    out = compare(capsys, "--output-dir", str(store_dir), "--each", "--json")
    models = [r["model"] for r in json.loads(out)["leaderboard"]]
    assert sum(m.startswith("minilm (seed ") for m in models) == 3
    assert sum(m.startswith("e5-small (seed ") for m in models) == 2
    assert sum(m.startswith("tfidf (seed ") for m in models) == 2


def test_the_table_and_csv_name_the_models_best_first(store_dir, capsys):
    table = compare(capsys, "--output-dir", str(store_dir))
    assert table.index("minilm") < table.index("e5-small") < table.index("tfidf")
    assert "Leaderboard: 8 runs, data aaaaaaaaaaaa" in table
    csv_text = compare(capsys, "--output-dir", str(store_dir), "--csv", "--by", "accuracy")
    assert csv_text.splitlines()[1].startswith("minilm,full,ok,3,")


HINT = (
    "  hint: give the recipe you ran (zoo compare RECIPE: its output_dir, which is relative to "
    "the recipe file) or its output directory (zoo compare --output-dir DIR)\n"
)


def test_an_output_dir_without_results_is_a_clear_error(tmp_path, capsys):
    assert main(["compare", "--output-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: no results in {tmp_path}: {tmp_path / 'zoo-results.sqlite'} does not exist\n"
        + HINT
    )
    assert list(tmp_path.iterdir()) == []


# --- which store: a recipe's output_dir, or --output-dir ----------------------------------------


def snapshot(root):
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_a_recipe_names_its_output_dir_relative_to_itself_and_its_runs(
    store_dir, tmp_path, capsys, monkeypatch
):
    """After `zoo run recipes/x.toml` (output_dir relative to the recipe), `zoo compare
    recipes/x.toml` finds the runs from any working directory."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "x.toml").write_text(
        '[run]\nname = "demo"\noutput_dir = ".."\n\n[data]\ntrain = "t.csv"\n'
        '\n[[models]]\nmodel = "tfidf"\n',
        encoding="utf-8",
    )
    (recipes / "t.csv").write_text("text,label\na,b\n", encoding="utf-8")
    other = attrs.evolve(record("other-recipe", 1, 0.99), recipe_name="other")
    ResultsStore.in_dir(store_dir).record(other)  # the latest run, of another recipe
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rows = json.loads(compare(capsys, "../recipes/x.toml", "--json"))["leaderboard"]
    assert [r["model"] for r in rows] == ["minilm", "e5-small", "tfidf", "xlmr"]


def test_a_recipe_and_an_output_dir_together_are_refused(store_dir, write_recipe, capsys):
    path = write_recipe()
    assert main(["compare", str(path), "--output-dir", str(store_dir)]) == 2
    assert capsys.readouterr().err == (
        "error: give a recipe or --output-dir, not both\n"
        "  hint: zoo compare RECIPE  or  zoo compare --output-dir DIR\n"
    )


def test_a_recipe_that_has_not_run_says_to_run_it(write_recipe, tmp_path, capsys):
    path = write_recipe()
    before = snapshot(tmp_path)
    assert main(["compare", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"error: no results in {tmp_path / 'runs'}: {tmp_path / 'runs' / 'zoo-results.sqlite'} "
        "does not exist\n"
        f"  hint: run it first: zoo run {path}\n"
    )
    assert snapshot(tmp_path) == before


def test_an_output_dir_that_does_not_exist_names_both_ways(tmp_path, capsys):
    assert main(["compare", "--output-dir", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == (
        f"error: no results in {tmp_path / 'runs'}: the folder does not exist\n" + HINT
    )
    assert list(tmp_path.iterdir()) == []


def test_the_default_output_dir_is_runs_here(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compare"]) == 2
    assert (
        capsys.readouterr().err == "error: no results in runs: the folder does not exist\n" + HINT
    )


# --- compare only reads --------------------------------------------------------------------------


def test_compare_on_an_empty_store_file_writes_nothing(tmp_path, capsys):
    (tmp_path / "zoo-results.sqlite").touch()
    out = compare(capsys, "--output-dir", str(tmp_path))
    assert "Leaderboard: 0 runs, all data" in out
    assert snapshot(tmp_path) == {"zoo-results.sqlite": b""}
    assert [p.name for p in tmp_path.iterdir()] == ["zoo-results.sqlite"]


def test_compare_leaves_a_store_and_its_folder_as_they_were(store_dir, capsys):
    before = snapshot(store_dir)
    compare(capsys, "--output-dir", str(store_dir))
    compare(capsys, "--output-dir", str(store_dir), "--json", "--all-data")
    assert snapshot(store_dir) == before


def test_a_damaged_row_is_an_error_naming_it(store_dir, capsys):
    import sqlite3
    from contextlib import closing

    path = store_dir / "zoo-results.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE runs SET metrics = '{\"test\": ' WHERE run_id = 3")
        conn.commit()
    assert main(["compare", "--output-dir", str(store_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: run #3 ('tfidf', seed 1, recorded ")
    assert ") is damaged: its metrics column is not valid JSON (Expecting value: " in err
    assert "Traceback" not in err


def test_the_latest_data_of_the_recipe_is_compared(store_dir, capsys):
    """--recipe compares like with like too: the latest run of that recipe picks the data."""
    store = ResultsStore.in_dir(store_dir)
    store.record(attrs.evolve(record("new-data-model", 1, 0.5, data="c" * 64), recipe_name="demo"))
    store.record(attrs.evolve(record("other", 1, 0.5, data="d" * 64), recipe_name="other"))
    rows = json.loads(compare(capsys, "--output-dir", str(store_dir), "--recipe", "demo", "--json"))
    assert [r["model"] for r in rows["leaderboard"]] == ["new-data-model"]
