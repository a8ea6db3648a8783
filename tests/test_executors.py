"""Work units and executors: a recipe's units (model x seed x fold x trial) run N at a time in
subprocesses, as submitit jobs or Ray tasks, with the same units, records and best trial; only
the coordinator writes the results store; a killed coordinator loses nothing (--skip-done)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_search import LEARNING_RATES, write_search
from tiny_models import write_demo_slice

import zoo
from zoo.cli import main
from zoo.executors import cpu_share, unit_environment
from zoo.store import STORE_NAME, ResultsStore

ROOT = Path(__file__).resolve().parents[1]

TFIDF = """\
[run]
name = "units"
output_dir = "runs"
seeds = [1, 2]

[data]
train = "train.csv"
test = "test.csv"

[[models]]
model = "tfidf"

[[models]]
model = "tfidf"
name = "tfidf-balanced"
class_weights = "balanced"
"""


def coordinate_tfidf(tmp_path: Path, executor) -> list:
    """The 4 TF-IDF units of TFIDF through `executor`, `jobs` 2, in this process."""
    from zoo.api import Plugins, prepare
    from zoo.coordinator import coordinate
    from zoo.runner import RunOptions

    write_demo_slice(tmp_path)
    path = tmp_path / "recipe.toml"
    path.write_text(TFIDF, encoding="utf-8")
    plugins = Plugins.load(warn=False)
    recipe = plugins.recipe(path)
    folder = tmp_path / "units"
    folder.mkdir()
    return coordinate(
        recipe,
        plugins.registry,
        prepare(recipe, plugins),
        RunOptions(metrics=plugins.metrics.metrics),
        executor=executor,
        jobs=2,
        folder=folder,
        skip_done=False,
        say=lambda _text: None,
    )


def run_json(*args: str) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", *args, "--json"]) == 0
    return json.loads(out.getvalue())["runs"]


def trials(runs: list[dict]) -> list[tuple]:
    """What must be the same whatever ran them: each trial's values, scores and choice."""
    return sorted(
        (
            r["trial"],
            r["params"]["learning_rate"],
            r["best"],
            r["metrics"]["validation"]["f1_macro"],
        )
        for r in runs
    )


def store_of(directory: Path) -> list:
    return ResultsStore.read_only(directory / "runs" / STORE_NAME).runs()


# ---------------------------------------------------------------------------------------------
# The environment of a local unit


