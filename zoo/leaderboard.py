"""The leaderboard behind `zoo compare`: runs from the results store grouped by (model, method),
with the mean and standard deviation over seeds, as rich tables, JSON or CSV.

Which runs to compare (the same data, the same recipe) is the store's filter, not this module's.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from rich.table import Table
from rich.text import Text

from zoo.metrics import BUILTIN_METRICS, DEFAULT_METRIC, Metric
from zoo.report import best_value, marked_cell, result_columns, results_table
from zoo.store import RunRecord

Score = tuple[float, float | None]  # (mean, sample standard deviation; None for one run)

# Besides the metrics, what `by` may name; smaller is better for both.
FACT_SORT_KEYS = ("train_seconds", "peak_memory_bytes")
SPLITS = ("test", "validation")


def sort_keys(metrics: Sequence[Metric] = BUILTIN_METRICS) -> dict[str, bool]:
    """What `by` may name, and whether a smaller value is better."""
    return {m.name: not m.higher_is_better for m in metrics} | dict.fromkeys(FACT_SORT_KEYS, True)


@attrs.frozen(kw_only=True)
class Row:
    """One (model, method) trained with one set of settings: the mean and spread of its ok
    runs, one per seed."""

    model: str
    method: str
    # The settings that tell this row from others of the same model and method (runs with
    # other learning rates, say): never averaged together. Empty when there are no others.
    settings: Mapping[str, Any] = attrs.field(factory=dict)
    runs: int  # ok runs counted in the means
    seeds: tuple[int, ...]
    split: str  # where the scores come from: the asked split, or "validation" as a fallback
    # Each metric's mean and spread, by name (None where no run has it); `row.f1_macro` reads
    # `row.scores["f1_macro"]`.
    scores: Mapping[str, Score | None] = attrs.field(factory=dict)
    per_class_f1: Mapping[str, Score] = attrs.field(factory=dict)
    train_seconds: float | None = None  # mean
    peak_memory_bytes: int | None = None  # max
    parameters: int | None = None  # the same for every seed
    status: str = "ok"  # "ok" when a run succeeded, else the status of the group's latest run
    not_ok: int = 0  # failed, refused and interrupted runs of the group

    def __getattr__(self, name: str) -> Score | None:
        # Called only for names that are no field: a metric's score.
        if not name.startswith("_"):
            scores = object.__getattribute__(self, "scores")
            if name in scores:
                return scores[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def leaderboard(
    records: Sequence[RunRecord],
    *,
    by: str = DEFAULT_METRIC,
    split: str = "test",
    metrics: Sequence[Metric] = BUILTIN_METRICS,
) -> list[Row]:
    """One row per (model, method), best first by `by` (a metric's name, or one of
    `FACT_SORT_KEYS`); groups without an ok run come last."""
    keys = sort_keys(metrics)
    if by not in keys:
        raise ValueError(f"cannot sort by {by!r}; choose one of {', '.join(keys)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.model, record.method), []).append(record)
    rows = []
    for (model, method), runs in groups.items():
        variants = _variants(runs)
        differing = _differing([settings for settings, _ in variants])
        for settings, group in variants:
            shown = {key: settings.get(key) for key in differing}
            row = _row(model, method, group, split, metrics)
            rows.append(attrs.evolve(row, settings=shown))
    return sorted(rows, key=lambda row: _sort_key(row, by, ascending=keys[by]))


def _settings_key(record: RunRecord) -> str:
    # A key set to null is one left unset, as in runs recorded before the key existed.
    settings = {k: v for k, v in record.settings.items() if v is not None}
    return json.dumps(settings, sort_keys=True, default=str)


def _variants(records: list[RunRecord]) -> list[tuple[Mapping[str, Any], list[RunRecord]]]:
    """The runs of one (model, method) by the settings they trained with, first seen first.

    A mean over seeds is honest only over runs that differ in their seed alone. A run that did
    not finish joins the runs with its settings, or, when it recorded none, the latest ones."""
    ok = [r for r in records if r.status == "ok"]
    by_settings: dict[str, list[RunRecord]] = {}
    for record in ok:
        by_settings.setdefault(_settings_key(record), []).append(record)
    if not by_settings:
        return [({}, list(records))]
    latest = _settings_key(max(ok, key=lambda r: (r.run_id or 0, r.recorded_at)))
    for record in records:
        if record.status != "ok":
            key = _settings_key(record)
            by_settings[key if key in by_settings else latest].append(record)
    return [(group[0].settings, group) for group in by_settings.values()]


def _differing(all_settings: Sequence[Mapping[str, Any]]) -> list[str]:
    """The settings keys whose values are not the same in all of these."""
    keys = sorted({key for settings in all_settings for key in settings})
    return [
        key for key in keys if len({json.dumps(s.get(key), default=str) for s in all_settings}) > 1
    ]


def label(row: Row) -> str:
    """The row's model as a table shows it: with the settings that tell it from its siblings."""
    if not row.settings:
        return row.model
    return f"{row.model} ({', '.join(f'{k}={v}' for k, v in row.settings.items())})"


