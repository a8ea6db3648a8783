"""`zoo compare --html FILE`: the leaderboard as one self-contained page with pictures.

The runs are small fake run directories (as tests/test_html_report.py builds them) recorded in
a results store, with nasty names: markup characters, quotes, Korean in NFC and NFD.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import unicodedata
from pathlib import Path

import attrs
import pytest
from test_compare_cli import record as record_of
from test_html_report import LABELS, make_run_dir

from zoo.cli import main
from zoo.compare_page import Entry, _vs_best_cell, interval
from zoo.leaderboard import Row, VsBest
from zoo.store import ResultsStore

DATA = "d" * 64
NFD_MODEL = unicodedata.normalize("NFD", "코드-모델")
MODELS = ('e5 "small" <b>&amp;</b>', NFD_MODEL, "minilm")
OTHER_LABELS = ("코드", "웹", "이론", "시스템 운영", "원격")


def add_run(
    out: Path, model: str, seed: int, *, labels=LABELS, ci95=None, seconds=100.0, memory=2**30
) -> Path:
    """A run directory of `model` under `out` and its record in `out`'s results store."""
    run_dir = make_run_dir(out / f"{model}-{seed}".replace("/", "_"))
    metrics = json.loads((run_dir / "metrics.json").read_text("utf-8"))
    record = json.loads((run_dir / "run.json").read_text("utf-8"))
    record["model"] = model
    if labels != LABELS:  # the same scores under other label names
        rename = dict(zip(LABELS, labels, strict=True))
        for split in metrics.values():
            split["per_class"] = {rename[k]: v for k, v in split["per_class"].items()}
            split["confusion_matrix"]["labels"] = list(labels)
    if ci95 is not None:
        metrics["test"]["ci95"] = {"f1_macro": ci95}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False), "utf-8")
    (run_dir / "run.json").write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    run = attrs.evolve(
        record_of(model, seed, None, data=DATA), metrics=metrics, run_dir=str(run_dir)
    )
    ResultsStore.in_dir(out).record(
        attrs.evolve(run, train_seconds=seconds, peak_memory_bytes=memory, parameters=1000)
    )
    return run_dir


def build_store(out: Path) -> dict[str, Path]:
    """Three models: one with an interval recorded, one with Korean labels (NFD name), one with
    two seeds; and a failed run."""
    dirs = {
        "first": add_run(out, MODELS[0], 1, ci95=[0.61, 0.86]),
        "korean": add_run(out, MODELS[1], 1, labels=OTHER_LABELS, seconds=30.0, memory=2**29),
        "minilm-1": add_run(out, MODELS[2], 1, seconds=10.0),
        "minilm-2": add_run(out, MODELS[2], 2, seconds=12.0),
    }
    ResultsStore.in_dir(out).record(record_of("xlmr", 1, None, data=DATA, status="failed"))
    return dirs


def compare_html(out: Path, page: Path, *extra: str) -> int:
    return main(["compare", "--output-dir", str(out), "--html", str(page), *extra])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    dirs = build_store(out)
    page = out / "compare.html"
    assert compare_html(out, page) == 0
    return out, dirs, page, page.read_text("utf-8")


def test_the_page_is_self_contained(written):
    _out, _dirs, _page, text = written
    images = re.findall(r'<img src="([^"]*)"', text)
    assert len(images) == 5
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")
    links = re.findall(r'(?:src|href)\s*=\s*["\']?([^"\'\s>]*)', text, flags=re.IGNORECASE)
    assert all(link.startswith("data:image/png;base64,") for link in links)
    assert "<script" not in text and "<link" not in text and "url(" not in text
    assert "http://" not in text and "https://" not in text


def test_names_are_escaped(written):
    _out, _dirs, _page, text = written
    assert "<b>" not in text
    assert "e5 &quot;small&quot; &lt;b&gt;&amp;amp;&lt;/b&gt;" in text
    assert NFD_MODEL in text  # as recorded: escaped, not mangled


