"""The leaderboard of `zoo compare`: groups, means over seeds, order, tables, JSON and CSV."""

# The expected tables are rendered 120 columns wide, as the brief for `zoo compare` asks.
# ruff: noqa: E501

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from rich.console import Console

from zoo.leaderboard import Row, leaderboard, leaderboard_table, per_class_table, to_csv, to_json
from zoo.store import ResultsStore, RunRecord

GiB = 1024**3


def scores(f1_macro: float, accuracy: float, f1_weighted: float, **per_class: float) -> dict:
    return {
        "accuracy": accuracy,
        "f1_macro": f1_macro,
        "f1_weighted": f1_weighted,
        "per_class": {
            label: {"precision": f1, "recall": f1, "f1": f1, "support": 10}
            for label, f1 in per_class.items()
        },
    }


def run(model: str, seed: int = 1, *, f1: float = 0.5, status: str = "ok", **fields) -> RunRecord:
    """A run of `model`; an ok one scores `f1` on every metric unless `metrics` says otherwise."""
    if status == "ok":
        fields.setdefault("metrics", {"test": scores(f1, f1, f1), "validation": None})
    base = {"recipe_name": "demo", "recipe_hash": "h", "data_fingerprint": "d", "method": "full"}
    return RunRecord(**(base | fields), model=model, seed=seed, status=status)


def render(renderable) -> str:
    """Plain text, 120 columns, without the trailing spaces rich pads lines with."""
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    return "".join(f"{line.rstrip()}\n" for line in console.file.getvalue().splitlines())


def names(rows: list[Row]) -> list[str]:
    return [row.model for row in rows]


def test_rows_are_sorted_best_first_by_macro_f1():
    records = [run("e5-small", f1=0.70), run("minilm", f1=0.75), run("xlmr", f1=0.72)]
    assert names(leaderboard(records)) == ["minilm", "xlmr", "e5-small"]


def test_time_and_memory_sort_smallest_first():
    records = [
        run("e5-small", train_seconds=191.1, peak_memory_bytes=4 * GiB),
        run("minilm", train_seconds=69.6, peak_memory_bytes=3 * GiB),
        run("xlmr", train_seconds=600.0, peak_memory_bytes=2 * GiB),
    ]
    assert names(leaderboard(records, by="train_seconds")) == ["minilm", "e5-small", "xlmr"]
    assert names(leaderboard(records, by="peak_memory_bytes")) == ["xlmr", "minilm", "e5-small"]


def test_mean_and_sample_deviation_over_three_seeds():
    records = [
        run(
            "e5-small",
            seed,
            metrics={"test": scores(f1, 0.9, 0.85, code=f1)},
            train_seconds=seconds,
            peak_memory_bytes=memory,
            parameters=7,
        )
        for seed, f1, seconds, memory in (
            (1, 0.80, 100.0, 2 * GiB),
            (2, 0.83, 110.0, 3 * GiB),
            (3, 0.89, 120.0, GiB),
        )
    ]
    (row,) = leaderboard(records)
    # By hand: mean 0.84; deviations -0.04, -0.01, 0.05; sum of squares 0.0042 over n - 1 = 2.
    assert row.f1_macro == pytest.approx((0.84, math.sqrt(0.0042 / 2)))
    assert row.per_class_f1["code"] == pytest.approx((0.84, math.sqrt(0.0021)))
    assert row.accuracy == pytest.approx((0.9, 0.0))
    assert (row.runs, row.seeds, row.not_ok, row.status) == (3, (1, 2, 3), 0, "ok")
    assert row.train_seconds == pytest.approx(110.0)
    assert row.peak_memory_bytes == 3 * GiB  # the largest: what a machine must have
    assert row.parameters == 7


def test_one_run_has_no_deviation():
    (row,) = leaderboard([run("minilm", f1=0.75)])
    assert row.f1_macro == (0.75, None)


def test_the_same_model_with_another_method_is_another_row():
    records = [run("koalpaca-5.8b", method="lora"), run("koalpaca-5.8b", method="qlora")]
    assert sorted(row.method for row in leaderboard(records)) == ["lora", "qlora"]


def test_a_seed_run_again_counts_once_with_its_latest_result():
    records = [run("minilm", 1, f1=0.5), run("minilm", 2, f1=0.7), run("minilm", 1, f1=0.6)]
    (row,) = leaderboard(records)
    assert (row.runs, row.seeds) == (2, (1, 2))
    assert row.f1_macro[0] == pytest.approx(0.65)


