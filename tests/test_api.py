"""The Python API (`zoo.run`, `zoo.check`, `zoo.compare`, `zoo.load_run`, `zoo.predict`): the
same road as the command line, returning objects that convert to pandas and draw themselves in
Jupyter; problems raise `zoo.ZooError` subclasses with the messages the CLI prints."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from tiny_models import read_rows, write_demo_slice

import zoo
from zoo.api import Plugins
from zoo.cli import main
from zoo.report import LineProgress, RichProgress, progress_for

ROOT = Path(__file__).resolve().parents[1]

RECIPE = """\
[run]
name = "api"
output_dir = "runs"

[data]
train = "train.csv"
test = "test.csv"

[[models]]
model = "tfidf"

[[models]]
model = "finbert"
checkpoint = "{checkpoint}"
learning_rate = 5e-3

[training]
max_steps = 20
batch_size = 8
max_length = 64
"""


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def plain(html: str) -> str:
    """The text of an HTML fragment, entities decoded."""
    import html as html_lib

    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))


@pytest.fixture(scope="module")
def ran(tmp_path_factory, tiny_bert):
    """The same recipe run once through the API (from its text) and once through the CLI
    (from its file), each into its own folder."""
    api_dir, cli_dir = tmp_path_factory.mktemp("api"), tmp_path_factory.mktemp("cli")
    text = RECIPE.format(checkpoint=tiny_bert)
    for directory in (api_dir, cli_dir):
        write_demo_slice(directory)
    (cli_dir / "recipe.toml").write_text(text, encoding="utf-8")
    results = zoo.run(text, base_dir=api_dir)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", str(cli_dir / "recipe.toml"), "--json"]) == 0
    return results, json.loads(out.getvalue()), api_dir, cli_dir


# ---------------------------------------------------------------------------------------------
# Recipes: a path, a TOML string or a dict


def test_a_recipe_path_its_text_and_its_dict_are_the_same_recipe(write_recipe, monkeypatch):
    path = write_recipe()
    text = path.read_text(encoding="utf-8")
    plugins = Plugins.load(warn=False)
    from_file = plugins.recipe(path)
    assert plugins.recipe(text, base_dir=path.parent) == from_file
    assert plugins.recipe(tomllib.loads(text), base_dir=path.parent) == from_file
    # Without base_dir, a text's paths are relative to the working directory.
    monkeypatch.chdir(path.parent)
    assert plugins.recipe(text) == from_file
    assert from_file.path("train.csv") == path.parent / "train.csv"


def test_a_bad_recipe_raises_recipe_error_listing_every_problem_as_the_cli_says_them(
    write_recipe, capsys
):
    bad = """\
[run]
name = "tiny"

[data]
train = "train.csv"
test = "test.csv"

[[models]]
model = "no-such-model"

