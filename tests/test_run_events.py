"""Trackers and notifiers hear of every model run through `register_run_listeners`: it started,
evaluated, finished or failed; for zoo's own engine and custom engines alike."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import pytest

import zoo
import zoo.memory.probe
from zoo.events import RunListeners, collect_run_listeners
from zoo.memory.probe import probe_device
from zoo.recipe import load_recipe
from zoo.registry import collect_models
from zoo.report import NoProgress
from zoo.runner import RunOptions, run_recipe


class Recorder:
    """A tracker that keeps every event it hears."""

    def __init__(self) -> None:
        self.events: list[zoo.RunEvent] = []

    @zoo.hookimpl
    def register_run_listeners(self, register):
        register(self.events.append)

    def kinds(self) -> list[str]:
        return [type(event).__name__ for event in self.events]


def tfidf_recipe(write_recipe, extra: str = "") -> Path:
    return write_recipe(
        f"""\
        [run]
        name = "events"
        output_dir = "runs"

        [data]
        train = "train.csv"
        test = "test.csv"
        validation = 0.34

        [[models]]
        model = "tfidf"
        {extra}
        """
    )


def run(pm, path: Path):
    """What `zoo run` does with the plugins of `pm` (and zoo's device probe): the ModelRuns."""
    pm.register(zoo.memory.probe, name="zoo.memory.probe")
    registry = collect_models(pm)
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    options = RunOptions(listeners=collect_run_listeners(pm), device=probe_device(pm))
    return run_recipe(recipe, registry, lambda _label: NoProgress(), lambda *_: None, options)


def test_hook_register_run_listeners(pm, write_recipe):
    """A custom engine's run (the TF-IDF baseline): started, its one evaluation, finished."""
    import zoo_plugins.tfidf

    recorder = Recorder()
    pm.register(zoo_plugins.tfidf, name="zoo_plugins.tfidf")
    pm.register(recorder, name="recorder")
    [model_run] = run(pm, tfidf_recipe(write_recipe))

    assert model_run.status == "ok"
    assert recorder.kinds() == ["RunStarted", "RunEvaluated", "RunFinished"]
    started, evaluated, finished = recorder.events
    identity = {"run_name": "events", "model": "tfidf", "seed": 42, "method": "full"}
    for event in recorder.events:
        assert {key: getattr(event, key) for key in identity} == identity
    assert started.registered_model == "tfidf"
    assert started.settings["metric"] == "f1_macro"
    assert (evaluated.step, evaluated.epoch) == (1, 1.0)
    assert set(evaluated.metrics) == {"accuracy", "f1_macro", "f1_weighted"}
    assert finished.run_dir == model_run.run_dir and finished.run_dir.is_dir()
    assert finished.metrics == model_run.metrics
    metrics = json.loads((finished.run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert finished.metrics["test"]["accuracy"] == metrics["test"]["accuracy"]
    assert evaluated.metrics["f1_macro"] == metrics["validation"]["f1_macro"]


def test_zoo_s_own_engine_reports_each_evaluation(pm, tmp_path, tiny_bert):
    import zoo_plugins.finbert
    from test_faults import write_recipe

    recorder = Recorder()
    pm.register(zoo_plugins.finbert, name="zoo_plugins.finbert")
    pm.register(recorder, name="recorder")
    # 120 training rows, 16 a step: evaluated at each epoch's end (step 8), twice in 16 steps.
    [model_run] = run(pm, write_recipe(tmp_path, tiny_bert, max_steps=16, batch_size=16))

    assert model_run.status == "ok"
    assert recorder.kinds() == ["RunStarted", "RunEvaluated", "RunEvaluated", "RunFinished"]
    first, second = recorder.events[1:3]
    assert (first.step, second.step) == (8, 16)
    assert (first.epoch, second.epoch) == (1.0, 2.0)
    assert {"accuracy", "f1_macro", "f1_weighted", "loss"} <= set(second.metrics)
    assert not {"runtime", "samples_per_second", "steps_per_second"} & set(second.metrics)
    assert recorder.events[-1].run_dir == model_run.run_dir


class Broken:
    """A model whose custom engine reports an evaluation, makes its run directory and fails."""

    def __init__(self) -> None:
        self.jobs: list = []

    @zoo.hookimpl
    def register_models(self, register):
        register(
            zoo.ModelSpec(
                name="broken",
                description="an engine that fails",
                source=zoo.NoWeights(),
                family="other",
                resources=zoo.Resources(methods=("full",)),
                engine=zoo.CustomEngine(train=self.train, predict=lambda *_: None),
            )
        )

    def train(self, job, make_run_dir, progress):
        self.jobs.append(job)
        job.events.evaluated(step=3, epoch=0.5, metrics={"accuracy": 0.5, "per_class": {}})
        make_run_dir()
        raise RuntimeError("the engine broke")


def test_a_failed_run_says_why_after_its_run_json_does(pm, write_recipe):
    seen: list[str] = []

    class Notifier:
        @zoo.hookimpl
        def register_run_listeners(self, register):
            def listener(event):
                if isinstance(event, zoo.RunFailed):
                    record = json.loads((event.run_dir / "run.json").read_text(encoding="utf-8"))
                    seen.append(record["status"])

            register(listener)

    recorder = Recorder()
    pm.register(Broken(), name="broken")
    pm.register(recorder, name="recorder")
    pm.register(Notifier(), name="notifier")
    [model_run] = run(pm, _broken(write_recipe))

    assert model_run.status == "failed"
    assert recorder.kinds() == ["RunStarted", "RunEvaluated", "RunFailed"]
    evaluated, failed = recorder.events[1:]
    assert evaluated.metrics == {"accuracy": 0.5}  # numbers only
    assert (failed.status, failed.reason) == ("failed", "RuntimeError: the engine broke")
    assert isinstance(failed.error, RuntimeError)
    assert failed.run_dir == model_run.run_dir and failed.run_dir.is_dir()
    assert seen == ["failed"]


def _broken(write_recipe) -> Path:
    return write_recipe(
        """\
        [run]
        name = "events"
        output_dir = "runs"

        [data]
        train = "train.csv"
        test = "test.csv"
        validation = 0.34

        [[models]]
        model = "broken"
        """
    )


def test_the_engine_trains_on_the_device_the_probes_found(pm, write_recipe):
    class Probe:
        @zoo.hookimpl
        def register_device_probes(self, register):
            register(lambda: zoo.DeviceMemory(name="the probed CPU", kind="cpu", available=2**34))

    engine = Broken()
    pm.register(engine, name="broken")
    pm.register(Probe(), name="probe")
    run(pm, _broken(write_recipe))
    [job] = engine.jobs
    assert job.device == zoo.DeviceInfo("cpu", "the probed CPU", False)


def test_a_listener_that_raises_costs_no_run(pm, write_recipe, capsys):
    import zoo_plugins.tfidf

    class Faulty:
        @zoo.hookimpl
        def register_run_listeners(self, register):
            register(lambda event: 1 / 0)

    recorder = Recorder()
    pm.register(zoo_plugins.tfidf, name="zoo_plugins.tfidf")
    pm.register(recorder, name="recorder")
    pm.register(Faulty(), name="faulty-tracker")
    [model_run] = run(pm, tfidf_recipe(write_recipe))

    assert model_run.status == "ok"
    assert recorder.kinds() == ["RunStarted", "RunEvaluated", "RunFinished"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "faulty" in line]
    assert warnings == [
        f"warning: the run listener of plugin 'faulty-tracker' failed on {kind}: "
        "ZeroDivisionError: division by zero; the run goes on"
        for kind in ("RunStarted", "RunEvaluated", "RunFinished")
    ]


def test_a_plugin_that_fails_to_register_listeners_is_warned_about(pm, capsys):
    class Broken:
        @zoo.hookimpl
        def register_run_listeners(self, register):
            raise RuntimeError("no tracking server")

    pm.register(Broken(), name="tracker")
    pm.register(Recorder(), name="recorder")
    assert [name for name, _ in collect_run_listeners(pm).listeners] == ["recorder"]
    assert capsys.readouterr().err == (
        "warning: plugin 'tracker' failed to register its run listeners: RuntimeError: no "
        "tracking server; it hears no events\n"
    )


def test_events_reach_listeners_in_the_main_process_only(monkeypatch):
    heard: list = []
    listeners = RunListeners((("recorder", heard.append),))
    event = zoo.RunStarted(
        run_name="r", model="m", seed=1, method="full", registered_model="m", settings={}
    )
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    listeners.emit(event)
    assert heard == []
    monkeypatch.setenv("RANK", "0")
    listeners.emit(event)
    assert heard == [event]


def test_events_are_public_attrs_classes():
    import attrs

    for kind in (zoo.RunStarted, zoo.RunEvaluated, zoo.RunFinished, zoo.RunFailed):
        assert issubclass(kind, zoo.RunEvent) and attrs.has(kind)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        zoo.RunEvaluated(
            run_name="r", model="m", seed=1, method="full", step=1, epoch=None, metrics={}
        ).step = 2


def readme_example(hook: str) -> str:
    """The Python example of the README section whose heading names `hook`."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = re.search(rf"^### `{hook}`.*?\n(.*?)(?=^##)", readme, re.S | re.M)
    assert section, f"README has no section for {hook}"
    return re.search(r"```python\n(.*?)```", section[1], re.S)[1]


def test_the_readme_s_json_lines_tracker_records_a_run(pm, write_recipe, tmp_path, monkeypatch):
    import zoo_plugins.tfidf

    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("ZOO_EVENTS_LOG", str(log))
    tracker = types.ModuleType("readme_tracker")
    exec(readme_example("register_run_listeners"), tracker.__dict__)
    pm.register(zoo_plugins.tfidf, name="zoo_plugins.tfidf")
    pm.register(tracker, name="readme-tracker")
    [model_run] = run(pm, tfidf_recipe(write_recipe))

    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [line["event"] for line in lines] == ["RunStarted", "RunEvaluated", "RunFinished"]
    assert lines[-1]["run_dir"] == str(model_run.run_dir)
    assert lines[-1]["metrics"]["test"] == model_run.metrics["test"]