def test_a_failed_group_comes_last_and_failures_are_counted_apart():
    records = [
        run("broken", status="failed", reason="RuntimeError: out of memory"),
        run("minilm", 1, f1=0.4, train_seconds=1000.0),
        run("minilm", 2, status="interrupted"),
        run("e5-small", f1=0.8, train_seconds=1.0),
        run("qlora-on-cpu", status="refused", method="qlora"),
    ]
    for by in ("f1_macro", "train_seconds"):
        rows = leaderboard(records, by=by)
        assert [(r.model, r.status, r.runs, r.not_ok) for r in rows[2:]] == [
            ("broken", "failed", 0, 1),
            ("qlora-on-cpu", "refused", 0, 1),
        ]
    minilm = next(row for row in rows if row.model == "minilm")
    assert (minilm.status, minilm.runs, minilm.not_ok) == ("ok", 1, 1)


def test_without_test_scores_the_validation_split_is_used_and_named():
    records = [
        run("e5-small", metrics={"test": None, "validation": scores(0.6, 0.7, 0.65)}),
        run("minilm", metrics={"test": None, "validation": scores(0.7, 0.6, 0.65)}),
    ]
    rows = leaderboard(records)
    assert [(row.model, row.split, row.f1_macro) for row in rows] == [
        ("minilm", "validation", (0.7, None)),
        ("e5-small", "validation", (0.6, None)),
    ]
    assert render(leaderboard_table(rows, title="Leaderboard")).startswith(
        "Leaderboard (validation split; * best)\n"
    )


def test_a_group_never_mixes_splits_and_the_title_names_who_fell_back():
    records = [
        run("e5-small", 1, f1=0.8),
        run("minilm", 1, f1=0.8),
        run("minilm", 2, metrics={"test": None, "validation": scores(0.6, 0.6, 0.6)}),
    ]
    rows = leaderboard(records)
    minilm = next(row for row in rows if row.model == "minilm")
    assert minilm.split == "validation"
    assert render(leaderboard_table(rows, title="Leaderboard")).startswith(
        "Leaderboard (test split; validation for minilm/full; mean ± std over seeds; * best)\n"
    )


def test_which_data_to_compare_is_chosen_in_the_store(tmp_path):
    store = ResultsStore.in_dir(tmp_path)
    store.record(run("e5-small", f1=0.9, data_fingerprint="other data"))
    store.record(run("minilm", f1=0.5, data_fingerprint="this data"))
    # The leaderboard ranks whatever it is given; the store hands it one data set's runs.
    assert names(leaderboard(store.runs())) == ["e5-small", "minilm"]
    assert names(leaderboard(store.runs(data_fingerprint="this data"))) == ["minilm"]


def test_an_unknown_sort_key_or_split_is_refused():
    with pytest.raises(ValueError, match="cannot sort by 'f1'; choose one of f1_macro, accuracy"):
        leaderboard([], by="f1")
    with pytest.raises(ValueError, match="unknown split 'train'"):
        leaderboard([], split="train")


# Two models with one seed each and a failed model: the table fits 120 columns.
SMALL = [
    run(
        "e5-small",
        metrics={"test": scores(0.7056, 0.875, 0.8607, code=0.9, remote=0.0)},
        train_seconds=191.1,
        peak_memory_bytes=4402341888,
        parameters=117_653_760,
    ),
    run(
        "minilm",
        metrics={"test": scores(0.7462, 0.7656, 0.7555, code=0.8, remote=0.4)},
        train_seconds=69.6,
        peak_memory_bytes=2673057792,
        parameters=22_713_216,
    ),
    run("koalpaca-5.8b", method="qlora", status="refused", reason="QLoRA needs a CUDA GPU"),
]

SMALL_TABLE = """\
Leaderboard (test split; * best)
┏━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━┓
┃ model         ┃ method ┃    runs ┃ macro-F1 ┃ accuracy ┃ weighted F1 ┃ train time ┃ peak memory ┃ parameters ┃
┡━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━┩
│ minilm        │ full   │       1 │ 0.7462 * │   0.7656 │      0.7555 │  1m09.6s * │   2.5 GiB * │      22.7M │
│ e5-small      │ full   │       1 │   0.7056 │ 0.8750 * │    0.8607 * │    3m11.1s │     4.1 GiB │     117.7M │
│ koalpaca-5.8b │ qlora  │ refused │        - │        - │           - │          - │           - │          - │
└───────────────┴────────┴─────────┴──────────┴──────────┴─────────────┴────────────┴─────────────┴────────────┘
"""


