"""k-fold cross-validation: `data.validation = { folds = K }` makes K runs per model and seed,
each validating on one stratified fold and trained on the others, and an ensemble row of the
fold models' mean probabilities on the test split."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from tiny_models import labelled_csv

from zoo.cli import main
from zoo.data import load_units
from zoo.errors import DataError, RecipeError
from zoo.recipe import DataSection, Folds, load_recipe
from zoo.rundir import read_run
from zoo.store import ResultsStore


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return path.name


def unbalanced_train(tmp_path: Path) -> str:
    """53 rows: 30 'a', 15 'b', 8 'c' (the smallest class not a multiple of the folds)."""
    rows = [f"text {i},{label}" for i, label in enumerate("a" * 30 + "b" * 15 + "c" * 8)]
    return write(tmp_path / "train.csv", "text,label\n" + "\n".join(rows) + "\n")


# --- the recipe ----------------------------------------------------------------------------------


def recipe_with(tmp_path: Path, validation: str) -> Path:
    (tmp_path / "train.csv").write_text(labelled_csv(30, 1), encoding="utf-8")
    path = tmp_path / "recipe.toml"
    path.write_text(
        f'[run]\nname = "cv"\n[data]\ntrain = "train.csv"\nvalidation = {validation}\n'
        '[[models]]\nmodel = "tfidf"\n',
        encoding="utf-8",
    )
    return path


def test_folds_are_a_table_in_data_validation(tmp_path):
    recipe = load_recipe(recipe_with(tmp_path, "{ folds = 5 }"))
    assert recipe.data.validation == Folds(folds=5)
    assert recipe.data.validation.numbers == (1, 2, 3, 4, 5)
    assert Folds(folds=5, fold=3).numbers == (3,)


@pytest.mark.parametrize(
    ("validation", "problem"),
    [
        ("{ folds = 1 }", "data.validation: folds must be 2 or more, got 1"),
        ("{ folds = 3, fold = 4 }", "data.validation: fold must be 1 to 3, got 4"),
        ("{ folds = 3.5 }", "data.validation.folds: expected an integer, got float 3.5"),
        ("{ fold = 2 }", "data.validation.folds: required key is missing: how many folds"),
        ("{ folds = 3, fodl = 1 }", "data.validation.fodl: unknown key (did you mean 'fold'?)"),
    ],
)
def test_a_wrong_folds_table_names_the_key(tmp_path, validation, problem):
    with pytest.raises(RecipeError) as raised:
        load_recipe(recipe_with(tmp_path, validation))
    assert problem in str(raised.value)


# --- the splits ----------------------------------------------------------------------------------


def test_folds_are_disjoint_stratified_and_cover_the_training_file(tmp_path):
    data = DataSection(train=unbalanced_train(tmp_path), validation=Folds(folds=5))
    units = load_units(data, tmp_path, (1, 2))
    assert list(units) == [(seed, fold) for seed in (1, 2) for fold in range(1, 6)]
    for seed in (1, 2):
        folds = [units[seed, fold] for fold in range(1, 6)]
        held_out = [set(s.validation.rows) for s in folds]
        assert sum(len(rows) for rows in held_out) == 53
        assert set().union(*held_out) == set(range(53))  # every row is in one fold
        for splits, rows in zip(folds, held_out, strict=True):
            assert set(splits.train.rows).isdisjoint(rows)
            assert set(splits.train.rows) | rows == set(range(53))
            # each class's share, to a row: 30/5, 15/5 and 8/5 rows of a, b and c
            counts = Counter(splits.validation.labels)
            assert counts["a"] == 6 and counts["b"] == 3 and counts["c"] in (1, 2)
            assert (splits.fold, splits.folds) == (folds.index(splits) + 1, 5)
    # another seed, other folds
    assert units[1, 1].validation.rows != units[2, 1].validation.rows


def test_one_fold_alone_is_that_fold_of_all_of_them(tmp_path):
    train = unbalanced_train(tmp_path)
    every = load_units(DataSection(train=train, validation=Folds(folds=4)), tmp_path, (7,))
    one = load_units(DataSection(train=train, validation=Folds(folds=4, fold=3)), tmp_path, (7,))
    assert list(one) == [(7, 3)]
    assert one[7, 3].validation == every[7, 3].validation
    assert one[7, 3].train == every[7, 3].train


def test_a_label_with_fewer_rows_than_folds_is_refused(tmp_path):
    data = DataSection(train=unbalanced_train(tmp_path), validation=Folds(folds=10))
    with pytest.raises(DataError) as raised:
        load_units(data, tmp_path, (1,))
    assert str(raised.value) == (
        "data.validation = { folds = 10 }: label 'c' has 8 rows in data.train, fewer than the "
        "10 folds, so some folds would have none of it to validate on\n"
        "  hint: use at most 8 folds, or add rows of that label"
    )


# --- running them ---------------------------------------------------------------------------------


@pytest.fixture
def cv_recipe(tmp_path) -> Path:
    (tmp_path / "train.csv").write_text(labelled_csv(45, 1), encoding="utf-8")
    (tmp_path / "test.csv").write_text(labelled_csv(30, 2), encoding="utf-8")
    path = tmp_path / "recipe.toml"
    path.write_text(
        '[run]\nname = "cv"\nseed = 3\n[data]\ntrain = "train.csv"\ntest = "test.csv"\n'
        'validation = { folds = 3 }\n[[models]]\nmodel = "tfidf"\n',
        encoding="utf-8",
    )
    return path


def predicted_labels(run_dir: Path) -> list[str]:
    with (run_dir / "predictions.csv").open(encoding="utf-8", newline="") as f:
        return [row["predicted"] for row in csv.DictReader(f)]


def test_each_fold_is_a_run_and_their_ensemble_one_more(cv_recipe, capsys):
    from zoo.plugins import get_plugin_manager
    from zoo.registry import collect_models
    from zoo.report import NoProgress
    from zoo.runner import run_recipe

    registry = collect_models(get_plugin_manager())
    recipe = load_recipe(cv_recipe)
    runs = run_recipe(recipe, registry, lambda _: NoProgress(), lambda *_: None)

    assert [(r.model, r.fold, r.folds, r.status) for r in runs] == [
        ("tfidf", 1, 3, "ok"),
        ("tfidf", 2, 3, "ok"),
        ("tfidf", 3, 3, "ok"),
        ("tfidf", None, 3, "ok"),
    ]
    folds, ensemble = runs[:3], runs[3]
    assert [r.run_dir.name.rsplit("-", 2)[0] for r in runs] == [
        "tfidf-seed3-fold1",
        "tfidf-seed3-fold2",
        "tfidf-seed3-fold3",
        "tfidf-seed3-ensemble",
    ]
    # Every fold validated on other rows: a third of the training file each.
    validated = [read_run(r.run_dir, needs=("finished",)).record["rows"] for r in folds]
    assert [v["validation"] for v in validated] == [15, 15, 15]
    assert [v["train"] for v in validated] == [30, 30, 30]

    # The ensemble is the argmax of the fold models' mean probability, scored on the test rows.
    labels = read_run(folds[0].run_dir, needs=("labels",)).labels
    mean = np.mean([r.test_probabilities for r in folds], axis=0)
    expected = [labels[i] for i in mean.argmax(axis=1)]
    assert predicted_labels(ensemble.run_dir) == expected
    with (cv_recipe.parent / "test.csv").open(encoding="utf-8", newline="") as f:
        gold = [row["label"] for row in csv.DictReader(f)]
    accuracy = np.mean([p == g for p, g in zip(expected, gold, strict=True)])
    assert ensemble.metrics["test"]["accuracy"] == pytest.approx(accuracy)
    assert "ci95" in ensemble.metrics["test"]

    record = read_run(ensemble.run_dir, needs=("identity",)).record
    assert record["ensemble_of"] == [str(r.run_dir) for r in folds]
    assert (record["fold"], record["folds"]) == (None, 3)
    assert record["train_seconds"] == pytest.approx(sum(r.train_seconds for r in folds), abs=0.02)

    stored = ResultsStore.in_dir(cv_recipe.parent / "runs").runs()
    assert [(r.fold, r.folds, r.ensemble) for r in stored] == [
        (1, 3, False),
        (2, 3, False),
        (3, 3, False),
        (None, 3, True),
    ]


def test_compare_averages_the_folds_and_shows_the_ensemble_apart(cv_recipe, capsys):
    assert main(["run", str(cv_recipe)]) == 0
    out = capsys.readouterr().out
    assert "tfidf (fold 2)" in out and "tfidf (3-fold ensemble)" in out
    assert "Over all runs" in out  # three runs of one model: the leaderboard of them follows

    assert main(["compare", str(cv_recipe), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["leaderboard"]
    by_kind = {row["ensemble"]: row for row in rows}
    folds, ensemble = by_kind[False], by_kind[True]
    assert (folds["runs"], folds["folds"], folds["seeds"]) == (3, 3, [3])
    assert (ensemble["runs"], ensemble["folds"]) == (1, 3)
    fold_scores = [
        read_run(d, needs=("metrics",)).metrics["test"]["f1_macro"]
        for d in sorted((cv_recipe.parent / "runs" / "cv").glob("tfidf-seed3-fold*"))
    ]
    assert folds["f1_macro"]["mean"] == pytest.approx(np.mean(fold_scores))
    assert folds["f1_macro"]["ci95"] is not None  # folds and rows resampled, as for seeds

    assert main(["compare", str(cv_recipe)]) == 0
    table = capsys.readouterr().out
    assert "mean over folds" in table
    assert "tfidf (3-fold)" in table and "tfidf (3-fold ensemble)" in table

    page = cv_recipe.parent / "page.html"
    assert main(["compare", str(cv_recipe), "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "tfidf (3-fold ensemble)" in html and "tfidf (3-fold)" in html
    assert "Left out of the confusion matrices" not in html


def test_a_fold_run_directory_trains_that_fold_again(cv_recipe, capsys):
    assert main(["run", str(cv_recipe), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["runs"]
    fold_two = Path(first[1]["run_dir"])
    again = fold_two / "recipe.toml"
    assert "fold = 2" in again.read_text(encoding="utf-8")

    assert main(["run", str(again), "--json"]) == 0
    [rerun] = json.loads(capsys.readouterr().out)["runs"]  # that fold alone, no ensemble
    assert (rerun["fold"], rerun["folds"]) == (2, 3)
    assert predicted_labels(Path(rerun["run_dir"])) == predicted_labels(fold_two)


def test_an_ensemble_is_shown_but_has_no_model_to_predict_with(cv_recipe, tmp_path, capsys):
    assert main(["run", str(cv_recipe), "--json"]) == 0
    ensemble = Path(json.loads(capsys.readouterr().out)["runs"][-1]["run_dir"])
    assert {p.name for p in ensemble.iterdir()} == {
        "recipe.toml",
        "labels.json",
        "metrics.json",
        "log_history.json",
        "predictions.csv",
        "run.json",
    }  # no model/: as the README's run-directory section says
    assert main(["show", str(ensemble)]) == 0
    assert "test" in capsys.readouterr().out

    texts = tmp_path / "new.csv"
    texts.write_text("text\nnginx restart disk\n", encoding="utf-8")
    code = main(["predict", str(ensemble), "--input", str(texts), "--output", "out.csv"])
    assert code == 2
    err = capsys.readouterr().err
    assert "holds the ensemble of 3 fold models, not a model of its own" in err
    assert "Traceback" not in err


def test_folds_times_seeds_are_runs_of_their_own_and_one_ensemble_per_seed(cv_recipe, capsys):
    assert main(["run", str(cv_recipe), "--set", "run.seeds=[1, 2]", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["seed"], r["fold"]) for r in runs] == [
        (1, 1), (1, 2), (1, 3), (1, None), (2, 1), (2, 2), (2, 3), (2, None)
    ]  # fmt: skip
    assert main(["compare", str(cv_recipe), "--json"]) == 0
    rows = {r["ensemble"]: r for r in json.loads(capsys.readouterr().out)["leaderboard"]}
    assert (rows[False]["runs"], rows[False]["seeds"]) == (6, [1, 2])
    assert (rows[True]["runs"], rows[True]["seeds"]) == (2, [1, 2])
    assert main(["compare", str(cv_recipe)]) == 0
    assert "mean over seeds and folds" in capsys.readouterr().out


def test_an_ensemble_without_its_test_scores_is_damaged(cv_recipe, capsys):
    assert main(["run", str(cv_recipe), "--json"]) == 0
    ensemble = Path(json.loads(capsys.readouterr().out)["runs"][-1]["run_dir"])
    (ensemble / "metrics.json").write_text('{"validation": null, "test": null}', encoding="utf-8")
    assert main(["show", str(ensemble)]) == 2
    assert (
        f"error: {ensemble}/metrics.json is damaged: the test scores of the ensemble are missing"
        in capsys.readouterr().err
    )


def test_without_a_test_file_there_is_no_ensemble(cv_recipe, capsys):
    text = cv_recipe.read_text(encoding="utf-8").replace('test = "test.csv"\n', "")
    cv_recipe.write_text(text, encoding="utf-8")
    assert main(["run", str(cv_recipe), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["fold"] for r in runs] == [1, 2, 3]
