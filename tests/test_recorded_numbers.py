"""What a run writes and records, recomputed from its own files with scikit-learn.

One recipe trains the TF-IDF baseline on the demo data with two seeds (a second each). Its
predictions are imperfect and the classes unbalanced, so accuracy, macro-F1 and weighted F1
differ: a score computed the wrong way, a label column shifted against its rows, a confusion
matrix transposed or a seed recorded wrongly each changes a number that these tests recompute.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import shutil
import statistics
from pathlib import Path

import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from tiny_models import DEMO_DATA, read_rows

import zoo.cli
from zoo.leaderboard import leaderboard
from zoo.store import ResultsStore

SEEDS = (3, 5)


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """No third-party plugins, no terminal width from the caller."""
    monkeypatch.setenv("ZOO_PLUGINS", "")
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The demo recipe's data, the TF-IDF baseline, `run.seeds = [3, 5]`: the recipe's folder
    and `zoo run --json`'s runs."""
    directory = tmp_path_factory.mktemp("seeded")
    for name in ("train.csv", "test.csv"):
        shutil.copy(DEMO_DATA / name, directory / name)
    (directory / "recipe.toml").write_text(
        f"""
[run]
name = "numbers"
seeds = {list(SEEDS)}
output_dir = "runs"

[data]
train = "train.csv"
test = "test.csv"

[[models]]
model = "tfidf"
""",
        encoding="utf-8",
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert zoo.cli.main(["run", str(directory / "recipe.toml"), "--json"]) == 0
    return directory, json.loads(out.getvalue())["runs"]


def run_dirs(seeded) -> list[Path]:
    _, runs = seeded
    return [Path(run["run_dir"]) for run in runs]


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def labels_of(run_dir: Path) -> list[str]:
    id2label = read_json(run_dir / "labels.json")["id2label"]
    return [id2label[str(i)] for i in range(len(id2label))]


def test_the_data_makes_the_three_scores_differ(seeded):
    """Without that, a score computed as another would pass every test below."""
    for run_dir in run_dirs(seeded):
        test = read_json(run_dir / "metrics.json")["test"]
        scores = (test["accuracy"], test["f1_macro"], test["f1_weighted"])
        assert min(abs(a - b) for a, b in itertools.combinations(scores, 2)) > 0.01
        assert 0.3 < test["accuracy"] < 1.0  # some predictions right, some wrong


def test_the_test_scores_are_scikit_learns_on_predictions_csv(seeded):
    for run_dir in run_dirs(seeded):
        predictions = read_rows(run_dir / "predictions.csv")
        gold = [p["label"] for p in predictions]
        predicted = [p["predicted"] for p in predictions]
        labels = labels_of(run_dir)
        test = read_json(run_dir / "metrics.json")["test"]
        assert test["accuracy"] == pytest.approx(accuracy_score(gold, predicted))
        assert test["f1_macro"] == pytest.approx(f1_score(gold, predicted, average="macro"))
        assert test["f1_weighted"] == pytest.approx(f1_score(gold, predicted, average="weighted"))
        assert test["confusion_matrix"] == {
            "labels": labels,
            # rows: true label, columns: predicted label, both in label order
            "matrix": confusion_matrix(gold, predicted, labels=labels).tolist(),
        }
        precision, recall, f1, support = precision_recall_fscore_support(
            gold, predicted, labels=labels, zero_division=0
        )
        assert list(test["per_class"]) == labels
        for i, label in enumerate(labels):
            assert test["per_class"][label] == {
                "precision": pytest.approx(precision[i]),
                "recall": pytest.approx(recall[i]),
                "f1": pytest.approx(f1[i]),
                "support": int(support[i]),
            }, label


def test_each_prediction_sits_beside_its_own_test_row(seeded):
    directory, _ = seeded
    test_rows = read_rows(directory / "test.csv")
    for run_dir in run_dirs(seeded):
        predictions = read_rows(run_dir / "predictions.csv")
        assert len(predictions) == len(test_rows)
        for p in predictions:
            source = test_rows[int(p["row"])]
            assert (p["text"], p["label"]) == (source["text"], source["label"])


def test_the_labels_are_those_of_the_training_file_in_label_order(seeded):
    directory, _ = seeded
    names = sorted({row["label"] for row in read_rows(directory / "train.csv")})
    for run_dir in run_dirs(seeded):
        assert labels_of(run_dir) == names


def test_each_seed_has_its_own_run_directory_and_run_json(seeded):
    _, runs = seeded
    assert [run["seed"] for run in runs] == list(SEEDS)
    for seed, run_dir in zip(SEEDS, run_dirs(seeded), strict=True):
        assert run_dir.name.startswith(f"tfidf-seed{seed}-")
        assert read_json(run_dir / "run.json")["seed"] == seed
    # Different seeds hold out different validation rows: the runs are not copies.
    validations = [read_json(d / "metrics.json")["validation"] for d in run_dirs(seeded)]
    assert validations[0] != validations[1]


def test_the_store_records_each_seed_with_the_scores_of_its_run_directory(seeded):
    directory, _ = seeded
    records = ResultsStore.in_dir(directory / "runs").runs()
    assert [(r.model, r.seed, r.status) for r in records] == [("tfidf", s, "ok") for s in SEEDS]
    for record, run_dir in zip(records, run_dirs(seeded), strict=True):
        assert Path(record.run_dir) == run_dir
        metrics = read_json(run_dir / "metrics.json")
        assert record.metrics["test"] == metrics["test"]
        assert record.metrics["validation"] == metrics["validation"]


def test_the_leaderboard_row_counts_two_runs_over_seeds_3_and_5(seeded):
    directory, _ = seeded
    (row,) = leaderboard(ResultsStore.in_dir(directory / "runs").runs())
    assert (row.model, row.runs, row.seeds) == ("tfidf", 2, SEEDS)
    macro = [read_json(d / "metrics.json")["test"]["f1_macro"] for d in run_dirs(seeded)]
    assert row.f1_macro == pytest.approx((statistics.fmean(macro), statistics.stdev(macro)))


def test_zoo_compare_json_says_two_runs_and_both_seeds(seeded, capsys):
    directory, _ = seeded
    assert zoo.cli.main(["compare", "--output-dir", str(directory / "runs"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["leaderboard"]
    assert (row["model"], row["runs"], row["seeds"]) == ("tfidf", 2, list(SEEDS))
    accuracy = [read_json(d / "metrics.json")["test"]["accuracy"] for d in run_dirs(seeded)]
    # Two seeds: the interval is the seeds-and-rows bootstrap of the mean (from predictions.csv).
    low, high = row["accuracy"].pop("ci95")
    assert low < statistics.fmean(accuracy) < high
    assert row["accuracy"] == {
        "mean": pytest.approx(statistics.fmean(accuracy)),
        "std": pytest.approx(statistics.stdev(accuracy)),
    }


def test_zoo_compare_each_lists_one_row_per_seed(seeded, capsys):
    directory, _ = seeded
    args = ["compare", "--output-dir", str(directory / "runs"), "--each", "--json"]
    assert zoo.cli.main(args) == 0
    rows = json.loads(capsys.readouterr().out)["leaderboard"]
    assert sorted((r["seeds"], r["runs"]) for r in rows) == [([3], 1), ([5], 1)]


def test_zoo_compare_prints_the_number_of_runs(seeded, capsys):
    directory, _ = seeded
    assert zoo.cli.main(["compare", "--output-dir", str(directory / "runs")]) == 0
    out = capsys.readouterr().out
    assert "Leaderboard: 2 runs" in out
    # The leaderboard's row (the per-class table below has one too): model, method, runs, ...
    line = next(line for line in out.splitlines() if line.startswith("│ tfidf"))
    assert [cell.strip() for cell in line.split("│")[1:4]] == ["tfidf", "full", "2"]


def test_every_test_score_has_its_interval_in_metrics_json_the_json_and_the_store(seeded):
    from zoo.metrics import BUILTIN_METRICS
    from zoo.rundir import read_run
    from zoo.uncertainty import intervals

    directory, runs = seeded
    stored = ResultsStore.read_only(directory / "runs" / "zoo-results.sqlite").runs()
    found = []
    for run, run_dir, record in zip(runs, run_dirs(seeded), stored, strict=True):
        test = read_json(run_dir / "metrics.json")["test"]
        assert sorted(test["ci95"]) == ["accuracy", "f1_macro", "f1_weighted"]
        for name, (low, high) in test["ci95"].items():
            assert low <= test[name] <= high
        assert run["metrics"]["test"]["ci95"] == test["ci95"]  # zoo run --json
        assert record.metrics["test"]["ci95"] == test["ci95"]  # the results store
        # The same run gives the same interval: drawn again from predictions.csv and its seed.
        labels = labels_of(run_dir)
        predictions = read_run(run_dir, needs=("predictions",)).predictions
        again = intervals(
            [labels.index(name) for name in predictions.labels],
            [labels.index(name) for name in predictions.predicted],
            None,
            labels,
            BUILTIN_METRICS,
            seed=run["seed"],
        )
        assert again == test["ci95"]
        found.append(test["ci95"])
    assert found[0] != found[1]  # seeds 3 and 5: other draws (and other models)
