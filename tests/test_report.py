"""Tables and numbers as the CLI shows them."""

from __future__ import annotations

import pytest

from zoo.report import comparison_table, human_bytes, human_count, human_seconds
from zoo.runner import ModelRun

GiB = 1024**3
MiB = 1024**2


def scores(f1_macro: float, accuracy: float, f1_weighted: float) -> dict[str, float]:
    return {"f1_macro": f1_macro, "accuracy": accuracy, "f1_weighted": f1_weighted}


E5 = ModelRun(
    model="e5-small",
    status="ok",
    metrics={"test": scores(0.80, 0.90, 0.85), "validation": scores(0.5, 0.5, 0.5)},
    train_seconds=100.0,
    peak_memory_bytes=2 * GiB,
    parameters=117_653_760,
)
MINILM = ModelRun(
    model="minilm",
    status="ok",
    metrics={"test": scores(0.85, 0.80, 0.80), "validation": scores(0.9, 0.9, 0.9)},
    train_seconds=12.5,
    peak_memory_bytes=300 * MiB,
    parameters=22_713_216,
)
BROKEN = ModelRun(model="broken", status="failed", reason="RuntimeError: out of memory")

THREE_RUNS = """\
Results (test split; * best)
┏━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━┓
┃ model    ┃ status ┃ macro-F1 ┃ accuracy ┃ weighted F1 ┃ train time ┃ peak memory ┃ parameters ┃
┡━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━┩
│ e5-small │ ok     │   0.8000 │ 0.9000 * │    0.8500 * │    1m40.0s │     2.0 GiB │     117.7M │
│ minilm   │ ok     │ 0.8500 * │   0.8000 │      0.8000 │    12.5s * │ 300.0 MiB * │      22.7M │
│ broken   │ failed │        - │        - │           - │          - │           - │          - │
└──────────┴────────┴──────────┴──────────┴─────────────┴────────────┴─────────────┴────────────┘
"""


def test_the_best_value_of_each_column_is_marked(render):
    assert render(comparison_table([E5, MINILM, BROKEN])) == THREE_RUNS


def cells(text: str, model: str) -> list[str]:
    for line in text.splitlines():
        row = [c.strip() for c in line.strip("│").split("│")]
        if row[0] == model:
            return row
    raise AssertionError(f"no row {model!r} in\n{text}")


def test_parameters_are_never_marked(render):
    text = render(comparison_table([E5, MINILM]))
    assert cells(text, "e5-small")[-1] == "117.7M"
    assert cells(text, "minilm")[-1] == "22.7M"


def test_a_single_run_has_nothing_to_compare_and_marks_nothing(render):
    assert "*" not in cells(render(comparison_table([E5])), "e5-small")


def test_a_failed_run_shows_failed_and_dashes_and_is_never_best(render):
    text = render(comparison_table([BROKEN, MINILM]))
    assert cells(text, "broken") == ["broken", "failed", "-", "-", "-", "-", "-", "-"]
    # The only finished run is not "best" among one.
    assert "*" not in text.split("\n", 1)[1]


def test_ties_are_all_marked(render):
    twin = ModelRun(model="twin", status="ok", metrics=E5.metrics, train_seconds=100.0)
    text = render(comparison_table([E5, twin]))
    assert cells(text, "e5-small")[2:6] == ["0.8000 *", "0.9000 *", "0.8500 *", "1m40.0s *"]
    assert cells(text, "twin")[2:6] == ["0.8000 *", "0.9000 *", "0.8500 *", "1m40.0s *"]


def test_without_test_scores_the_table_compares_validation_scores(render):
    a = ModelRun(
        model="a", status="ok", metrics={"test": None, "validation": scores(0.7, 0.8, 0.9)}
    )
    b = ModelRun(model="b", status="ok", metrics={"test": None, "validation": scores(0.6, 0.8, 1)})
    text = render(comparison_table([a, b], title="Comparison"))
    assert text.startswith("Comparison (validation split; * best)\n")
    assert cells(text, "a")[2:5] == ["0.7000 *", "0.8000 *", "0.9000"]
    assert cells(text, "b")[2:5] == ["0.6000", "0.8000 *", "1.0000 *"]


# --- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (MiB, "1.0 MiB"),
        (300 * MiB, "300.0 MiB"),
        (GiB, "1.0 GiB"),
        (2048 * GiB, "2048.0 GiB"),
    ],
)
def test_human_bytes(n, text):
    assert human_bytes(n) == text


@pytest.mark.parametrize(
    ("s", "text"),
    [
        (None, "-"),
        (0, "0.0s"),
        (0.04, "0.0s"),
        (12.5, "12.5s"),
        (59.9, "59.9s"),
        (60, "1m00.0s"),
        (61.5, "1m01.5s"),
        (100, "1m40.0s"),
        (3725.5, "62m05.5s"),
    ],
)
def test_human_seconds(s, text):
    assert human_seconds(s) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "-"),
        (0, "0"),
        (999, "999"),
        (1_000, "1.0K"),
        (4_400_000, "4.4M"),
        (22_713_216, "22.7M"),
        (117_653_760, "117.7M"),
        (7_000_000_000, "7.0B"),
    ],
)
def test_human_count(n, text):
    assert human_count(n) == text


@pytest.mark.parametrize(
    ("function", "value", "text"),
    [
        (human_bytes, MiB - 1, "1.0 MiB"),  # shows "1024.0 KiB"
        (human_count, 999_950, "1.0M"),  # shows "1000.0K"
        (human_seconds, 59.96, "1m00.0s"),  # shows "60.0s"
    ],
    ids=["bytes", "count", "seconds"],
)
def test_rounding_up_to_a_boundary_moves_to_the_next_unit(function, value, text):
    assert function(value) == text
