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
    assert main([*args, "--output", str(output)]) == 2
    assert output.read_text(encoding="utf-8") == "precious\n"
    assert f"error: {output} exists already; zoo does not overwrite it" in capsys.readouterr().err
    assert main([*args, "--output", str(output), "--force"]) == 0
    assert output.read_text(encoding="utf-8").startswith("label\n")


def test_a_directory_that_is_not_a_run_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "input.csv").write_text("text\nhello\n", encoding="utf-8")
    code = main(
        ["predict", str(tmp_path), "--input", str(tmp_path / "input.csv"), "--output", "x.csv"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path} is not a zoo run directory: it has no run.json\n")


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
        "  hint: give --text-column the name of the column with the texts\n"
    )
    assert not (tmp_path / "out.csv").exists()
    # The option named in the hint is the way out: the same input, its column named.
    code = main([*args, "--output", str(tmp_path / "out.csv"), "--text-column", "body"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[0] == "label"


# --- the command line: options, and what is refused before anything is written ------------------


def predict(capsys, run_dir, input_path, output, *extra) -> tuple[int, str]:
    code = main(
        ["predict", str(run_dir), "--input", str(input_path), "--output", str(output), *extra]
    )
    return code, capsys.readouterr().err


def test_an_output_in_a_folder_that_does_not_exist_is_refused(trained, tmp_path, capsys):
    directory, runs = trained
    output = tmp_path / "no" / "such" / "submission.csv"
    code, err = predict(capsys, runs["tfidf"], directory / "test.csv", output)
    assert code == 2
    assert err == (
        f"error: --output {output}: the folder {output.parent} does not exist\n"
        "  hint: make the folder first, or give --output a file in a folder that exists\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_is_a_folder_is_refused(trained, tmp_path, capsys):
    directory, runs = trained
    (tmp_path / "out").mkdir()
    code, err = predict(capsys, runs["tfidf"], directory / "test.csv", tmp_path / "out", "--force")
    assert code == 2
    assert err == (
        f"error: --output {tmp_path / 'out'} is a folder; give the file to write\n"
        f"  hint: e.g. --output {tmp_path / 'out' / 'submission.csv'}\n"
    )
    assert [p.name for p in tmp_path.rglob("*")] == ["out"]


def test_an_id_column_named_like_the_label_column_is_refused(trained, tmp_path, capsys):
    """The submission's header would be `label,label`."""
    _directory, runs = trained
    (tmp_path / "input.csv").write_text("label,text\n7,서버가 안 돼요\n", encoding="utf-8")
    output = tmp_path / "out.csv"
    code, err = predict(
        capsys, runs["tfidf"], tmp_path / "input.csv", output, "--id-column", "label"
    )
    assert code == 2
    assert err == (
        "error: --id-column 'label' is the run's label column: the output would have two "
        "columns named 'label'\n"
        "  hint: copy another column of the input, or leave --id-column out\n"
    )
    assert not output.exists()


def test_text_column_and_encoding_read_an_input_unlike_the_training_data(trained, tmp_path, capsys):
    directory, runs = trained
    rows = read_rows(directory / "test.csv")
    with (tmp_path / "other.csv").open("w", encoding="cp949", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "body"])
        writer.writerows([row["id"], row["text"]] for row in rows)
    expected, got = tmp_path / "expected.csv", tmp_path / "got.csv"
    assert (
        predict(capsys, runs["tfidf"], directory / "test.csv", expected, "--id-column", "id")[0]
        == 0
    )
    code, err = predict(
        capsys,
        runs["tfidf"],
        tmp_path / "other.csv",
        got,
        "--id-column",
        "key",
        "--text-column",
        "body",
        "--encoding",
        "cp949",
    )
    assert code == 0, err
    assert [r["label"] for r in read_rows(got)] == [r["label"] for r in read_rows(expected)]
    assert [r["key"] for r in read_rows(got)] == [r["id"] for r in rows]


def test_an_unknown_encoding_is_refused(trained, tmp_path, capsys):
    directory, runs = trained
    output = tmp_path / "out.csv"
    code, err = predict(
        capsys, runs["tfidf"], directory / "test.csv", output, "--encoding", "latin-9"
    )
    assert code == 2
    assert err == (
        "error: --encoding 'latin-9' is none of zoo's encodings\n"
        "  hint: use one of auto, utf-8, utf-8-sig, cp949, euc-kr\n"
    )
    assert not output.exists()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('truncation = "middle"', "training.truncation is 'middle', none of head, tail"),
        ('truncation = "chunks"\nchunk_stride = "8"', "training.chunk_stride is '8', not a number"),
        ('truncation = "chunks"\nchunk_stride = -1', "training.chunk_stride is -1, not a number"),
    ],
)
def test_a_damaged_cut_in_the_run_directory_is_refused(trained, tmp_path, capsys, line, problem):
    # Another cut than training's would score other tokens than the run's model learned from.
    import shutil

    directory, runs = trained
    run_dir = tmp_path / "run"
    shutil.copytree(runs["finbert"], run_dir)
    recipe = run_dir / "recipe.toml"
    recipe.write_text(recipe.read_text().replace("[training]\n", f"[training]\n{line}\n", 1))
    output = tmp_path / "out.csv"
    code, err = predict(capsys, run_dir, directory / "test.csv", output)
    assert code == 2
    assert err.startswith(f"error: {recipe}: {problem}")
    assert not output.exists()
