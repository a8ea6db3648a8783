"""Bootstrap intervals of test scores, and the paired comparison with the best row."""

# ruff: noqa: E501

from __future__ import annotations

import io
import json

import attrs
import numpy as np
import pytest
from rich.console import Console

from zoo import uncertainty
from zoo.leaderboard import leaderboard, leaderboard_table, to_json, vs_best
from zoo.metrics import ACCURACY, BUILTIN_METRICS, F1_MACRO, Metric
from zoo.rundir import PredictionsCsv, RunDirError, read_run
from zoo.store import ResultsStore, RunRecord
from zoo.uncertainty import Scored, intervals, paired_difference


def correct_with(p: float, n: int, rng: np.random.Generator, classes: int = 3):
    """n rows of a classifier right with probability p (wrong: another class at random)."""
    references = rng.integers(0, classes, n)
    wrong = (references + rng.integers(1, classes, n)) % classes
    return references, np.where(rng.random(n) < p, references, wrong)


# --- the fast paths agree with the metrics' own compute -----------------------------------------


@pytest.mark.parametrize("metric", BUILTIN_METRICS, ids=lambda m: m.name)
def test_the_confusion_fast_path_equals_the_registered_compute(metric):
    rng = np.random.default_rng(3)
    # Skewed labels: resamples often miss a rare class, or predict a class no reference has.
    references = rng.choice(5, size=60, p=[0.6, 0.25, 0.1, 0.04, 0.01])
    predictions = np.where(rng.random(60) < 0.6, references, rng.integers(0, 5, 60))
    indices = uncertainty.resample_indices(60, 100, 1)
    fast = uncertainty.resampled_scores(
        metric, references, predictions, None, list("abcde"), indices
    )
    slow = [
        metric.compute(references[i].tolist(), predictions[i].tolist(), None, list("abcde"))
        for i in indices
    ]
    assert fast.tolist() == pytest.approx(slow, abs=1e-12)


# --- intervals of one run -------------------------------------------------------------------


def test_a_95_percent_interval_covers_the_true_accuracy_about_95_times_in_100():
    rng = np.random.default_rng(2024)
    true_p, covered, repeats = 0.8, 0, 200
    for repeat in range(repeats):
        references, predictions = correct_with(true_p, 200, rng)
        low, high = intervals(
            references, predictions, None, list("abc"), [ACCURACY], seed=repeat, resamples=500
        )["accuracy"]
        covered += low <= true_p <= high
    assert 0.90 <= covered / repeats <= 0.99


def test_a_wrong_interval_is_caught_by_the_coverage_check():
    # The same check on a 50% interval must fail: the coverage test can tell.
    rng = np.random.default_rng(7)
    covered = 0
    for repeat in range(100):
        references, predictions = correct_with(0.8, 200, rng)
        low, high = intervals(
            references, predictions, None, list("abc"), [ACCURACY], seed=repeat, level=0.5
        )["accuracy"]
        covered += low <= 0.8 <= high
    assert not 0.90 <= covered / 100 <= 0.99


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    references, predictions = correct_with(0.7, 371, np.random.default_rng(0), classes=5)
    labels = list("abcde")
    first = intervals(references, predictions, None, labels, BUILTIN_METRICS, seed=42)
    again = intervals(references, predictions, None, labels, BUILTIN_METRICS, seed=42)
    other = intervals(references, predictions, None, labels, BUILTIN_METRICS, seed=7)
    assert first == again
    assert list(first) == ["accuracy", "f1_macro", "f1_weighted"]
    assert first != other
    for low, high in first.values():
        assert low < high


def test_a_metric_without_a_fast_path_uses_its_own_compute():
    calls = []

    def error_rate(references, predictions, probabilities, labels):
        calls.append(len(references))
        return float(np.mean(np.asarray(references) != np.asarray(predictions)))

    metric = Metric(name="error_rate", label="errors", higher_is_better=False, compute=error_rate)
    references, predictions = correct_with(0.7, 50, np.random.default_rng(1))
    found = intervals(references, predictions, None, list("abc"), [metric], seed=1, resamples=40)
    assert calls == [50] * 40
    accuracy = intervals(
        references, predictions, None, list("abc"), [ACCURACY], seed=1, resamples=40
    )
    assert found["error_rate"] == pytest.approx(
        [1 - accuracy["accuracy"][1], 1 - accuracy["accuracy"][0]]
    )