def _row(
    model: str, method: str, records: list[RunRecord], split: str, metrics: Sequence[Metric]
) -> Row:
    # A seed run twice counts once, with its latest ok run: re-running must not weigh double.
    by_seed = {r.seed: r for r in records if r.status == "ok"}
    ok = [by_seed[seed] for seed in sorted(by_seed)]
    not_ok = sum(r.status != "ok" for r in records)
    if not ok:
        status = records[-1].status
        return Row(
            model=model,
            method=method,
            runs=0,
            seeds=(),
            split=split,
            scores=dict.fromkeys(m.name for m in metrics),
            status=status,
            not_ok=not_ok,
        )
    # One split for the whole group, so that a mean never mixes test and validation scores.
    used = split if all(r.metrics.get(split) for r in ok) else "validation"
    scores = [r.metrics.get(used) or {} for r in ok]
    classes = [s.get("per_class") or {} for s in scores]
    labels = dict.fromkeys(label for c in classes for label in c)  # first seen, in label order
    per_class = {
        label: _spread([c[label]["f1"] for c in classes if label in c]) for label in labels
    }
    seconds = [r.train_seconds for r in ok if r.train_seconds is not None]
    memory = [r.peak_memory_bytes for r in ok if r.peak_memory_bytes is not None]
    parameters = [r.parameters for r in ok if r.parameters is not None]
    return Row(
        model=model,
        method=method,
        runs=len(ok),
        seeds=tuple(sorted(by_seed)),
        split=used,
        scores={
            m.name: _spread([s[m.name] for s in scores if s.get(m.name) is not None])
            for m in metrics
        },
        per_class_f1={k: v for k, v in per_class.items() if v is not None},
        train_seconds=statistics.fmean(seconds) if seconds else None,
        peak_memory_bytes=max(memory) if memory else None,
        parameters=parameters[-1] if parameters else None,
        not_ok=not_ok,
    )


def _spread(values: Sequence[float]) -> Score | None:
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    return (statistics.fmean(values), std)


def _field(row: Row, key: str) -> Any:
    """A metric's score or a fact (train_seconds, ...) of the row."""
    return row.scores[key] if key in row.scores else getattr(row, key)


def _value(row: Row, key: str) -> float | None:
    value = _field(row, key)
    return value[0] if isinstance(value, tuple) else value


def _sort_key(row: Row, by: str, *, ascending: bool) -> tuple[Any, ...]:
    value = _value(row, by)
    # Failed groups last, then rows without the value; ties by name, so the order is stable.
    rank = 0.0 if value is None else (value if ascending else -value)
    return (row.status != "ok", value is None, rank, label(row), row.method)


def _score(score: Score | None) -> str:
    if score is None:
        return "-"
    mean, std = score
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def _note(rows: Sequence[Row]) -> str:
    """What a table title says about its numbers: the split (and who fell back to validation),
    that they are means over seeds, and the best-value mark."""
    used = [row for row in rows if row.status == "ok"] or rows
    splits = {row.split for row in used} or {"test"}
    if len(splits) == 1:
        note = f"{splits.pop()} split"
    else:
        fallback = ", ".join(f"{r.model}/{r.method}" for r in used if r.split == "validation")
        note = f"test split; validation for {fallback}"
    if any(row.runs > 1 for row in rows):
        note += "; mean ± std over seeds"
    return note + "; * best"


