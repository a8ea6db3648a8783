"""`zoo predict`: submissions from saved runs match what the run predicted, row by row."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from tiny_models import DEMO_DATA, read_rows

from zoo.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert):
    """One run each of a transformer (a tiny BERT through finbert's plugin) and the TF-IDF
    baseline, on 150 demo rows, with a test file whose ids are not in row order."""
    import json

    import zoo.cli

    directory = tmp_path_factory.mktemp("trained")
    rows = read_rows(DEMO_DATA / "train.csv")
    with (directory / "train.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text", "label"])
        writer.writeheader()
        writer.writerows(rows[:150])
    test = list(reversed(read_rows(DEMO_DATA / "test.csv")[:30]))
    with (directory / "test.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text", "label"])
        writer.writeheader()
        writer.writerows(test)
    (directory / "recipe.toml").write_text(
        f"""
[run]
name = "predict"
output_dir = "runs"

[data]
train = "train.csv"
test = "test.csv"

[[models]]
model = "finbert"
checkpoint = "{tiny_bert}"
learning_rate = 5e-3

[[models]]
model = "tfidf"

[training]
max_steps = 20
batch_size = 8
max_length = 64
""",
        encoding="utf-8",
    )
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert zoo.cli.main(["run", str(directory / "recipe.toml"), "--json"]) == 0
    runs = {r["model"]: Path(r["run_dir"]) for r in json.loads(out.getvalue())["runs"]}
    return directory, runs


@pytest.mark.parametrize("model", ["finbert", "tfidf"])
def test_predict_reproduces_the_predictions_written_at_training_time(trained, model, tmp_path):
    directory, runs = trained
    output = tmp_path / "submission.csv"
    code = main(
        [
            "predict",
            str(runs[model]),
            "--input",
            str(directory / "test.csv"),
            "--output",
            str(output),
            "--id-column",
            "id",
        ]
    )
    assert code == 0
    submission = read_rows(output)
    stored = read_rows(runs[model] / "predictions.csv")
    test = read_rows(directory / "test.csv")
    assert [row["id"] for row in submission] == [row["id"] for row in test]  # order and ids kept
    assert list(submission[0]) == ["id", "label"]
    assert [row["label"] for row in submission] == [row["predicted"] for row in stored]
    if model == "tfidf":  # a model that predicts one class everywhere would prove little
        assert len({row["label"] for row in submission}) >= 2


def test_probabilities_come_one_column_per_label_and_sum_to_one(trained, tmp_path):
    directory, runs = trained
    output = tmp_path / "submission.csv"
    args = ["predict", str(runs["tfidf"]), "--input", str(directory / "test.csv")]
    assert main([*args, "--output", str(output), "--proba"]) == 0
    rows = read_rows(output)
    assert list(rows[0]) == [
        "label",
        "proba_code",
        "proba_remote",
        "proba_system",
        "proba_theory",
        "proba_web",
    ]
    for row in rows:
        probabilities = [float(v) for k, v in row.items() if k.startswith("proba_")]
        assert sum(probabilities) == pytest.approx(1, abs=1e-5)
        assert row["label"] == max(
            (k for k in row if k.startswith("proba_")), key=lambda k: float(row[k])
        ).removeprefix("proba_")


def test_an_existing_output_file_is_never_overwritten(trained, tmp_path, capsys):
    directory, runs = trained
    output = tmp_path / "mine.csv"
    output.write_text("precious\n", encoding="utf-8")
    args = ["predict", str(runs["tfidf"]), "--input", str(directory / "test.csv")]
    assert main([*args, "--output", str(output)]) == 1
    assert output.read_text(encoding="utf-8") == "precious\n"
    assert f"error: {output} exists already; zoo does not overwrite it" in capsys.readouterr().err
    assert main([*args, "--output", str(output), "--force"]) == 0
    assert output.read_text(encoding="utf-8").startswith("label\n")


def test_a_directory_that_is_not_a_run_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "input.csv").write_text("text\nhello\n", encoding="utf-8")
    code = main(
        ["predict", str(tmp_path), "--input", str(tmp_path / "input.csv"), "--output", "x.csv"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path} is not a finished zoo run directory (run.json: ")


def test_zoo_report_writes_the_html_report_with_three_pictures(trained, capsys):
    _directory, runs = trained
    assert main(["report", str(runs["finbert"])]) == 0
    html = (runs["finbert"] / "report.html").read_text(encoding="utf-8")
    err = capsys.readouterr().err
    for name in ("learning_rate.png", "curves.png", "confusion_matrix.png"):
        picture = runs["finbert"] / name
        assert picture.read_bytes().startswith(b"\x89PNG")
        assert f"wrote {picture}" in err
    assert html.count("data:image/png;base64,") == 3


def test_an_input_without_the_text_column_says_which_column_it_needs(trained, tmp_path, capsys):
    _directory, runs = trained
    (tmp_path / "input.csv").write_text("id,body\n1,hello\n", encoding="utf-8")
    args = ["predict", str(runs["tfidf"]), "--input", str(tmp_path / "input.csv")]
    assert main([*args, "--output", str(tmp_path / "out.csv")]) == 3
    assert capsys.readouterr().err == (
        f"error: --input: {tmp_path / 'input.csv'} has no column 'text' (columns: 'id', 'body')\n"
        "  hint: the input needs the text column the model was trained on "
        "(data.text_column of the run's recipe)\n"
    )
    assert not (tmp_path / "out.csv").exists()