def test_every_row_is_in_the_table_best_first_with_its_interval(written):
    _out, _dirs, _page, text = written
    table = re.search(r'<table class="leaderboard">(.*?)</table>', text, re.S)[1]
    rows = re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', table)
    assert [name for name, _ in rows][-1] == "xlmr"
    cells = {name: re.findall(r"<td>(.*?)</td>", rest) for name, rest in rows}
    first = cells["e5 &quot;small&quot; &lt;b&gt;&amp;amp;&lt;/b&gt;"]
    assert first[3] == "[0.6100, 0.8600]"
    assert cells[NFD_MODEL][3] == "no interval"  # an old run: none recorded
    assert cells["minilm"][1] == "2"
    assert "±" in cells["minilm"][2]
    assert cells["xlmr"][-1] == "failed"


def test_different_label_sets_are_said(written):
    _out, _dirs, _page, text = written
    assert "do not all have the same labels" in text


def test_korean_is_drawn(written):
    _out, _dirs, _page, text = written
    assert "could not be drawn" not in text


def test_a_deleted_or_damaged_run_directory_is_named_and_left_out(tmp_path, capsys):
    dirs = build_store(tmp_path)
    shutil.rmtree(dirs["korean"])
    (dirs["minilm-2"] / "metrics.json").write_text("{not json", "utf-8")
    page = tmp_path / "compare.html"
    assert compare_html(tmp_path, page) == 0
    text = page.read_text("utf-8")
    notes = re.findall(r"<li>(.*?)</li>", re.search(r"<ul class=skipped>(.*?)</ul>", text)[1])
    assert len(notes) == 2
    assert f"run directory {dirs['korean']} does not exist" in notes[0] or any(
        f"run directory {dirs['korean']} does not exist" in n for n in notes
    )
    assert any(f"{dirs['minilm-2'] / 'metrics.json'} is damaged: not JSON" in n for n in notes)
    # minilm's other seed still shows it; the Korean model is in the table, not in the pictures
    assert len(re.findall(r"<img ", text)) == 5
    err = capsys.readouterr().err
    assert err.count("left out of the page's pictures:") == 2
    assert f"wrote {page}" in err


def test_an_existing_page_is_not_replaced_without_force(written, tmp_path, capsys):
    out, _dirs, _page, _text = written
    page = tmp_path / "mine.html"
    page.write_text("keep me", "utf-8")
    assert compare_html(out, page) == 2
    err = capsys.readouterr().err
    assert f"{page} exists already; zoo does not overwrite it" in err
    assert "add --force to replace it" in err
    assert page.read_text("utf-8") == "keep me"
    assert compare_html(out, page, "--force") == 0
    assert page.read_text("utf-8").startswith("<!DOCTYPE html>")


def test_a_page_in_a_missing_folder_or_force_alone_is_refused(written, tmp_path, capsys):
    out, _dirs, _page, _text = written
    assert compare_html(out, tmp_path / "nowhere" / "compare.html") == 2
    assert "the folder" in capsys.readouterr().err
    assert main(["compare", "--output-dir", str(out), "--force"]) == 2
    assert "give --html FILE with it" in capsys.readouterr().err


def test_an_interval_and_a_difference_from_the_leaderboard_are_shown():
    # The leaderboard's own types, as `leaderboard.vs_best` sets them.
    row = Row(
        model="m",
        method="full",
        runs=3,
        seeds=(1, 2, 3),
        split="test",
        scores={"f1_macro": (0.5, 0.01)},
        ci95={"f1_macro": (0.45, 0.55)},
        vs_best=VsBest(
            model="best", metric="f1_macro", diff=-0.02, ci95=(-0.05, 0.01), p_value=0.2, tied=True
        ),
    )
    assert interval(Entry(row=row, name="m"), "f1_macro") == (0.45, 0.55)
    assert _vs_best_cell(row) == "-0.0200 [-0.0500, +0.0100] p 0.200 tied"
    plain = Row(model="m", method="full", runs=3, seeds=(1, 2, 3), split="test")
    assert interval(Entry(row=plain, name="m"), "f1_macro") is None
    assert _vs_best_cell(plain) == "-"