def leaderboard_table(
    rows: Sequence[Row], *, title: str, metrics: Sequence[Metric] = BUILTIN_METRICS
) -> Table:
    """One row per (model, method), best first; the best value of each column bold with '*'."""
    columns = [
        attrs.evolve(column, number=lambda row, value=column.value: _mean_of(value(row)))
        for column in result_columns(metrics, lambda row, name: row.scores.get(name), _score)
    ]
    # Names and counts never wrap: on a narrow console the deviations go under their means.
    return results_table(
        f"{title} ({_note(rows)})",
        rows,
        lead=[
            ("model", {"style": "bold", "no_wrap": True}),
            ("method", {"no_wrap": True}),
            ("runs", {"justify": "right", "no_wrap": True}),
        ],
        lead_cells=lambda row: [Text(label(row)), Text(row.method), _runs(row)],
        columns=columns,
        ok=lambda row: row.status == "ok",
    )


def _mean_of(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def _runs(row: Row) -> Text:
    """The ok runs ("2/3" when one did not finish); a group with no ok run shows its status."""
    if row.status != "ok":
        return Text(row.status, style="red")
    text = str(row.runs) if not row.not_ok else f"{row.runs}/{row.runs + row.not_ok}"
    return Text(text, style="yellow" if row.not_ok else "")


def per_class_table(rows: Sequence[Row], *, title: str = "Per-class F1") -> Table:
    """One row per (model, method) with scores, one column per label: F1 mean (± std)."""
    scored = [row for row in rows if row.per_class_f1]
    labels = list(dict.fromkeys(label for row in scored for label in row.per_class_f1))
    table = Table(title=f"{title} ({_note(scored)})", title_justify="left")
    table.add_column("model", style="bold", no_wrap=True)
    table.add_column("method", no_wrap=True)
    for name in labels:
        table.add_column(Text(name), justify="right")
    best = {name: best_value([_mean(r, name) for r in scored], True) for name in labels}
    for row in scored:
        cells: list[Any] = [Text(label(row)), Text(row.method)]
        for name in labels:
            score = row.per_class_f1.get(name)
            marked = score is not None and score[0] == best[name]
            cells.append(marked_cell(_score(score), marked))
        table.add_row(*cells)
    return table


def _mean(row: Row, label: str) -> float | None:
    score = row.per_class_f1.get(label)
    return None if score is None else score[0]


def _pair(score: Score | None) -> dict[str, float | None] | None:
    return None if score is None else {"mean": score[0], "std": score[1]}


def to_json(rows: Sequence[Row]) -> dict[str, Any]:
    """`{"leaderboard": [...]}`: each score as {"mean": ..., "std": ...} (std null for one run)."""
    return {
        "leaderboard": [
            {
                "model": row.model,
                "method": row.method,
                "settings": dict(row.settings),
                "status": row.status,
                "runs": row.runs,
                "not_ok": row.not_ok,
                "seeds": list(row.seeds),
                "split": row.split,
                **{name: _pair(score) for name, score in row.scores.items()},
                "per_class_f1": {k: _pair(v) for k, v in row.per_class_f1.items()},
                "train_seconds": row.train_seconds,
                "peak_memory_bytes": row.peak_memory_bytes,
                "parameters": row.parameters,
            }
            for row in rows
        ]
    }


def to_csv(rows: Sequence[Row], *, metrics: Sequence[Metric] = BUILTIN_METRICS) -> str:
    """One header line and one line per row; empty cells for missing values; seeds space-separated;
    per-class F1 means in columns `f1_<label>`."""
    labels = list(dict.fromkeys(label for row in rows for label in row.per_class_f1))
    header = ["model", "method", "status", "runs", "not_ok", "seeds", "split"]
    names = [m.name for m in metrics]
    header += [name for m in names for name in (m, f"{m}_std")]
    header += ["train_seconds", "peak_memory_bytes", "parameters", "settings"]
    header += [f"f1_{label}" for label in labels]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        line: list[Any] = [row.model, row.method, row.status, row.runs, row.not_ok]
        line += [" ".join(map(str, row.seeds)), row.split]
        for m in names:
            score = row.scores.get(m)
            line += [None, None] if score is None else list(score)
        line += [row.train_seconds, row.peak_memory_bytes, row.parameters]
        line += ["; ".join(f"{k}={v}" for k, v in row.settings.items())]
        line += [_mean(row, label) for label in labels]
        writer.writerow(line)
    return out.getvalue()