def test_the_leaderboard_table_marks_the_best_of_each_column():
    assert render(leaderboard_table(leaderboard(SMALL), title="Leaderboard")) == SMALL_TABLE


SMALL_PER_CLASS = """\
Per-class F1 (test split; * best)
┏━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┓
┃ model    ┃ method ┃     code ┃   remote ┃
┡━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━┩
│ minilm   │ full   │   0.8000 │ 0.4000 * │
│ e5-small │ full   │ 0.9000 * │   0.0000 │
└──────────┴────────┴──────────┴──────────┘
"""


def test_the_per_class_table_has_a_column_per_label():
    assert render(per_class_table(leaderboard(SMALL))) == SMALL_PER_CLASS


SEEDS = [
    run("minilm", seed, metrics={"test": scores(f, f, f, code=f, web=w)}, train_seconds=60.0)
    for seed, f, w in ((1, 0.25, 0.5), (2, 0.5, 0.5), (3, 0.75, 0.5))
] + [run("minilm", 4, status="interrupted")]

SEEDS_TABLE = """\
Leaderboard (test split; mean ± std over seeds; * best)
┏━━━━━━━━┳━━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━┓
┃ model  ┃ method ┃ runs ┃        macro-F1 ┃        accuracy ┃     weighted F1 ┃ train time ┃ peak memory ┃ parameters ┃
┡━━━━━━━━╇━━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━┩
│ minilm │ full   │  3/4 │ 0.5000 ± 0.2500 │ 0.5000 ± 0.2500 │ 0.5000 ± 0.2500 │    1m00.0s │           - │          - │
└────────┴────────┴──────┴─────────────────┴─────────────────┴─────────────────┴────────────┴─────────────┴────────────┘
"""

SEEDS_PER_CLASS = """\
Per-class F1 (test split; mean ± std over seeds; * best)
┏━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ model  ┃ method ┃              code ┃               web ┃
┡━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ minilm │ full   │   0.5000 ± 0.2500 │   0.5000 ± 0.0000 │
└────────┴────────┴───────────────────┴───────────────────┘
"""


def test_scores_over_seeds_show_mean_plus_minus_deviation():
    # Three seeds: 0.25, 0.5, 0.75 (mean 0.5, sample deviation exactly 0.25); seed 4 interrupted.
    rows = leaderboard(SEEDS)
    assert render(leaderboard_table(rows, title="Leaderboard")) == SEEDS_TABLE
    assert render(per_class_table(rows)) == SEEDS_PER_CLASS


def test_json_holds_every_number():
    rows = leaderboard(SEEDS + [run("broken", status="failed")])
    data = json.loads(json.dumps(to_json(rows)))
    assert data == {
        "leaderboard": [
            {
                "model": "minilm",
                "method": "full",
                "settings": {},
                "status": "ok",
                "runs": 3,
                "not_ok": 1,
                "seeds": [1, 2, 3],
                "folds": None,
                "ensemble": False,
                "split": "test",
                # No interval: these records have none, and vs_best was not asked.
                "f1_macro": {"mean": 0.5, "std": 0.25, "ci95": None},
                "accuracy": {"mean": 0.5, "std": 0.25, "ci95": None},
                "f1_weighted": {"mean": 0.5, "std": 0.25, "ci95": None},
                "vs_best": None,
                "per_class_f1": {
                    "code": {"mean": 0.5, "std": 0.25},
                    "web": {"mean": 0.5, "std": 0.0},
                },
                "train_seconds": 60.0,
                "peak_memory_bytes": None,
                "parameters": None,
            },
            {
                "model": "broken",
                "method": "full",
                "settings": {},
                "status": "failed",
                "runs": 0,
                "not_ok": 1,
                "seeds": [],
                "folds": None,
                "ensemble": False,
                "split": "test",
                "f1_macro": None,
                "accuracy": None,
                "f1_weighted": None,
                "vs_best": None,
                "per_class_f1": {},
                "train_seconds": None,
                "peak_memory_bytes": None,
                "parameters": None,
            },
        ]
    }