def test_1000_resamples_of_371_rows_and_3_metrics_take_well_under_a_second():
    import time

    references, predictions = correct_with(0.8, 371, np.random.default_rng(0), classes=5)
    start = time.perf_counter()
    intervals(references, predictions, None, list("abcde"), BUILTIN_METRICS, seed=1)
    assert time.perf_counter() - start < 1.0


# --- the paired test ------------------------------------------------------------------------


def test_two_runs_with_the_same_predictions_are_tied_with_no_difference():
    references, predictions = correct_with(0.75, 300, np.random.default_rng(5))
    same = Scored.of([predictions])
    paired = paired_difference(same, same, references, list("abc"), F1_MACRO, seed=1)
    assert paired.diff == 0
    assert paired.ci95 == (0.0, 0.0)
    assert paired.tied
    assert paired.p_value == 1.0


def test_a_clearly_better_model_is_not_tied_and_p_is_small():
    rng = np.random.default_rng(11)
    references, good = correct_with(0.95, 300, rng)
    poor = np.where(rng.random(300) < 0.6, references, (references + 1) % 3)
    paired = paired_difference(
        Scored.of([poor]), Scored.of([good]), references, list("abc"), ACCURACY, seed=1
    )
    assert paired.diff == pytest.approx(np.mean(poor == references) - np.mean(good == references))
    assert paired.ci95[1] < 0
    assert not paired.tied
    assert paired.p_value < 0.01


def test_close_models_on_few_rows_are_tied():
    rng = np.random.default_rng(4)
    references, a = correct_with(0.80, 60, rng)
    b = a.copy()
    b[:2] = (references[:2] + 1) % 3  # two rows more wrong
    paired = paired_difference(
        Scored.of([b]), Scored.of([a]), references, list("abc"), ACCURACY, seed=1
    )
    assert paired.tied and paired.p_value > 0.05


# --- through the results store and run directories ------------------------------------------


def write_run(root, name, seed, references, predictions, *, labels="abc", ci=True, rows=None):
    """A finished run directory with predictions.csv, and its results-store record."""
    run_dir = root / f"{name}-seed{seed}"
    run_dir.mkdir()
    names = [labels[i] for i in references]
    guessed = [labels[i] for i in predictions]
    rows = list(range(len(names))) if rows is None else rows
    lines = ["row,line,text,label,predicted,confidence"]
    lines += [
        f"{r},{r + 2},text {r},{t},{p},0.900000"
        for r, t, p in zip(rows, names, guessed, strict=True)
    ]
    (run_dir / "predictions.csv").write_text("\n".join(lines) + "\n")
    (run_dir / "run.json").write_text(json.dumps({"status": "ok"}))
    accuracy = float(np.mean(np.asarray(references) == np.asarray(predictions)))
    test = {"accuracy": accuracy, "f1_macro": accuracy, "f1_weighted": accuracy, "per_class": {}}
    if ci:
        test["ci95"] = {"accuracy": [accuracy - 0.05, accuracy + 0.05]}
    return RunRecord(
        recipe_name="demo",
        recipe_hash="h",
        data_fingerprint="d",
        model=name,
        method="full",
        seed=seed,
        status="ok",
        metrics={"test": test, "validation": test},
        run_dir=str(run_dir),
    )


def render(renderable) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    return "".join(f"{line.rstrip()}\n" for line in console.file.getvalue().splitlines())


@pytest.fixture
def three_models(tmp_path):
    rng = np.random.default_rng(0)
    references, good = correct_with(0.95, 300, rng)
    poor = np.where(rng.random(300) < 0.6, references, (references + 1) % 3)
    return [
        write_run(tmp_path, "good", 1, references, good),
        write_run(tmp_path, "twin", 1, references, good.copy()),
        write_run(tmp_path, "poor", 1, references, poor),
    ]


