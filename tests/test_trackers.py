"""Experiment trackers (training.report_to): TensorBoard event files in the run directory, an
MLflow run per model run holding zoo's own results, names and packages checked before anything
loads. Every store is a local folder under tmp_path: no test reaches a network."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from conftest import require

import zoo
from zoo.cli import main
from zoo.errors import RecipeError
from zoo.recipe import load_recipe

MODELS = {"tfidf", "finbert"}


def tfidf_recipe(write_recipe, report_to: str = '["mlflow"]') -> Path:
    return write_recipe(
        f"""\
        [run]
        name = "tracked"
        output_dir = "runs"

        [data]
        train = "train.csv"
        test = "test.csv"
        validation = 0.34

        [training]
        report_to = {report_to}

        [[models]]
        model = "tfidf"
        """
    )


def run(pm, path: Path, *plugins: str):
    """`zoo run` with these built-in plugins (and the MLflow tracker) on `pm`."""
    import importlib

    from test_run_events import run as run_with

    for name in (*plugins, "zoo_plugins.mlflow_tracker"):
        pm.register(importlib.import_module(name), name=name)
    return run_with(pm, path)


def mlflow_runs(uri: str, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r} in {uri}"
    return client.search_runs([found.experiment_id])


def scores(run_dir: Path) -> dict[str, float]:
    """metrics.json's numbers as the tracker names them: validation_accuracy, test_f1_macro."""
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return {
        f"{split}_{name}": value
        for split in ("validation", "test")
        for name, value in metrics[split].items()
        if isinstance(value, int | float)
    }


@pytest.fixture
def local_store(monkeypatch):
    """No tracking URI from the environment: zoo's default store, under the output directory."""
    require("mlflow", "the MLflow tracker's tests need mlflow (pip install -e '.[mlflow]')")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)


def test_the_tfidf_baseline_makes_an_mlflow_run_with_zoo_s_metrics(
    write_recipe, local_store, monkeypatch, capsys
):
    monkeypatch.setenv("ZOO_PLUGINS", "")  # the built-in tracker, as `zoo run` loads it
    path = tfidf_recipe(write_recipe)
    assert main(["run", str(path), "--json"]) == 0
    [model_run] = json.loads(capsys.readouterr().out)["runs"]
    run_dir = path.parent / model_run["run_dir"]

    store = (path.parent / "runs" / "mlruns").as_uri()
    [tracked] = mlflow_runs(store, "tracked")
    assert tracked.info.status == "FINISHED"
    assert tracked.info.run_name == "tfidf-seed42"
    logged = tracked.data.metrics
    assert {k: logged[k] for k in scores(run_dir)} == scores(run_dir)
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    device_bytes = record["memory_estimate"]["device_bytes"]
    assert logged["memory_estimate.device_bytes"] == device_bytes
    assert tracked.data.tags["zoo.memory_estimate.fits"] == "True"
    assert tracked.data.tags["zoo.run_dir"] == str(run_dir.resolve())
    params = tracked.data.params
    assert params["zoo.report_to"] == '["mlflow"]' and params["zoo.metric"] == "f1_macro"
    assert params["zoo.registered_model"] == "tfidf"


def test_mlflow_tracking_uri_names_another_store(
    pm, write_recipe, local_store, tmp_path, monkeypatch
):
    elsewhere = (tmp_path / "elsewhere").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "mine")
    path = tfidf_recipe(write_recipe)
    run(pm, path, "zoo_plugins.tfidf")

    assert len(mlflow_runs(elsewhere, "mine")) == 1
    assert not (path.parent / "runs" / "mlruns").exists()


def test_the_ci95_bounds_become_metrics_of_their_own():
    from zoo_plugins.mlflow_tracker import final_metrics

    summary = {"validation": {"f1_macro": 0.5}, "test": None}
    reports = {"test": {"f1_macro": 0.6, "ci95": {"f1_macro": [0.4, 0.8]}, "per_class": {}}}
    assert final_metrics(summary, reports) == {
        "validation_f1_macro": 0.5,
        "test_f1_macro": 0.6,
        "test_f1_macro_ci95_low": 0.4,
        "test_f1_macro_ci95_high": 0.8,
    }


def test_a_failing_tracker_costs_no_run(pm, write_recipe, local_store, monkeypatch, capsys):
    import mlflow

    def no_server(*args, **kwargs):
        raise ConnectionError("no tracking server")

    monkeypatch.setattr(mlflow, "start_run", no_server)
    [model_run] = run(pm, tfidf_recipe(write_recipe), "zoo_plugins.tfidf")

    assert model_run.status == "ok"
    assert (
        "warning: the run listener of plugin 'zoo_plugins.mlflow_tracker' failed on RunStarted: "
        "ConnectionError: no tracking server; the run goes on"
    ) in capsys.readouterr().err