SEEDS_CSV = """\
model,method,status,runs,not_ok,seeds,folds,ensemble,split,\
f1_macro,f1_macro_std,f1_macro_ci95_low,f1_macro_ci95_high,\
accuracy,accuracy_std,accuracy_ci95_low,accuracy_ci95_high,\
f1_weighted,f1_weighted_std,f1_weighted_ci95_low,f1_weighted_ci95_high,\
vs_best_model,vs_best_metric,vs_best_diff,vs_best_ci95_low,vs_best_ci95_high,vs_best_p_value,tied,\
train_seconds,peak_memory_bytes,parameters,settings,f1_code,f1_web
minilm,full,ok,3,1,1 2 3,,False,test,0.5,0.25,,,0.5,0.25,,,0.5,0.25,,,,,,,,,,60.0,,,,0.5,0.5
broken,full,failed,0,1,,,False,test,,,,,,,,,,,,,,,,,,,,,,,,,
"""


def test_csv_has_one_header_and_one_line_per_row():
    text = to_csv(leaderboard(SEEDS + [run("broken", status="failed")]))
    assert text == SEEDS_CSV
    assert len(list(csv.reader(io.StringIO(text)))) == 3


def test_runs_with_other_settings_are_never_averaged_together():
    # The same model retrained with another learning rate on the same data: two rows, each the
    # mean over its own seeds, told apart by the one setting that differs.
    slow = {"learning_rate": 1e-5, "epochs": 3}
    fast = {"learning_rate": 1e-3, "epochs": 3}
    records = [
        run("e5-small", 1, f1=0.8, settings=slow),
        run("e5-small", 2, f1=0.6, settings=slow),
        run("e5-small", 1, f1=0.2, settings=fast),
        run("e5-small", 2, f1=0.4, settings=fast),
        run("e5-small", 3, status="failed", settings=fast),
        run("minilm", 1, f1=0.5, settings=slow),
    ]
    rows = leaderboard(records)
    assert [(r.model, dict(r.settings), r.runs, r.not_ok) for r in rows] == [
        ("e5-small", {"learning_rate": 1e-5}, 2, 0),
        ("minilm", {}, 1, 0),
        ("e5-small", {"learning_rate": 1e-3}, 2, 1),
    ]
    assert [round(r.f1_macro[0], 4) for r in rows] == [0.7, 0.5, 0.3]
    table = render(leaderboard_table(rows, title="Leaderboard"))
    assert "e5-small (learning_rate=1e-05)" in table
    assert "e5-small (learning_rate=0.001)" in table
    assert to_json(rows)["leaderboard"][2]["settings"] == {"learning_rate": 1e-3}


def test_a_setting_older_runs_did_not_record_is_the_same_as_one_left_unset():
    # Runs recorded before a training key existed (eval_every, trainer) lack it; newer runs
    # record it as null. They trained alike, so they are one row over both seeds.
    before = {"learning_rate": 1e-5, "epochs": 3}
    after = {**before, "eval_every": None, "trainer": None}
    rows = leaderboard([run("e5-small", 1, f1=0.8, settings=before),
                        run("e5-small", 2, f1=0.6, settings=after)])  # fmt: skip
    assert [(r.model, r.runs) for r in rows] == [("e5-small", 2)]
    assert round(rows[0].f1_macro[0], 4) == 0.7
    set_later = {**before, "eval_every": 50}
    rows = leaderboard([run("e5-small", 1, settings=before),
                        run("e5-small", 2, settings=set_later)])  # fmt: skip
    assert sorted(str(dict(r.settings)) for r in rows) == [
        "{'eval_every': 50}",
        "{'eval_every': None}",
    ]


def test_runs_that_differ_only_in_where_they_logged_are_one_row():
    # training.report_to says where a run was logged (TensorBoard, MLflow), not what it learned.
    base = {"learning_rate": 1e-5}
    rows = leaderboard([run("e5-small", 1, f1=0.8, settings={**base, "report_to": ["mlflow"]}),
                        run("e5-small", 2, f1=0.6, settings=base)])  # fmt: skip
    assert [(r.model, r.runs, dict(r.settings)) for r in rows] == [("e5-small", 2, {})]


def test_the_per_class_table_claims_no_interval_it_does_not_show():
    metrics = scores(0.7, 0.8, 0.75, code=0.9, web=0.5)
    metrics["ci95"] = {"f1_macro": [0.6, 0.8], "accuracy": [0.7, 0.9], "f1_weighted": [0.65, 0.85]}
    rows = leaderboard([run("e5-small", metrics={"test": metrics, "validation": None})])
    assert "[95% CI]" in render(leaderboard_table(rows, title="Leaderboard")).splitlines()[0]
    per_class = render(per_class_table(rows)).splitlines()[0]
    assert per_class == "Per-class F1 (test split; * best)"
