"""Plugins add metrics through `register_metrics`; zoo's own three take the same road.

A registered metric can be a recipe's `training.metric`: it then picks the best checkpoint (in
its own direction) and every run reports it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tiny_models import DEMO_DATA, read_rows

import zoo
import zoo.metrics
from zoo.errors import PluginError, RecipeError
from zoo.leaderboard import leaderboard, leaderboard_table
from zoo.plugins import get_plugin_manager
from zoo.recipe import load_recipe
from zoo.registry import collect_metrics, collect_models
from zoo.report import comparison_table
from zoo.runner import RunOptions, run_recipe
from zoo.store import ResultsStore, RunRecord


def error_rate(references, predictions, probabilities, labels) -> float:
    """The share of rows predicted wrong: smaller is better."""
    return sum(r != p for r, p in zip(references, predictions, strict=True)) / len(references)


ERROR_RATE = zoo.Metric(
    name="error_rate", label="error rate", higher_is_better=False, compute=error_rate
)


class ErrorRatePlugin:
    @zoo.hookimpl
    def register_metrics(self, register):
        register(ERROR_RATE)


class AnotherErrorRatePlugin:
    @zoo.hookimpl
    def register_metrics(self, register):
        register(zoo.Metric(name="error_rate", label="errors", compute=error_rate))


def test_the_builtins_register_accuracy_and_both_f1s_in_table_order():
    metrics = collect_metrics(get_plugin_manager(entry_points=False))
    assert [(m.name, m.label, m.higher_is_better, sorted(m.tasks)) for m in metrics] == [
        ("f1_macro", "macro-F1", True, ["multi-label", "single-label"]),
        ("accuracy", "accuracy", True, ["single-label"]),
        ("f1_weighted", "weighted F1", True, ["single-label"]),
        # multi-label runs' own (data.label_separator)
        ("f1_micro", "micro-F1", True, ["multi-label"]),
        ("f1_samples", "samples-F1", True, ["multi-label"]),
        ("subset_accuracy", "subset accuracy", True, ["multi-label"]),
    ]
    assert {e.plugin for e in metrics.registered.values()} == {"zoo.metrics"}


def test_a_plugin_metric_comes_after_the_builtins(pm):
    pm.register(ErrorRatePlugin(), name="errors")  # registered first, listed last
    pm.register(zoo.metrics, name="zoo.metrics")
    builtins = ["f1_macro", "accuracy", "f1_weighted", "f1_micro", "f1_samples", "subset_accuracy"]
    assert collect_metrics(pm).names() == [*builtins, "error_rate"]


def test_the_same_metric_name_from_two_plugins_names_both(pm):
    pm.register(ErrorRatePlugin(), name="errors")
    pm.register(AnotherErrorRatePlugin(), name="more-errors")
    with pytest.raises(PluginError) as caught:
        collect_metrics(pm)
    assert "'error_rate' is registered twice" in str(caught.value)
    assert "'errors'" in str(caught.value) and "'more-errors'" in str(caught.value)


def test_registering_something_that_is_not_a_metric_is_a_plugin_error(pm):
    class Wrong:
        @zoo.hookimpl
        def register_metrics(self, register):
            register("mcc")

    pm.register(Wrong(), name="wrong")
    with pytest.raises(PluginError, match="not a zoo.Metric"):
        collect_metrics(pm)


@pytest.mark.parametrize("name", ["MCC", "f1-macro", "1st", "per_class", ""])
def test_a_metric_name_is_a_plain_identifier(name):
    with pytest.raises(ValueError, match="a metric name is"):
        zoo.Metric(name=name, label="x", compute=error_rate)


def test_a_plugin_that_raises_is_recorded_and_the_others_still_register(pm):
    class Broken:
        @zoo.hookimpl
        def register_metrics(self, register):
            raise RuntimeError("no sklearn")

    pm.register(Broken(), name="broken")
    pm.register(ErrorRatePlugin(), name="errors")
    metrics = collect_metrics(pm)
    assert metrics.names() == ["error_rate"]
    assert metrics.failures == [("broken", "RuntimeError: no sklearn")]


def test_an_unknown_training_metric_is_a_recipe_error_with_a_suggestion(write_recipe):
    path = write_recipe(
        '[run]\nname = "tiny"\n[data]\ntrain = "train.csv"\n'
        '[training]\nmetric = "error_rat"\n[[models]]\nmodel = "minilm"\n'
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, metric_names=["f1_macro", "accuracy", "f1_weighted", "error_rate"])
    message = str(caught.value)
    assert "training.metric: unknown metric 'error_rat' (did you mean 'error_rate'?" in message
    assert "plugins add more with register_metrics" in message
    # Without the plugin, zoo's own metrics are the ones checked against.
    path.write_text(path.read_text(encoding="utf-8").replace("error_rat", "error_rate"), "utf-8")
    with pytest.raises(RecipeError, match="unknown metric 'error_rate'"):
        load_recipe(path)


def test_a_plugin_metric_is_a_leaderboard_column_and_sort_key(tmp_path, render):
    metrics = (*zoo.metrics.BUILTIN_METRICS, ERROR_RATE)
    store = ResultsStore.in_dir(tmp_path)
    for model, errors in (("minilm", 0.25), ("xlmr", 0.125)):
        scores = {"accuracy": 1 - errors, "error_rate": errors, "f1_macro": 0.5}
        scores |= {"f1_weighted": 0.5, "per_class": {}}
        store.record(
            RunRecord(
                recipe_name="demo",
                recipe_hash="h",
                data_fingerprint="d",
                model=model,
                method="full",
                seed=1,
                status="ok",
                metrics={"test": scores, "validation": scores},
            )
        )
    # Any metric's score is kept in the store as it is, and read back.
    rows = leaderboard(store.runs(), by="error_rate", metrics=metrics)
    assert [(row.model, row.error_rate) for row in rows] == [
        ("xlmr", (0.125, None)),
        ("minilm", (0.25, None)),
    ]
    table = leaderboard_table(rows, title="Leaderboard", metrics=metrics)
    assert [column.header for column in table.columns][3:7] == [
        "macro-F1",
        "accuracy",
        "weighted F1",
        "error rate",
    ]
    text = render(table)
    # Smaller is better: the lower error rate is the one marked.
    assert "0.1250 *" in next(line for line in text.splitlines() if "xlmr" in line)


# --- training with a plugin's metric ---------------------------------------------------------


class Progress:
    def start(self, description: str, total: int) -> None: ...
    def advance(self, steps: int = 1) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


@pytest.fixture
def data(tmp_path) -> Path:
    """40 training and 10 test rows of the demo data, every class present."""
    for name, count in (("train", 40), ("test", 10)):
        rows = read_rows(DEMO_DATA / f"{name}.csv")
        by_label: dict[str, list] = {}
        for row in rows:
            by_label.setdefault(row["label"], []).append(row)
        picked = [r for group in by_label.values() for r in group[:2]]  # rare classes first
        picked = [*picked, *(r for r in rows if r not in picked)][:count]
        with (tmp_path / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "label"])
            writer.writeheader()
            writer.writerows(picked)
    return tmp_path


def test_hook_register_metrics(pm, tiny_bert, data, monkeypatch, render):
    """A test plugin's metric, registered on a fresh manager, is a recipe's training.metric:
    the Trainer picks the best checkpoint by it (smaller is better here), and metrics.json,
    the run summary and the table carry it."""
    from zoo.engine import train

    class TinyBert:
        @zoo.hookimpl
        def register_models(self, register):
            register(
                zoo.ModelSpec(
                    name="tiny-bert",
                    description="2-layer random BERT",
                    source=zoo.LocalSource(path=tiny_bert),
                    family="bert",
                )
            )

    pm.register(zoo.metrics, name="zoo.metrics")
    pm.register(ErrorRatePlugin(), name="errors")
    pm.register(TinyBert(), name="tiny")
    registry, metrics = collect_models(pm), collect_metrics(pm)
    built = []
    original = train._trainer_class

    def recording_class(**kwargs):
        class Recording(original(**kwargs)):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                built.append(self)

        return Recording

    monkeypatch.setattr(train, "_trainer_class", recording_class)
    path = data / "recipe.toml"
    path.write_text(
        '[run]\nname = "errors"\noutput_dir = "out"\n\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = 0.25\n\n'
        '[[models]]\nmodel = "tiny-bert"\n\n'
        '[training]\nmetric = "error_rate"\nmax_steps = 6\nbatch_size = 16\nmax_length = 32\n'
        "learning_rate = 1e-2\nwarmup_ratio = 0.0\nearly_stopping_patience = 0\n",
        encoding="utf-8",
    )
    recipe = load_recipe(path, model_names=registry.names(), metric_names=metrics.names())
    failures = []
    [run] = run_recipe(
        recipe,
        registry,
        lambda _label: Progress(),
        lambda m, e: failures.append((m, e)),
        RunOptions(metrics=metrics.metrics),
    )
    assert failures == []
    assert run.status == "ok"

    [trainer] = built
    assert trainer.args.metric_for_best_model == "error_rate"
    assert trainer.args.greater_is_better is False
    evaluated = [e["eval_error_rate"] for e in trainer.state.log_history if "eval_error_rate" in e]
    assert len(evaluated) == 3  # steps 2, 4 and 6
    assert trainer.state.best_metric == min(evaluated)

    test = json.loads((run.run_dir / "metrics.json").read_text(encoding="utf-8"))["test"]
    assert test["error_rate"] == pytest.approx(1 - test["accuracy"])
    # The scores, then their intervals: the plugin's metric, without a fast path, has one too.
    assert list(run.metrics["test"]) == [
        "accuracy",
        "error_rate",
        "f1_macro",
        "f1_weighted",
        "ci95",
    ]
    assert list(test["ci95"]) == ["accuracy", "error_rate", "f1_macro", "f1_weighted"]
    low, high = test["ci95"]["error_rate"]
    assert low <= test["error_rate"] <= high
    assert run.metrics["test"]["ci95"] == test["ci95"]
    assert run.to_json()["metrics"]["test"]["error_rate"] == test["error_rate"]
    table = comparison_table([run], metrics=metrics.metrics)
    assert [column.header for column in table.columns][2:6] == [
        "macro-F1",
        "accuracy",
        "weighted F1",
        "error rate",
    ]
    assert f"{test['error_rate']:.4f}" in render(table)
