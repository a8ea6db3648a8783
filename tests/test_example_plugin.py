"""Third-party plugins: found through the entry-point group "zoo" of an installed distribution."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "zoo-plugin-example"


def zoo_json(*args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "zoo", *args, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return json.loads(done.stdout)


def fake_install(site: Path) -> None:
    """What `pip install` leaves behind for the example: its module and a dist-info folder with
    the entry point, so the test sees the same discovery path without building anything."""
    shutil.copy(EXAMPLE / "zoo_plugin_example.py", site)
    dist_info = site / "zoo_plugin_example-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: zoo-plugin-example\nVersion: 0.1.0\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        "[zoo]\nexample = zoo_plugin_example\n", encoding="utf-8"
    )


def test_a_distribution_with_a_zoo_entry_point_adds_its_models(tmp_path):
    fake_install(tmp_path)
    env = {"PYTHONPATH": str(tmp_path), "ZOO_PLUGINS": "example"}

    models = {m["name"]: m for m in zoo_json("models", env=env)["models"]}
    assert models["klue-roberta-small"]["plugin"] == "example"
    assert models["klue-roberta-small"]["source"] == "klue/roberta-small"
    assert {"e5-small", "minilm"} <= set(models)

    plugins = {p["name"]: p for p in zoo_json("plugins", env=env)["plugins"]}
    assert plugins["example"]["from"] == "zoo-plugin-example 0.1.0"
    assert plugins["example"]["models"] == ["klue-roberta-small"]


def test_a_blocked_plugin_is_listed_but_adds_nothing(tmp_path):
    fake_install(tmp_path)
    env = {"PYTHONPATH": str(tmp_path), "ZOO_BLOCK_PLUGINS": "example"}

    assert "klue-roberta-small" not in {m["name"] for m in zoo_json("models", env=env)["models"]}
    plugins = {p["name"]: p for p in zoo_json("plugins", env=env)["plugins"]}
    assert plugins["example"]["status"] == "blocked"


def test_the_installed_example_plugin_is_listed():
    """Runs for real in `tox -e example-plugin`, which pip-installs examples/zoo-plugin-example."""
    if importlib.util.find_spec("zoo_plugin_example") is None:
        if os.environ.get("ZOO_REQUIRE_EXAMPLE_PLUGIN") == "1":
            pytest.fail("the example plugin should be installed in this environment")
        pytest.skip("examples/zoo-plugin-example is not installed here (tox -e example-plugin)")
    models = {m["name"]: m for m in zoo_json("models")["models"]}
    assert models["klue-roberta-small"]["plugin"] == "example"


def test_a_recipe_selects_by_the_example_plugins_mcc(tmp_path, tiny_bert):
    """With the example installed, training.metric = "mcc" trains, picks the best checkpoint
    by MCC, and `zoo run --json` carries metrics.test.mcc."""
    from tiny_models import DEMO_DATA

    fake_install(tmp_path)
    env = {"PYTHONPATH": str(tmp_path), "ZOO_PLUGINS": "example"}
    if importlib.util.find_spec("zoo_plugin_example") is not None:  # tox -e example-plugin
        env = {}
    recipe = tmp_path / "mcc.toml"
    recipe.write_text(
        f'[run]\nname = "mcc"\noutput_dir = "{(tmp_path / "runs").as_posix()}"\n\n'
        f'[data]\ntrain = "{(DEMO_DATA / "train.csv").as_posix()}"\n'
        f'test = "{(DEMO_DATA / "test.csv").as_posix()}"\n\n'
        f'[[models]]\nmodel = "minilm"\ncheckpoint = "{tiny_bert.as_posix()}"\n\n'
        '[training]\nmetric = "mcc"\nmax_steps = 4\nbatch_size = 16\nmax_length = 32\n'
        "early_stopping_patience = 0\n",
        encoding="utf-8",
    )
    [run] = zoo_json("run", str(recipe), env=env)["runs"]
    assert run["status"] == "ok"
    assert -1 <= run["metrics"]["test"]["mcc"] <= 1
    run_dir = Path(run["run_dir"])
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["settings"]["metric"] == "mcc"
    history = json.loads((run_dir / "log_history.json").read_text(encoding="utf-8"))
    assert any("eval_mcc" in entry for entry in history)  # what picked the best checkpoint
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test"]["mcc"] == run["metrics"]["test"]["mcc"]


def test_the_example_plugins_transform_is_applied_in_training_and_predict(tmp_path):
    """data.preprocess = ["mask-paths"] (the example's text transform) masks the paths of the
    training texts, and zoo predict masks those of its input: two inputs that differ in their
    paths alone get the same probabilities."""
    fake_install(tmp_path)
    env = {"PYTHONPATH": str(tmp_path), "ZOO_PLUGINS": "example"}
    if importlib.util.find_spec("zoo_plugin_example") is not None:  # tox -e example-plugin
        env = {}
    lines = ["text,label"]
    for i in range(12):
        lines.append(f'"File ""/home/user{i}/app{i}.py"", line {i}: NameError",code')
        lines.append(f"the page at our site is blank again {i},web")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "test.csv").write_text(
        'text,label\n"File ""/srv/x/y.py"", line 1: KeyError",code\nthe page is blank,web\n',
        encoding="utf-8",
    )
    recipe = tmp_path / "paths.toml"
    recipe.write_text(
        f'[run]\nname = "paths"\noutput_dir = "{(tmp_path / "runs").as_posix()}"\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\npreprocess = ["mask-paths"]\n'
        '[[models]]\nmodel = "tfidf"\n',
        encoding="utf-8",
    )
    [run] = zoo_json("run", str(recipe), env=env)["runs"]
    assert run["status"] == "ok"
    run_dir = Path(run["run_dir"])
    predictions = (run_dir / "predictions.csv").read_text(encoding="utf-8")
    assert '"File ""[PATH]"", line 1: KeyError"' in predictions and "/srv/" not in predictions

    (tmp_path / "new.csv").write_text(
        "text\nerror in /a/b/main.py\nerror in /zzz/qqq/www/other_name.rs\n", encoding="utf-8"
    )
    subprocess.run(
        [sys.executable, "-m", "zoo", "predict", str(run_dir), "--input", "new.csv"]
        + ["--output", "out.csv", "--proba"],
        cwd=tmp_path,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    header, first, second = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert header == "label,proba_code,proba_web"
    assert first == second  # both read "error in [PATH]"