[training]
epochs = "three"
"""
    path = write_recipe(bad)
    with pytest.raises(zoo.RecipeError) as raised:
        zoo.validate(tomllib.loads(bad), base_dir=path.parent)
    assert [p.path for p in raised.value.problems] == ["models[0].model", "training.epochs"]
    code, _out, err = cli(capsys, "validate", str(path))
    assert code == zoo.RecipeError.exit_code
    # The same problems in the same words; only the name of the recipe differs.
    assert err == f"error: {str(raised.value).replace('<recipe dict>', str(path))}\n"


def test_a_recipe_that_is_neither_path_text_nor_dict_is_a_usage_error():
    with pytest.raises(zoo.UsageError, match="a recipe is a path, a TOML string or a dict"):
        zoo.validate(42)


def test_a_missing_recipe_file_raises_instead_of_exiting(tmp_path):
    with pytest.raises(zoo.RecipeError, match="file not found"):
        zoo.run(tmp_path / "nope.toml")


def test_overrides_as_a_dict_set_the_same_keys_as_set_strings(write_recipe):
    path = write_recipe()
    plugins = Plugins.load(warn=False)
    as_dict = plugins.recipe(path, {"training.epochs": 1, "models[0].learning_rate": 1e-3})
    as_set = plugins.recipe(path, ["training.epochs=1", "models[0].learning_rate=1e-3"])
    assert as_dict == as_set
    assert as_dict.training.epochs == 1
    with pytest.raises(zoo.RecipeError) as raised:
        plugins.recipe(path, {"training": 1, "models[3].epochs": 2})
    assert [p.path for p in raised.value.problems] == [
        "overrides['training']",
        "overrides['models[3].epochs']",
    ]


def test_a_value_set_by_a_dict_is_checked_like_one_in_the_file(write_recipe):
    with pytest.raises(zoo.RecipeError, match="training.epochs"):
        zoo.validate(write_recipe(), overrides={"training.epochs": "one"})


# ---------------------------------------------------------------------------------------------
# zoo.run


@pytest.mark.slow
def test_run_gives_the_cli_runs_scores(ran):
    results, printed, _api_dir, _cli_dir = ran
    assert isinstance(results, zoo.Results)
    assert [r.model for r in results] == ["tfidf", "finbert"]
    assert [r.status for r in results] == ["ok", "ok"] and results.exit_code == 0
    # The same road: the same test scores and intervals as zoo run --json.
    mine = results.to_json()["runs"]
    assert [r["metrics"] for r in mine] == [r["metrics"] for r in printed["runs"]]
    assert [r["vs_best"] for r in mine] == [r["vs_best"] for r in printed["runs"]]


@pytest.mark.slow
def test_results_to_pandas_has_a_row_per_run_with_scores_and_intervals(ran):
    results = ran[0]
    frame = results.to_pandas()
    assert list(frame["model"]) == ["tfidf", "finbert"]
    for run, (_, row) in zip(results, frame.iterrows(), strict=True):
        test = run.metrics["test"]
        assert row["f1_macro"] == test["f1_macro"]
        assert [row["f1_macro_ci95_low"], row["f1_macro_ci95_high"]] == test["ci95"]["f1_macro"]
        assert row["accuracy"] == test["accuracy"]
        assert row["run_dir"] == str(run.run_dir)
    assert frame["split"].tolist() == ["test", "test"]


@pytest.mark.slow
def test_results_draw_the_cli_comparison_table_in_jupyter(ran, render):
    results = ran[0]
    shown = plain(results._repr_html_())
    assert "Comparison (test split; [95% CI]; * best)" in shown
    for run in results:
        score = f"{run.metrics['test']['f1_macro']:.4f}"
        assert re.search(rf"{run.model}\b.*{score}", shown), (run.model, score)
    # The table the CLI prints, line for line (HTML keeps rich's box drawing).
    console = Console(file=io.StringIO(), width=160, color_system=None)
    for table in results.renderables():
        console.print(table)
    for line in console.file.getvalue().splitlines():
        assert line.rstrip() in shown


# ---------------------------------------------------------------------------------------------
# zoo.compare, zoo.load_run


@pytest.mark.slow
def test_compare_gives_the_leaderboard_the_cli_prints(ran, capsys):
    _results, _printed, api_dir, _cli_dir = ran
    board = zoo.compare(api_dir / "runs")
    assert isinstance(board, zoo.Leaderboard)
    code, out, _err = cli(capsys, "compare", "--output-dir", str(api_dir / "runs"), "--csv")
    assert code == 0
    assert board.to_csv() == out
    frame = board.to_pandas()
    expected = pd.read_csv(io.StringIO(out))
    assert list(frame.columns) == list(expected.columns)
    assert frame["model"].tolist() == expected["model"].tolist()
    assert frame["f1_macro"].tolist() == pytest.approx(expected["f1_macro"].tolist())
    code, out, _err = cli(capsys, "compare", "--output-dir", str(api_dir / "runs"), "--json")
    assert board.to_json() == json.loads(out)
    assert board.title in plain(board._repr_html_())


@pytest.mark.slow
def test_the_comparison_page_shows_inline_in_its_own_frame(ran, tmp_path):
    board = zoo.compare(ran[2] / "runs")
    page = board.page()
    assert page.html.startswith("<!DOCTYPE html>") and board.title in page.html
    frame = page._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and "&lt;!DOCTYPE html&gt;" in frame
    saved = page.save(tmp_path / "compare.html")
    assert saved.read_text(encoding="utf-8") == page.html
    with pytest.raises(zoo.UsageError, match="exists"):  # nothing the user had is overwritten
        page.save(saved)


@pytest.mark.slow
def test_load_run_reads_what_zoo_show_prints(ran, capsys):
    run_dir = ran[0][0].run_dir
    run = zoo.load_run(run_dir)
    assert isinstance(run, zoo.Run) and run.status == "ok" and run.model == "tfidf"
    code, out, _err = cli(capsys, "show", str(run_dir), "--json")
    assert {"run": run.record, "metrics": run.metrics} == json.loads(out)
    code, out, _err = cli(capsys, "show", str(run_dir))
    console = Console(file=io.StringIO(), width=160, color_system=None)
    for drawn in run.renderables():
        console.print(drawn)
    assert console.file.getvalue() == out
    # In Jupyter: the run's report, inline, with its pictures.
    shown = run._repr_html_()
    assert shown.startswith("<iframe srcdoc=") and "data:image/png;base64" in shown


def test_load_run_of_a_folder_that_is_no_run_raises(tmp_path):
    with pytest.raises(zoo.UsageError, match="is not a zoo run directory"):
        zoo.load_run(tmp_path)


# ---------------------------------------------------------------------------------------------
# zoo.predict


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tfidf", "finbert"])
def test_predict_gives_what_zoo_predict_writes(ran, model, tmp_path, capsys):
    results, _printed, api_dir, _cli_dir = ran
    run_dir = next(r.run_dir for r in results if r.model == model)
    texts = [row["text"] for row in read_rows(api_dir / "test.csv")]
    predictions = zoo.predict(run_dir, texts)
    output = tmp_path / "out.csv"
    args = ["predict", str(run_dir), "--input", str(api_dir / "test.csv")]
    assert cli(capsys, *args, "--output", str(output), "--proba")[0] == 0
    written = read_rows(output)
    assert list(predictions) == [row["label"] for row in written]
    frame = predictions.to_pandas()
    assert frame.columns.tolist() == ["text", "label"] + [
        f"proba_{label}" for label in predictions.labels
    ]
    assert frame["text"].tolist() == texts
    for label in predictions.labels:
        assert frame[f"proba_{label}"].tolist() == pytest.approx(
            [float(row[f"proba_{label}"]) for row in written], abs=1e-6
        )
    assert frame[[f"proba_{label}" for label in predictions.labels]].sum(axis=1).tolist() == (
        pytest.approx([1.0] * len(texts))
    )


@pytest.mark.slow
def test_predict_reads_texts_as_zoo_predict_reads_a_file(ran, tmp_path, capsys):
    # NFD, surrounding whitespace and a missing-value word, given directly and in a file: the
    # same texts, the same labels and probabilities.
    import unicodedata

    run_dir = next(r.run_dir for r in ran[0] if r.model == "tfidf")
    texts = [
        unicodedata.normalize("NFD", "로그인이 안 돼요"),
        "  파이썬 오류  ",
        "NA",
        'a "quoted" text',
    ]
    given = zoo.predict(run_dir, texts)
    nfc = zoo.predict(run_dir, ["로그인이 안 돼요", "파이썬 오류", "", 'a "quoted" text'])
    assert given.probabilities.tolist() == nfc.probabilities.tolist()
    path = tmp_path / "input.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text"])
        writer.writerows([t] for t in texts)
    out = tmp_path / "out.csv"
    args = ["predict", str(run_dir), "--input", str(path), "--output", str(out), "--proba"]
    assert cli(capsys, *args)[0] == 0
    written = read_rows(out)
    assert list(given) == [row["label"] for row in written]
    for i, row in enumerate(written):
        assert [float(row[f"proba_{label}"]) for label in given.labels] == pytest.approx(
            given.probabilities[i].tolist(), abs=1e-6
        )


@pytest.mark.slow
def test_predict_refuses_what_is_not_a_list_of_texts(ran):
    run_dir = ran[0][0].run_dir
    with pytest.raises(zoo.UsageError, match="texts is one string"):
        zoo.predict(run_dir, "로그인이 안 돼요")
    with pytest.raises(zoo.UsageError, match=r"texts\[1\] is None, not a string"):
        zoo.predict(run_dir, ["로그인이 안 돼요", None])


# ---------------------------------------------------------------------------------------------
# zoo.check


def test_check_gives_the_estimates_zoo_check_prints(capsys):
    recipe = ROOT / "recipes" / "koalpaca-full.toml"
    estimates = zoo.check(recipe, gpu_memory="40GiB")
    assert all(isinstance(e, zoo.Estimate) for e in estimates)
    assert not all(e.fits for e in estimates)
    code, out, _err = cli(capsys, "check", str(recipe), "--gpu-memory", "40GiB", "--json")
    assert code == zoo.WontFit.exit_code
    assert json.loads(out) == {"models": [e.to_json() for e in estimates]}
    shown = plain(estimates[0]._repr_html_())
    assert estimates[0].model in shown and "GPU with 40 GiB" in shown
    assert isinstance(estimates, list)  # drawn one after another in Jupyter
    assert plain(estimates._repr_html_()) == "".join(plain(e._repr_html_()) for e in estimates)


def test_check_takes_a_preset_or_a_memory_size_not_both():
    recipe = ROOT / "recipes" / "koalpaca-full.toml"
    with pytest.raises(zoo.UsageError, match="not both"):
        zoo.check(recipe, gpu="a100-40gb", gpu_memory="40GiB")


# ---------------------------------------------------------------------------------------------
# Progress in notebooks


def test_progress_in_jupyter_without_ipywidgets_is_a_line_per_stage(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    console = Console(file=io.StringIO(), force_jupyter=True, width=100, record=True)
    monkeypatch.setattr("rich.jupyter.display", lambda *_args: None)  # no notebook here
    progress = progress_for(console)("e5-small")
    assert isinstance(progress, LineProgress)
    progress.start("training", 500)
    for _ in range(500):
        progress.advance()
    progress.stop()
    progress.stop()  # a second stop says nothing more
    lines = console.export_text().splitlines()
    assert lines == ["e5-small training: 500 steps", "e5-small training: 500/500 steps done"]


def test_progress_is_a_rich_bar_in_a_terminal_and_in_jupyter_with_ipywidgets(monkeypatch):
    terminal = Console(file=io.StringIO(), force_terminal=True, force_jupyter=False)
    assert isinstance(progress_for(terminal)("m"), RichProgress)
    monkeypatch.setitem(sys.modules, "ipywidgets", type(sys)("ipywidgets"))
    jupyter = Console(file=io.StringIO(), force_jupyter=True)
    assert isinstance(progress_for(jupyter)("m"), RichProgress)


# ---------------------------------------------------------------------------------------------
# The issue's own command


# exhaustive: examples/notebook.ipynb makes the same call (tests/test_notebook.py), so the
# lowest env, which runs a sample, leaves this repeat out.
@pytest.mark.slow
@pytest.mark.exhaustive
def test_the_demo_recipe_runs_from_python_in_two_steps(tmp_path):
    code = (
        "import zoo; r = zoo.run('recipes/demo.toml', overrides={'training.max_steps': 2, "
        f"'run.output_dir': {str(tmp_path)!r}}}); print(r.to_pandas().to_csv(index=False))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(io.StringIO(done.stdout))
    assert frame["model"].tolist() == ["e5-small", "minilm", "tfidf"]
    assert frame["status"].tolist() == ["ok"] * 3
    assert frame["f1_macro"].between(0, 1).all()


# ---------------------------------------------------------------------------------------------
# GPU presets on the command line


def test_check_on_a_preset_refuses_full_fine_tuning_as_its_memory_size_does(capsys):
    recipe = str(ROOT / "recipes" / "koalpaca-full.toml")
    code, out, _err = cli(capsys, "check", recipe, "--gpu", "a100-40gb", "--json")
    by_size, by_size_out, _err = cli(capsys, "check", recipe, "--gpu-memory", "40GiB", "--json")
    assert code == by_size == zoo.WontFit.exit_code
    preset, sized = json.loads(out)["models"], json.loads(by_size_out)["models"]
    assert [m["estimate_bytes"] for m in preset] == [m["estimate_bytes"] for m in sized]
    assert [m["device_bytes"] for m in preset] == [m["device_bytes"] for m in sized]
    assert not any(m["fits"] for m in preset)
    # It says which preset and how much memory it assumed.
    assert {m["device"] for m in preset} == {"NVIDIA A100 40GB (preset a100-40gb: 40.0 GiB)"}
    code, out, _err = cli(capsys, "check", recipe, "--gpu", "a100-40gb")
    assert code == zoo.WontFit.exit_code
    assert "NVIDIA A100 40GB (preset a100-40gb: 40.0 GiB)" in " ".join(out.split())
    assert "a100-40gb GPUs with ZeRO-3" in out  # the planner's "more GPUs" names the preset


def test_an_unknown_preset_is_one_clear_error(capsys):
    recipe = str(ROOT / "recipes" / "koalpaca-full.toml")
    code, out, err = cli(capsys, "check", recipe, "--gpu", "a100")
    assert code == zoo.UsageError.exit_code and out == ""
    assert err.startswith("error: unknown GPU 'a100' (did you mean 'a100-40gb' or 'a100-80gb'?)")
    assert "Traceback" not in err


def test_zoo_gpus_lists_the_presets(capsys):
    from zoo.memory.gpus import PRESETS

    code, out, _err = cli(capsys, "gpus", "--json")
    assert code == 0
    assert [g["name"] for g in json.loads(out)["gpus"]] == [p.name for p in PRESETS]
    code, out, _err = cli(capsys, "gpus")
    assert all(p.name in out for p in PRESETS)


def test_the_readme_table_of_presets_is_the_module_s():
    from zoo.memory.gpus import PRESETS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `([a-z0-9-]+)` \| ([^|]+) \| [0-9.]+ GiB \((\d+) MiB\) \| (yes|no) \| (yes|no) \|$",
        readme,
        re.M,
    )
    assert rows == [
        (
            p.name,
            p.label,
            str(p.memory // 2**20),
            "yes" if p.bf16 else "no",
            "yes" if p.tf32 else "no",
        )
        for p in PRESETS
    ]


# ---------------------------------------------------------------------------------------------
# zoo.models, zoo.record


def test_models_lists_what_zoo_models_prints(capsys):
    found = zoo.models()
    code, out, _err = cli(capsys, "models", "--json")
    assert code == 0 and json.loads(out) == {"models": found.rows()}
    assert "e5-small" in plain(found._repr_html_())
    assert found.to_pandas()["name"].tolist() == [row["name"] for row in found.rows()]


@pytest.mark.slow
def test_record_says_a_run_is_in_the_store_already(ran):
    run_dir = ran[0][0].run_dir
    (done,) = zoo.record([run_dir])
    assert not done.new and done.run_id >= 1 and done.model == "tfidf"
    assert done.store == ran[2] / "runs" / "zoo-results.sqlite"