def test_vs_best_marks_a_twin_tied_and_a_poor_model_not(three_models):
    rows = vs_best(leaderboard(three_models, by="accuracy"), by="accuracy")
    by_name = {row.model: row for row in rows}
    assert by_name["good"].vs_best is None
    twin, poor = by_name["twin"].vs_best, by_name["poor"].vs_best
    assert (twin.diff, twin.tied, twin.p_value) == (0.0, True, 1.0)
    assert poor.tied is False and poor.p_value < 0.01 and poor.ci95[1] < 0
    data = to_json(rows)["leaderboard"]
    assert [r["model"] for r in data] == ["good", "twin", "poor"]
    assert data[0]["vs_best"] is None
    assert data[1]["vs_best"] == {
        "model": "good",
        "metric": "accuracy",
        "diff": 0.0,
        "ci95": [0.0, 0.0],
        "p_value": 1.0,
        "tied": True,
        "unpaired": None,
    }
    assert set(data[2]["vs_best"]) == {
        "model",
        "metric",
        "diff",
        "ci95",
        "p_value",
        "tied",
        "unpaired",
    }
    # A single run's stored interval, absent where the run stored none.
    assert data[0]["accuracy"]["ci95"] == pytest.approx([0.9, 1.0], abs=0.06)
    assert data[0]["f1_macro"]["ci95"] is None


def test_the_table_marks_the_tied_rows_with_a_legend(three_models):
    rows = vs_best(leaderboard(three_models, by="accuracy"), by="accuracy")
    text = render(leaderboard_table(rows, title="Leaderboard"))
    lines = text.splitlines()
    assert lines[0] == "Leaderboard (test split; [95% CI]; * best)"
    assert any(line.startswith("│ twin ≈ ") for line in lines)
    assert not any("poor ≈" in line for line in lines)
    assert any(line.startswith("│ good ") and "[0." in line for line in lines)
    assert (
        lines[-1]
        == "≈ tied with good on accuracy: the paired 95% interval of the difference holds 0"
    )


def test_runs_on_other_test_rows_are_reported_unpaired(tmp_path):
    rng = np.random.default_rng(0)
    references, a = correct_with(0.9, 50, rng)
    records = [
        write_run(tmp_path, "a", 1, references, a),
        write_run(tmp_path, "b", 1, references, a, rows=[r + 1 for r in range(50)]),
    ]
    rows = vs_best(leaderboard(records, by="accuracy"), by="accuracy")
    unpaired = rows[1].vs_best
    assert unpaired.ci95 is None and unpaired.tied is None and unpaired.p_value is None
    assert unpaired.unpaired == (
        "test row 1 of predictions.csv is row 1 (line 3, label "
        f"{'abc'[references[0]]!r}), for a row 0 (line 2, label {'abc'[references[0]]!r})"
    )
    assert "not paired with a: b: test row 1" in render(leaderboard_table(rows, title="L"))


def test_several_seeds_are_resampled_too_and_give_the_row_an_interval(tmp_path):
    rng = np.random.default_rng(1)
    references, _ = correct_with(0.9, 100, rng)
    records = [
        write_run(
            tmp_path,
            "m",
            seed,
            references,
            np.where(rng.random(100) < p, references, (references + 1) % 3),
        )
        for seed, p in ((1, 0.9), (2, 0.8), (3, 0.85))
    ]
    records.append(write_run(tmp_path, "other", 1, references, references))
    rows = vs_best(leaderboard(records, by="accuracy"), by="accuracy")
    row = next(r for r in rows if r.model == "m")
    low, high = row.ci95["accuracy"]
    assert low < row.scores["accuracy"][0] < high
    assert row.vs_best.model == "other" and not row.vs_best.unpaired