def test_local_units_split_the_cores_or_take_a_gpu_each(monkeypatch):
    assert cpu_share(2, cores=16) == 8 and cpu_share(3, cores=2) == 1
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    cpu = unit_environment(slot=1, jobs=2, gpus=0)
    assert cpu["OMP_NUM_THREADS"] == str(cpu_share(2)) and "CUDA_VISIBLE_DEVICES" not in cpu
    assert unit_environment(slot=3, jobs=4, gpus=2)["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # the GPUs this process was given
    assert unit_environment(slot=0, jobs=2, gpus=2)["CUDA_VISIBLE_DEVICES"] == "4"
    assert unit_environment(slot=1, jobs=2, gpus=2)["CUDA_VISIBLE_DEVICES"] == "6"
    # A distributed unit of 2 processes takes 2 GPUs; on a CPU its processes share its cores.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert unit_environment(slot=1, jobs=2, gpus=4, nproc=2)["CUDA_VISIBLE_DEVICES"] == "2,3"
    two = unit_environment(slot=0, jobs=2, gpus=0, nproc=2)
    assert two["OMP_NUM_THREADS"] == str(cpu_share(4))


def test_an_unknown_executor_is_one_clear_error(write_recipe, capsys):
    path = write_recipe()
    assert main(["run", str(path), "--executor", "rey"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown executor 'rey'\n  hint: did you mean 'ray'?")
    assert "Traceback" not in err


def test_a_missing_executor_library_says_which_extra_installs_it(write_recipe, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import fails
    assert main(["run", str(write_recipe()), "--executor", "submitit"]) == 2
    err = capsys.readouterr().err
    assert "error: the 'submitit' executor needs submitit, which is not installed" in err
    assert 'pip install "zoo-classify[slurm]"' in err


# ---------------------------------------------------------------------------------------------
# The same units through every executor


@pytest.fixture(scope="module")
def in_process(tmp_path_factory, tiny_bert):
    directory = tmp_path_factory.mktemp("in-process")
    return run_json(str(write_search(directory, LEARNING_RATES, tiny_bert)))


# The lowest env (the oldest transformers and datasets) runs the local executor alone: submitit
# and Ray hand the same unit files to the same worker, which those versions do not touch.
@pytest.mark.slow
@pytest.mark.parametrize(
    "how",
    [
        pytest.param(["--jobs", "2"], id="local"),
        pytest.param(
            ["--jobs", "2", "--executor", "submitit"], id="submitit", marks=pytest.mark.exhaustive
        ),
        pytest.param(["--jobs", "2", "--executor", "ray"], id="ray", marks=pytest.mark.exhaustive),
    ],
)
def test_every_executor_gives_the_same_units_records_and_best_trial(
    in_process, how, tmp_path, tiny_bert
):
    path = write_search(tmp_path, LEARNING_RATES, tiny_bert)
    if "submitit" in how:  # the same path as on SLURM, without a cluster
        text = path.read_text(encoding="utf-8") + '\n[executor]\ncluster = "local"\n'
        path.write_text(text, encoding="utf-8")
    if "ray" in how:  # a local Ray of 2 CPUs, whatever the machine has
        text = path.read_text(encoding="utf-8") + "\n[executor]\ncpus = 2\n"
        path.write_text(text, encoding="utf-8")
    runs = run_json(str(path), *how)
    assert trials(runs) == trials(in_process)
    records = store_of(tmp_path)
    assert sorted((r.trial, r.best) for r in records) == [(t, b) for t, _lr, b, _f1 in trials(runs)]
    assert all(r.status == "ok" for r in records)
    # Each unit wrote its run directory; the coordinator alone recorded them.
    assert sorted(r.run_dir for r in records) == sorted(r["run_dir"] for r in runs)


# ---------------------------------------------------------------------------------------------
# Failures, kills and --skip-done


@pytest.mark.slow
def test_skip_done_runs_nothing_twice(tmp_path, capsys):
    write_demo_slice(tmp_path)
    path = tmp_path / "recipe.toml"
    path.write_text(TFIDF, encoding="utf-8")
    first = run_json(str(path), "--jobs", "2")
    assert sorted((r["model"], r["seed"]) for r in first) == [
        ("tfidf", 1),
        ("tfidf", 2),
        ("tfidf-balanced", 1),
        ("tfidf-balanced", 2),
    ]
    capsys.readouterr()
    assert run_json(str(path), "--skip-done") == []
    assert "4 unit(s) finished before, left out (--skip-done)" in capsys.readouterr().err
    assert len(store_of(tmp_path)) == 4


@pytest.mark.slow
def test_a_killed_coordinator_loses_nothing_and_skip_done_finishes_the_rest(
    in_process, tmp_path, tiny_bert, capsys
):
    path = write_search(tmp_path, LEARNING_RATES, tiny_bert)
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "zoo", "run", str(path), "--jobs", "1", "--executor", "local"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its group: the coordinator and its worker
    )
    deadline = time.monotonic() + 300
    store = tmp_path / "runs" / STORE_NAME
    while time.monotonic() < deadline:
        if store.is_file() and len(ResultsStore.read_only(store).runs()) >= 2:
            break
        assert coordinator.poll() is None, "the coordinator ended before it could be killed"
        time.sleep(0.2)
    os.killpg(coordinator.pid, signal.SIGKILL)  # no chance to clean up
    coordinator.wait()
    before = store_of(tmp_path)
    assert 2 <= len(before) < 4
    rest = run_json(str(path), "--skip-done", "--jobs", "1")
    assert sorted(r["trial"] for r in rest) == [t for t in range(1, 5) if t > len(before)]
    after = store_of(tmp_path)
    # Every trial recorded once, the killed run's records untouched, one best chosen over all
    # four trials with the same values a run that was never killed tried.
    assert sorted(r.trial for r in after) == [1, 2, 3, 4]
    assert [(r.run_id, r.run_dir) for r in after[: len(before)]] == [
        (r.run_id, r.run_dir) for r in before
    ]
    expected = {t: (lr, b) for t, lr, b, _f1 in trials(in_process)}
    assert {r.trial: (r.params["learning_rate"], r.best) for r in after} == expected


@pytest.mark.slow
def test_a_unit_can_itself_be_a_distributed_run(tmp_path, tiny_bert):
    path = write_search(tmp_path, LEARNING_RATES, tiny_bert)
    text = path.read_text(encoding="utf-8").split("[search]")[0]  # one unit, no search
    path.write_text(text, encoding="utf-8")
    (run,) = run_json(str(path), "--executor", "local", "--nproc", "2")
    assert run["status"] == "ok"
    record = json.loads((Path(run["run_dir"]) / "run.json").read_text(encoding="utf-8"))
    assert record["processes"] == 2  # trained by 2 processes (gloo on a CPU)
    assert [r.run_dir for r in store_of(tmp_path)] == [run["run_dir"]]  # recorded once


def test_a_unit_whose_worker_fails_is_recorded_failed_and_the_others_go_on(tmp_path):
    from zoo.units import run_unit_file

    class Inline:
        """Runs each unit at once, in this process; the second unit's worker dies."""

        def submit(self, unit_file, slot):
            if unit_file.name.endswith("0002.json"):
                return (unit_file, "killed by the scheduler (out of time)")
            run_unit_file(unit_file)
            return (unit_file, None)

        def done(self, handle):
            return True

        def failure(self, handle):
            return handle[1]

        def cancel(self, handle):
            raise AssertionError("nothing to cancel")

        def close(self):
            pass

    runs = coordinate_tfidf(tmp_path, Inline())
    assert [r.status for r in runs] == ["ok", "failed", "ok", "ok"]
    assert runs[1].reason == ("the unit's worker failed: killed by the scheduler (out of time)")
    recorded = store_of(tmp_path)
    assert [(r.model, r.seed, r.status) for r in recorded] == [
        ("tfidf", 1, "ok"),
        ("tfidf-balanced", 1, "failed"),
        ("tfidf", 2, "ok"),
        ("tfidf-balanced", 2, "ok"),
    ]
    assert zoo.Results(runs).exit_code == 1


# ---------------------------------------------------------------------------------------------
# The hook


class InlineExecutor:
    """An executor that runs each unit at once, in this process (a plugin's, for the test)."""

    started: list[str] = []

    def __init__(self, settings, folder, jobs):
        self.jobs = jobs

    def submit(self, unit_file, slot):
        from zoo.units import run_unit_file

        InlineExecutor.started.append(unit_file.name)
        run_unit_file(unit_file)
        return unit_file

    def done(self, handle):
        return True

    def failure(self, handle):
        return None

    def cancel(self, handle):
        pass

    def close(self):
        pass


class InlinePlugin:
    @zoo.hookimpl
    def register_executors(self, register):
        register(
            zoo.ExecutorSpec(name="inline", description="in this process", make=InlineExecutor)
        )


class Duplicate:
    @zoo.hookimpl
    def register_executors(self, register):
        register(zoo.ExecutorSpec(name="ray", description="another ray", make=InlineExecutor))


@pytest.mark.slow
def test_hook_register_executors(tmp_path, monkeypatch):
    import zoo.plugins
    from zoo.executors import collect_executors

    pm = zoo.plugins.get_plugin_manager(entry_points=False)
    pm.register(InlinePlugin(), name="inline-plugin")
    assert list(collect_executors(pm).specs) == ["local", "submitit", "ray", "inline"]
    monkeypatch.setattr(zoo.plugins, "get_plugin_manager", lambda **_kwargs: pm)
    write_demo_slice(tmp_path)
    path = tmp_path / "recipe.toml"
    path.write_text(TFIDF + '\n[executor]\nname = "inline"\n', encoding="utf-8")
    results = zoo.run(path)
    assert [r.status for r in results] == ["ok"] * 4
    assert InlineExecutor.started == [f"unit-000{i}.json" for i in range(1, 5)]
    assert len(store_of(tmp_path)) == 4
    # A name registered already is refused, unless the plugin replaces it on purpose.
    pm.register(Duplicate(), name="duplicate")
    with pytest.raises(zoo.PluginError, match="registers the executor 'ray'"):
        collect_executors(pm)


def test_ctrl_c_stops_the_running_units_and_says_which_finished(tmp_path, capsys):
    from zoo.units import run_unit_file

    class Interrupted:
        """The first unit finishes; Ctrl-C comes while the second runs."""

        cancelled: list[str] = []

        def submit(self, unit_file, slot):
            if unit_file.name.endswith("0001.json"):
                run_unit_file(unit_file)
            return unit_file

        def done(self, handle):
            if handle.name.endswith("0002.json"):
                raise KeyboardInterrupt
            return True

        def failure(self, handle):
            return None

        def cancel(self, handle):
            Interrupted.cancelled.append(handle.name)

        def close(self):
            pass

    with pytest.raises(KeyboardInterrupt):
        coordinate_tfidf(tmp_path, Interrupted())
    assert Interrupted.cancelled == ["unit-0002.json"]
    err = capsys.readouterr().err
    assert (
        "interrupted: 1 unit(s) finished and are recorded (tfidf); 1 stopped; run again with "
        "--skip-done" in err
    )
    assert [(r.model, r.seed) for r in store_of(tmp_path)] == [("tfidf", 1)]


def test_where_units_run_is_no_part_of_the_recipe_hash(tmp_path):
    from zoo.api import Plugins
    from zoo.runner import recipe_identity

    write_demo_slice(tmp_path)
    plain, elsewhere = tmp_path / "plain.toml", tmp_path / "elsewhere.toml"
    plain.write_text(TFIDF, encoding="utf-8")
    elsewhere.write_text(TFIDF + '\n[executor]\nname = "ray"\njobs = 4\n', encoding="utf-8")
    plugins = Plugins.load(warn=False)
    hashes = [
        recipe_identity(plugins.recipe(p), plugins.registry).recipe_hash for p in (plain, elsewhere)
    ]
    assert hashes[0] == hashes[1]
    other = tmp_path / "other.toml"
    other.write_text(TFIDF.replace("seeds = [1, 2]", "seeds = [1, 3]"), encoding="utf-8")
    assert recipe_identity(plugins.recipe(other), plugins.registry).recipe_hash != hashes[0]


def test_a_changed_plugin_default_is_another_recipe(tmp_path):
    # --skip-done and --resume match runs by the recipe hash: a model whose plugin default
    # changed trains differently, so its old runs must not count as this recipe's.
    import attrs

    from zoo.api import Plugins
    from zoo.runner import recipe_identity

    write_demo_slice(tmp_path)
    plugins = Plugins.load(warn=False)

    class ChangedDefault:
        def __init__(self, key, value):
            self.key, self.value = key, value

        def spec_for(self, recipe, entry):
            spec = plugins.registry.spec_for(recipe, entry)
            return attrs.evolve(spec, defaults={**spec.defaults, self.key: self.value})

    def hash_of(text, registry):
        path = tmp_path / "recipe.toml"
        path.write_text(text, encoding="utf-8")
        return recipe_identity(plugins.recipe(path), registry).recipe_hash

    before = hash_of(TFIDF, plugins.registry)
    assert hash_of(TFIDF, ChangedDefault("learning_rate", 0.5)) != before
    # A setting the recipe gives itself leaves the plugin's default without effect.
    given = TFIDF + "\n[training]\nlearning_rate = 0.1\n"
    assert hash_of(given, ChangedDefault("learning_rate", 0.5)) == hash_of(given, plugins.registry)


@pytest.mark.slow
def test_a_run_directory_s_recipe_trains_its_one_run_here(tmp_path):
    write_demo_slice(tmp_path)
    path = tmp_path / "recipe.toml"
    path.write_text(TFIDF + '\n[executor]\nname = "local"\njobs = 2\n', encoding="utf-8")
    runs = run_json(str(path))
    assert len(runs) == 4
    import tomllib

    kept = tomllib.loads((Path(runs[0]["run_dir"]) / "recipe.toml").read_text(encoding="utf-8"))
    assert "executor" not in kept and "search" not in kept
