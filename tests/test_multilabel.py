"""Several labels per text (`data.label_separator`): reading label sets, the multi-label metrics
against scikit-learn, thresholds, training (TF-IDF one-vs-rest, a tiny BERT with sigmoid
outputs), zoo predict's label sets, and the tables, reports and comparisons of such runs.

The task: short inquiries whose keywords (서버, 코드, 화면) name their labels, one or two of them
per text, among words that every label shares.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score
from test_keyword_task import KEYWORDS, SHARED, TRAINING
from tiny_models import read_rows, zoo_predict

import zoo.cli
from zoo.data import read_table
from zoo.engine.jobs import score_split
from zoo.errors import DataError, RecipeError
from zoo.metrics import MULTI_LABEL_METRICS
from zoo.multilabel import decide, multi_hot, tune_thresholds
from zoo.recipe import load_recipe

# --- the numbers ----------------------------------------------------------------------------------


def test_the_multi_label_scores_are_scikit_learns_on_hand_made_rows():
    labels = ("code", "system", "web")
    gold = ("code;web", "system", "code", "web", "code;system")
    probabilities = np.array(
        [
            [0.9, 0.1, 0.7],  # code;web: right
            [0.2, 0.4, 0.1],  # none reaches 0.5: its most probable, system: right
            [0.8, 0.6, 0.2],  # code;system: one too many
            [0.1, 0.2, 0.3],  # web alone is most probable: right
            [0.7, 0.2, 0.6],  # code;web: system missed, web wrong
        ]
    )
    report, predicted, _ = score_split(
        probabilities, gold, labels, MULTI_LABEL_METRICS, separator=";", thresholds=(0.5,) * 3
    )
    truth = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 0]])
    chosen = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1]])
    assert predicted == ((0, 2), (1,), (0, 1), (2,), (0, 2))
    assert report["f1_micro"] == pytest.approx(f1_score(truth, chosen, average="micro"))
    assert report["f1_macro"] == pytest.approx(f1_score(truth, chosen, average="macro"))
    assert report["f1_samples"] == pytest.approx(f1_score(truth, chosen, average="samples"))
    assert report["subset_accuracy"] == pytest.approx(accuracy_score(truth, chosen)) == 0.6
    # By hand: 6 of the 8 chosen labels are right, 6 of the 7 true ones found.
    assert report["f1_micro"] == pytest.approx(2 * 6 / (8 + 7))
    assert report["per_class"]["system"] == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "support": 2,
    }
    assert report["thresholds"] == {"code": 0.5, "system": 0.5, "web": 0.5}
    assert "accuracy" not in report and "confusion_matrix" not in report


def test_the_bootstraps_fast_paths_agree_with_scikit_learn_on_every_resample():
    from zoo.uncertainty import resample_indices, resampled_scores

    rng = np.random.default_rng(3)
    references = (rng.random((40, 4)) < 0.3).astype(int)
    predictions = (rng.random((40, 4)) < 0.3).astype(int)
    probabilities = rng.random((40, 4))
    indices = resample_indices(40, 25, 0)
    labels = ["a", "b", "c", "d"]
    for metric in MULTI_LABEL_METRICS:
        fast = resampled_scores(metric, references, predictions, probabilities, labels, indices)
        slow = [
            metric.compute(references[d], predictions[d], probabilities[d], labels) for d in indices
        ]
        np.testing.assert_allclose(fast, slow, err_msg=metric.name)


def test_a_row_where_no_label_reaches_its_threshold_gets_its_most_probable_one():
    chosen = decide(np.array([[0.2, 0.3], [0.6, 0.1], [0.9, 0.8]]), (0.5, 0.5))
    assert chosen.tolist() == [[0, 1], [1, 0], [1, 1]]


def test_a_tuned_threshold_is_the_one_that_maximises_the_labels_f1():
    probabilities = np.array([[0.9, 0.3], [0.6, 0.2], [0.4, 0.1], [0.35, 0.05]])
    references = np.array([[1, 0], [1, 0], [0, 0], [1, 0]])
    # Label 0: at 0.6 F1 = 0.8 (2 of 3), at 0.35 F1 = 6/7 (all 3, one wrong): 0.35. Label 1 has
    # no positive row: it keeps 0.5.
    assert tune_thresholds(probabilities, references) == (0.35, 0.5)
    # Of equally good thresholds, the highest: 0.9 (1 of 1 right) and 0.3 (2 of 4) both give
    # F1 2/3 here.
    tied = np.array([[0.9], [0.8], [0.7], [0.3]])
    assert tune_thresholds(tied, np.array([[1], [0], [0], [1]])) == (0.9,)


# --- reading --------------------------------------------------------------------------------------


def test_label_cells_are_read_as_sets(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"a, b",web; code\nc,code\nd,"system;web"\n', encoding="utf-8")
    read = read_table(
        path, text_column="text", label_column="label", setting="data.train", label_separator=";"
    )
    # One set, one spelling: the labels in label order, without spaces.
    assert read.rows.labels == ("code;web", "code", "system;web")
    assert multi_hot(read.rows.labels, ("code", "system", "web"), ";").tolist() == [
        [1, 0, 1],
        [1, 0, 0],
        [0, 1, 1],
    ]


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("code;", "line 3 has an empty label between separators ';' in its labels 'code;'"),
        ("code;;web", "line 3 has an empty label between separators ';'"),
        ("web;code;web", "line 3 has the label 'web' twice in its labels 'web;code;web'"),
    ],
)
def test_a_label_cell_that_names_no_set_is_refused_with_its_line(tmp_path, cell, problem):
    path = tmp_path / "train.csv"
    path.write_text(f"text,label\na,code\nb,{cell}\n", encoding="utf-8")
    with pytest.raises(DataError, match=problem):
        read_table(
            path,
            text_column="text",
            label_column="label",
            setting="data.train",
            label_separator=";",
        )


def keyword_rows(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """Texts naming one or two labels by their keywords, in turn: code, system, web, then
    pairs of them."""
    names = sorted(KEYWORDS)
    sets = [[n] for n in names] + [[a, b] for i, a in enumerate(names) for b in names[i + 1 :]]
    rows = []
    for i in range(count):
        chosen = sets[i % len(sets)]
        words = rng.choices(SHARED, k=rng.randint(1, 3)) + [KEYWORDS[n] for n in chosen]
        rng.shuffle(words)
        rows.append((" ".join(words), ";".join(reversed(chosen))))  # as a user might write them
    return rows


@pytest.fixture(scope="module")
def multi_task(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("multi")
    rng = random.Random(0)
    for name, count in (("train", 180), ("test", 60)):
        with (directory / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "text", "labels"])
            for i, (text, labels) in enumerate(keyword_rows(rng, count)):
                writer.writerow([f"r{i}", text, labels])
    return directory


def multi_run(directory: Path, name: str, models: str, extra: str = "") -> list[dict]:
    recipe = directory / f"{name}.toml"
    recipe.write_text(
        f'[run]\nname = "{name}"\nseed = 42\noutput_dir = "runs"\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = 0.2\n'
        f'label_column = "labels"\nlabel_separator = ";"\n{extra}\n{models}\n{TRAINING}',
        encoding="utf-8",
    )
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ZOO_CACHE", str(directory / "cache"))
        env.setenv("ZOO_PLUGINS", "")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert zoo.cli.main(["run", str(recipe), "--json"]) == 0
    runs = json.loads(out.getvalue())["runs"]
    assert all(run["status"] == "ok" for run in runs)
    return runs


# --- training and predict -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tfidf_run(multi_task) -> dict:
    (run,) = multi_run(multi_task, "tfidf", '[[models]]\nmodel = "tfidf"')
    return run


def test_the_tfidf_baseline_learns_label_sets_one_vs_rest(tfidf_run, multi_task, capsys):
    test = tfidf_run["metrics"]["test"]
    assert set(test) >= {"f1_macro", "f1_micro", "f1_samples", "subset_accuracy", "ci95"}
    assert "accuracy" not in test
    assert test["f1_micro"] >= 0.9 and test["subset_accuracy"] >= 0.8
    low, high = test["ci95"]["f1_micro"]
    assert low <= test["f1_micro"] <= high
    run_dir = Path(tfidf_run["run_dir"])
    recorded = read_rows(run_dir / "predictions.csv")
    # The gold sets as predictions.csv writes them: in label order.
    assert recorded[3]["label"] == "code;system"
    hand = accuracy_score(
        [r["label"] for r in recorded], [r["predicted"] for r in recorded]
    )  # subset accuracy: the whole set right
    assert hand == pytest.approx(test["subset_accuracy"])
    labels = json.loads((run_dir / "labels.json").read_text(encoding="utf-8"))
    assert labels["label_separator"] == ";" and len(labels["thresholds"]) == 3
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["label_separator"] == ";"
    assert set(record["thresholds"]) == {"code", "system", "web"}

    # zoo predict writes the label sets the run predicted, and one probability per label.
    rows = zoo_predict(run_dir, multi_task / "test.csv", capsys, "--id-column", "id", "--proba")
    assert [r["labels"] for r in rows] == [r["predicted"] for r in recorded]
    assert list(rows[0]) == ["id", "labels", "proba_code", "proba_system", "proba_web"]
    probabilities = np.array([[float(r[f"proba_{k}"]) for k in sorted(KEYWORDS)] for r in rows])
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert not np.allclose(probabilities.sum(axis=1), 1)  # each label's own, no softmax


@pytest.mark.slow
def test_a_tiny_bert_learns_label_sets_with_sigmoid_outputs(multi_task, capsys):
    import torch
    from tiny_models import demo_texts, save_tiny_bert

    model = save_tiny_bert(multi_task / "tiny-bert", demo_texts(), hidden=128)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_keyword_task.one_thread
    try:
        entry = f'[[models]]\nmodel = "finbert"\ncheckpoint = "{model}"'
        (run,) = multi_run(multi_task, "bert", entry)
    finally:
        torch.set_num_threads(threads)
    assert run["metrics"]["test"]["f1_micro"] >= 0.9
    run_dir = Path(run["run_dir"])
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    rows = zoo_predict(run_dir, multi_task / "test.csv", capsys)
    assert [r["labels"] for r in rows] == [
        r["predicted"] for r in read_rows(run_dir / "predictions.csv")
    ]


def test_a_fixed_threshold_is_every_labels(multi_task):
    (run,) = multi_run(multi_task, "fixed", '[[models]]\nmodel = "tfidf"\nthreshold = 0.3')
    metrics = json.loads((Path(run["run_dir"]) / "metrics.json").read_text())
    assert metrics["test"]["thresholds"] == {"code": 0.3, "system": 0.3, "web": 0.3}


def test_folds_of_multi_label_data_ensemble_with_the_mean_threshold(multi_task):
    recipe = multi_task / "folds.toml"
    recipe.write_text(
        '[run]\nname = "folds"\nseed = 42\noutput_dir = "runs"\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = { folds = 3 }\n'
        'label_column = "labels"\nlabel_separator = ";"\n[[models]]\nmodel = "tfidf"\n',
        encoding="utf-8",
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert zoo.cli.main(["run", str(recipe), "--json"]) == 0
    runs = json.loads(out.getvalue())["runs"]
    assert len(runs) == 4  # 3 folds and their ensemble
    folds = [json.loads((Path(r["run_dir"]) / "labels.json").read_text()) for r in runs[:3]]
    ensemble = json.loads((Path(runs[3]["run_dir"]) / "labels.json").read_text())
    mean = np.mean([f["thresholds"] for f in folds], axis=0)
    assert ensemble["thresholds"] == pytest.approx(mean.tolist())
    assert runs[3]["metrics"]["test"]["f1_micro"] >= 0.9


# --- tables, reports, comparisons -----------------------------------------------------------------


def test_compare_shows_the_multi_label_scores_and_says_why_it_pairs_none(
    tfidf_run, multi_task, capsys
):
    # A second model, so that there is a row to pair with the best.
    multi_run(multi_task, "tfidf", '[[models]]\nmodel = "tfidf"\nname = "again"')
    capsys.readouterr()
    output = str(multi_task / "runs")
    assert zoo.cli.main(["compare", "--output-dir", output, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["leaderboard"]
    assert {"f1_micro", "f1_samples", "subset_accuracy"} <= set(rows[0])
    assert "accuracy" not in rows[0]
    unpaired = [row["vs_best"] for row in rows[1:]]
    assert unpaired and all("multi-label" in (v or {}).get("unpaired", "") for v in unpaired)
    assert zoo.cli.main(["compare", "--output-dir", output]) == 0
    table = capsys.readouterr().out
    assert "micro-F1" in table and "subset accuracy" in table and "weighted F1" not in table


def test_show_and_report_give_each_labels_scores_and_threshold(tfidf_run, capsys):
    run_dir = tfidf_run["run_dir"]
    assert zoo.cli.main(["show", run_dir]) == 0
    shown = capsys.readouterr().out
    assert "threshold" in shown and "Confusion matrix" not in shown
    assert zoo.cli.main(["report", run_dir]) == 0
    capsys.readouterr()
    page = (Path(run_dir) / "report.html").read_text(encoding="utf-8")
    assert "Per label" in page and "Confusion matrix" not in page


# --- what is refused ------------------------------------------------------------------------------


def recipe_file(tmp_path: Path, data: str, models: str = '[[models]]\nmodel = "tfidf"\n') -> Path:
    (tmp_path / "train.csv").write_text(
        "text,label\n" + "".join(f"t{i},{['a', 'b', 'a;b'][i % 3]}\n" for i in range(9)),
        encoding="utf-8",
    )
    path = tmp_path / "recipe.toml"
    path.write_text(
        f'[run]\nname = "t"\n[data]\ntrain = "train.csv"\nvalidation = 0.3\n{data}\n{models}',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("data", "models", "problem"),
    [
        ('label_separator = ""', "", "data.label_separator: expected the characters that join"),
        ('label_separator = " ; "', "", "data.label_separator: expected the characters"),
        (
            'label_separator = ";"',
            '[[models]]\nmodel = "tfidf"\nthreshold = 1.5\n',
            "models[0].threshold: expected 'tuned' or a probability between 0 and 1",
        ),
    ],
)
def test_a_wrong_multi_label_setting_is_a_recipe_problem(tmp_path, data, models, problem):
    with pytest.raises(RecipeError) as raised:
        load_recipe(recipe_file(tmp_path, data, models or '[[models]]\nmodel = "tfidf"\n'))
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    ("data", "models", "problem"),
    [
        (
            'label_separator = ";"',
            '[[models]]\nmodel = "koalpaca-5.8b"\nmethod = "zero-shot"\n',
            "models[0].method: zero-shot scoring picks one label per text",
        ),
        (
            'label_separator = ";"',
            '[[models]]\nmodel = "koalpaca-5.8b"\nmethod = "few-shot"\n',
            "models[0].method: few-shot scoring picks one label per text",
        ),
        (
            'label_separator = ";"',
            '[[models]]\nmodel = "tfidf"\nmetric = "accuracy"\n',
            "models[0].metric: 'accuracy' does not score multi-label data; use one of "
            "'f1_macro', 'f1_micro', 'f1_samples', 'subset_accuracy'",
        ),
        (
            "",
            '[[models]]\nmodel = "tfidf"\nthreshold = 0.4\n',
            "models[0].threshold: applies to multi-label data (data.label_separator); remove it",
        ),
        (
            "",
            '[[models]]\nmodel = "tfidf"\nmetric = "f1_samples"\n',
            "models[0].metric: 'f1_samples' does not score single-label data",
        ),
    ],
)
def test_what_does_not_fit_the_task_is_refused_before_training(
    tmp_path, capsys, data, models, problem
):
    path = recipe_file(tmp_path, data, models)  # without a separator, a;b is a class
    assert zoo.cli.main(["validate", str(path)]) == 2
    assert problem in " ".join(capsys.readouterr().err.split())


def test_a_label_on_every_row_or_unseen_in_training_is_refused(tmp_path):
    from zoo.data import load_splits
    from zoo.recipe import DataSection

    (tmp_path / "train.csv").write_text(
        "text,label\n" + "".join(f"t{i},{['a;c', 'b;c'][i % 2]}\n" for i in range(8)),
        encoding="utf-8",
    )
    data = DataSection(train="train.csv", label_separator=";")
    with pytest.raises(DataError, match="every row has the label 'c' \\(among its others\\)"):
        load_splits(data, tmp_path, seed=1)
    (tmp_path / "train.csv").write_text(
        "text,label\n" + "".join(f"t{i},{['a', 'b;a', 'b'][i % 3]}\n" for i in range(9)),
        encoding="utf-8",
    )
    (tmp_path / "test.csv").write_text("text,label\nx,a;z\n", encoding="utf-8")
    data = DataSection(train="train.csv", test="test.csv", label_separator=";")
    with pytest.raises(DataError, match="data.test: labels not seen in data.train: 'z'"):
        load_splits(data, tmp_path, seed=1)


def test_predict_refuses_damaged_thresholds(tfidf_run, multi_task, tmp_path, capsys):
    damaged = tmp_path / "run"
    shutil.copytree(tfidf_run["run_dir"], damaged)
    labels = json.loads((damaged / "labels.json").read_text())
    labels["thresholds"] = labels["thresholds"][:2]
    (damaged / "labels.json").write_text(json.dumps(labels))
    output = tmp_path / "out.csv"
    argv = ["predict", str(damaged), "--input", str(multi_task / "test.csv"), "--output"]
    assert zoo.cli.main([*argv, str(output)]) == 2
    assert "thresholds are not 3 probabilities, one per label" in capsys.readouterr().err
    assert not output.exists()


def test_a_label_spelled_in_nfd_inside_a_set_is_the_nfc_label(tmp_path):
    import unicodedata

    path = tmp_path / "train.csv"
    nfd = unicodedata.normalize("NFD", "웹")
    path.write_text(f"text,label\na,코드;{nfd}\nb,웹\n", encoding="utf-8")
    read = read_table(
        path, text_column="text", label_column="label", setting="data.train", label_separator=";"
    )
    assert read.rows.labels == ("웹;코드", "웹")  # one label 웹, in label order
    assert any("NFD" in notice for notice in read.notices)