def test_no_report_to_no_mlflow_run(pm, write_recipe, local_store):
    path = tfidf_recipe(write_recipe, report_to="[]")
    [model_run] = run(pm, path, "zoo_plugins.tfidf")
    assert model_run.status == "ok"
    assert not (path.parent / "runs" / "mlruns").exists()


def tensorboard_tags(folder: Path) -> set[str]:
    """The scalar tags in the TensorBoard event files of `folder` (TFRecord: length, its CRC,
    an Event message, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    tags = set()
    for path in folder.glob("**/events.out.tfevents.*"):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = Event.FromString(data[at + 12 : at + 12 + length])
            tags |= {value.tag for value in event.summary.value}
            at += 12 + length + 4
    return tags


@pytest.mark.slow
def test_a_trainer_run_reports_to_tensorboard_and_to_one_mlflow_run(
    pm, tmp_path, tiny_bert, local_store
):
    from test_faults import write_recipe

    require(
        "tensorboardX", "the TensorBoard test needs tensorboardX (pip install -e '.[tensorboard]')"
    )
    path = write_recipe(
        tmp_path, tiny_bert, max_steps=16, batch_size=16, report_to=["tensorboard", "mlflow"]
    )
    [model_run] = run(pm, path, "zoo_plugins.finbert")
    assert model_run.status == "ok"

    # TensorBoard: the Trainer's curves, in the run directory (not with the removed checkpoints).
    assert {"train/loss", "eval/f1_macro"} <= tensorboard_tags(model_run.run_dir / "tensorboard")
    # MLflow: one run, holding both the Trainer's curves and zoo's final metrics.
    [tracked] = mlflow_runs((tmp_path / "runs" / "mlruns").as_uri(), "faults")
    logged = tracked.data.metrics
    assert "eval_f1_macro" in logged and "train_loss" in logged  # the Trainer's MLflowCallback
    assert {k: logged[k] for k in scores(model_run.run_dir)} == scores(model_run.run_dir)
    assert tracked.info.status == "FINISHED"
    assert tracked.data.params["max_steps"] == "16"  # TrainingArguments, beside zoo.* params
    assert tracked.data.params["zoo.max_steps"] == "16"


# --- names and packages, checked before anything loads -------------------------------------


def test_an_unknown_tracker_is_a_recipe_error_with_a_suggestion(write_recipe):
    with pytest.raises(RecipeError) as caught:
        load_recipe(tfidf_recipe(write_recipe, '["mlflw", "wandb"]'), model_names=MODELS)
    assert caught.value.problems[0].path == "training.report_to"
    assert caught.value.problems[0].message == (
        "unknown tracker 'mlflw' (did you mean 'mlflow'? zoo reports to 'tensorboard', "
        "'mlflow'); unknown tracker 'wandb' (zoo reports to 'tensorboard', 'mlflow')"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"mlflow"', "expected a list of tracker names such as ['tensorboard', 'mlflow'], got "
         "string 'mlflow'"),
        ('["mlflow", "mlflow"]', "names a tracker twice: ['mlflow', 'mlflow']"),
    ],
)  # fmt: skip
def test_report_to_is_a_list_of_distinct_names(write_recipe, value, message):
    with pytest.raises(RecipeError) as caught:
        load_recipe(tfidf_recipe(write_recipe, value), model_names=MODELS)
    assert [str(p) for p in caught.value.problems] == [f"training.report_to: {message}"]


def test_a_missing_tracker_package_is_refused_before_anything_loads(
    write_recipe, monkeypatch, capsys
):
    import zoo.trackers

    monkeypatch.setenv("ZOO_PLUGINS", "")
    monkeypatch.setattr(zoo.trackers, "is_installed", lambda module: module != "mlflow")
    path = tfidf_recipe(write_recipe, '["tensorboard", "mlflow"]')

    assert main(["run", str(path)]) == 2  # as every recipe error
    err = capsys.readouterr().err
    assert (
        "  - training.report_to: 'mlflow' needs the package mlflow, which is not installed: "
        "pip install -e '.[mlflow]'\n"
    ) in err
    assert "tensorboard" not in err.split("training.report_to")[1]
    assert not (path.parent / "runs").exists()  # nothing trained, nothing written
    assert main(["validate", str(path)]) == 2  # zoo validate says the same
    assert "pip install -e '.[mlflow]'" in capsys.readouterr().err


def test_the_trainer_reports_to_what_report_to_names():
    from zoo.engine.arguments import ZOO_ARGUMENTS, trainer_problems

    assert ZOO_ARGUMENTS["report_to"] == "training.report_to"
    [problem] = trainer_problems({"report_to": ["wandb"]}, "training.trainer")
    assert (
        problem.message
        == "zoo sets report_to from training.report_to: set training.report_to instead"
    )


def test_the_tracker_hears_nothing_it_was_not_asked_for():
    from zoo_plugins.mlflow_tracker import MlflowTracker

    tracker = MlflowTracker()
    tracker(
        zoo.RunStarted(
            run_name="r", model="m", seed=1, method="full", registered_model="m", settings={}
        )
    )
    assert tracker.runs == {}