def test_old_runs_without_intervals_or_predictions_still_compare(tmp_path):
    # A store written before intervals existed: no ci95, no run directories.
    store = ResultsStore.in_dir(tmp_path)
    for model, f1 in (("a", 0.8), ("b", 0.7)):
        store.record(
            RunRecord(
                recipe_name="demo",
                recipe_hash="h",
                data_fingerprint="d",
                model=model,
                method="full",
                seed=1,
                status="ok",
                metrics={
                    "test": {"accuracy": f1, "f1_macro": f1, "f1_weighted": f1, "per_class": {}}
                },
            )
        )
    rows = vs_best(leaderboard(ResultsStore.read_only(store.path).runs()))
    assert rows[0].ci95 == {} and rows[1].ci95 == {}
    assert rows[1].vs_best.unpaired == "its results-store record names no run directory"
    assert rows[1].vs_best.diff == pytest.approx(-0.1)
    text = render(leaderboard_table(rows, title="L"))
    assert "[" not in text.splitlines()[3] and "CI" not in text.splitlines()[0]


# --- predictions.csv through read_run ---------------------------------------------------------


def test_read_run_reads_predictions(tmp_path):
    record = write_run(tmp_path, "m", 1, [0, 1, 2], [0, 2, 2])
    found = read_run(record.run_dir, needs=("predictions",)).predictions
    assert found == PredictionsCsv(
        rows=(0, 1, 2), lines=(2, 3, 4), labels=tuple("abc"), predicted=tuple("acc")
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("row,line,text\n", "line 1 is not the header row,line,text,label,predicted,confidence"),
        ("row,line,text,label,predicted,confidence\n0,2,x,a,a\n", "line 2 has 5 fields, not 6"),
        (
            "row,line,text,label,predicted,confidence\n0,2,x,a,a,0.5\nzero,3,y,a,a,0.5\n",
            "line 3: row, line and confidence must be numbers, got 'zero', '3', '0.5'",
        ),
    ],
)
def test_a_damaged_predictions_file_is_refused_with_its_line(tmp_path, text, problem):
    record = write_run(tmp_path, "m", 1, [0], [0])
    (tmp_path / "m-seed1" / "predictions.csv").write_text(text)
    with pytest.raises(RunDirError) as caught:
        read_run(record.run_dir, needs=("predictions",))
    assert (
        caught.value.message == f"{tmp_path / 'm-seed1' / 'predictions.csv'} is damaged: {problem}"
    )


def test_a_row_whose_predictions_are_damaged_is_unpaired_not_a_crash(tmp_path):
    references = [0, 1, 2, 0]
    records = [
        write_run(tmp_path, "a", 1, references, references),
        write_run(tmp_path, "b", 1, references, [0, 1, 1, 0]),
    ]
    (tmp_path / "b-seed1" / "predictions.csv").write_text("nonsense\n")
    rows = vs_best(leaderboard(records, by="accuracy"), by="accuracy")
    assert "is damaged: line 1 is not the header" in rows[1].vs_best.unpaired
    assert attrs.evolve(rows[1], vs_best=None).vs_best is None


def test_a_metric_that_may_read_probabilities_gets_no_made_up_seed_interval_or_pair(tmp_path):
    # predictions.csv keeps labels, not the class probabilities: a metric without a
    # confusion-matrix form is neither paired nor given a seeds interval from them.
    rng = np.random.default_rng(2)
    references, good = correct_with(0.9, 80, rng)
    records = [write_run(tmp_path, "m", seed, references, good) for seed in (1, 2)]
    records.append(write_run(tmp_path, "other", 1, references, references))
    for record in records:
        record.metrics["test"]["confident"] = 0.5
    confident = Metric(
        name="confident",
        label="confident",
        compute=lambda refs, preds, probabilities, labels: float(probabilities.max(axis=1).mean()),
    )
    metrics = (*BUILTIN_METRICS, confident)
    rows = vs_best(
        leaderboard(records, by="confident", metrics=metrics), by="confident", metrics=metrics
    )
    m = next(row for row in rows if row.model == "m")
    assert "confident" not in m.ci95 and "accuracy" in m.ci95
    paired = next(row.vs_best for row in rows if row.vs_best is not None)
    assert paired.tied is None and paired.ci95 is None
    assert "predictions.csv does not keep" in paired.unpaired
