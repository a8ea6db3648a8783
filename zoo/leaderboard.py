"""The leaderboard behind `zoo compare`: runs from the results store grouped by (model, method,
and for cross-validation its folds, or their ensemble), with the mean and standard deviation
over seeds (and folds), as rich tables, JSON or CSV.

`leaderboard` reads only the store's records: a row of one run shows the 95% interval that run
stored (metrics.test.ci95). `vs_best` reads the rows' test predictions from their run
directories: each row against the best one by the paired bootstrap (zoo.uncertainty), and the
interval of a row of several seeds (seeds and test rows resampled).

Which runs to compare (the same data, the same recipe) is the store's filter, not this module's.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from rich.table import Table
from rich.text import Text

from zoo.errors import UsageError, ZooError
from zoo.metrics import (
    BUILTIN_METRICS,
    DEFAULT_METRIC,
    INTERVALS,
    THRESHOLDS,
    Metric,
    for_task,
    label_of,
    named,
    shown,
)
from zoo.recipe import LOGGING_KEYS
from zoo.report import (
    CI_NOTE,
    TIED,
    best_value,
    marked_cell,
    result_columns,
    results_table,
    score_text,
)
from zoo.store import RunRecord
from zoo.uncertainty import RESAMPLES, Scored, draws_seed, paired_difference, seeds_interval

Score = tuple[float, float | None]  # (mean, sample standard deviation; None for one run)
Interval = tuple[float, float]

# Besides the metrics, what `by` may name; smaller is better for each. "trial" orders the
# trials of a search by number, and shows every trial (not only the one chosen on validation).
FACT_SORT_KEYS = ("train_seconds", "peak_memory_bytes", "trial")
TRIAL = "trial"
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
    seeds: tuple[int, ...]  # their seeds, each once
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
    # Each metric's 95% interval, by name, where known: a single run's own (metrics.test.ci95),
    # or, for several seeds, the seeds-and-rows bootstrap that `vs_best` computes. Never made up.
    ci95: Mapping[str, Interval] = attrs.field(factory=dict)
    run_dirs: tuple[str | None, ...] = ()  # of the ok runs, in `units` order
    # The (seed, fold) of each ok run (fold None without cross-validation).
    units: tuple[tuple[int, int | None], ...] = ()
    # Cross-validation: the number of folds of the runs (their mean is over folds, and seeds);
    # `ensemble`: the row of each seed's fold models averaged.
    folds: int | None = None
    ensemble: bool = False
    vs_best: VsBest | None = None  # set by `vs_best`; None on the best row
    # A search's trial: the trial number its runs share (None for runs of no search or of
    # several trials), and whether the search chose it on validation.
    trial: int | None = None
    best: bool | None = None

    def __getattr__(self, name: str) -> Score | None:
        # Called only for names that are no field: a metric's score.
        if not name.startswith("_"):
            scores = object.__getattribute__(self, "scores")
            if name in scores:
                return scores[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


@attrs.frozen(kw_only=True)
class VsBest:
    """A row against the best row (`model`) on `metric`, test row by test row: `diff` is this
    row's score minus the best's (means over seeds), `ci95` its paired-bootstrap 95% interval,
    `p_value` the two-sided bootstrap p-value of no difference, `tied` whether the interval
    holds 0. `unpaired` says why no paired test could be made (then only `diff` is known)."""

    model: str
    metric: str
    diff: float | None
    ci95: Interval | None = None
    p_value: float | None = None
    tied: bool | None = None
    unpaired: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "diff": self.diff,
            "ci95": None if self.ci95 is None else list(self.ci95),
            "p_value": self.p_value,
            "tied": self.tied,
            "unpaired": self.unpaired,
        }


def leaderboard(
    records: Sequence[RunRecord],
    *,
    by: str = DEFAULT_METRIC,
    split: str = "test",
    metrics: Sequence[Metric] = BUILTIN_METRICS,
) -> list[Row]:
    """One row per (model, method), best first by `by` (a metric's name, or one of
    `FACT_SORT_KEYS`); groups without an ok run come last. Runs of cross-validation make rows
    of their own (by number of folds), and so do ensembles of fold models."""
    keys = sort_keys(metrics)
    if by not in keys:
        raise ValueError(f"cannot sort by {by!r}; choose one of {', '.join(keys)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    groups: dict[tuple[str, str, int | None, bool], list[RunRecord]] = {}
    for record in records:
        key = (record.model, record.method, record.folds, record.ensemble)
        groups.setdefault(key, []).append(record)
    rows = []
    for (model, method, folds, ensemble), runs in groups.items():
        variants = _variants(runs)
        differing = _differing([settings for settings, _ in variants])
        for settings, group in variants:
            shown = {key: settings.get(key) for key in differing}
            row = _row(model, method, group, split, metrics)
            trials = {r.trial for r in group}
            trial = trials.pop() if len(trials) == 1 else None
            best = True if trial is not None and any(r.best for r in group) else None
            rows.append(
                attrs.evolve(
                    row, settings=shown, folds=folds, ensemble=ensemble, trial=trial, best=best
                )
            )
    return sorted(rows, key=lambda row: _sort_key(row, by, ascending=keys[by]))


def headline(records: Sequence[RunRecord]) -> list[RunRecord]:
    """The records a leaderboard ranks by default: of a search, only the trial it chose on the
    validation split (never a choice made on the test split); every run of no search."""
    return [r for r in records if r.trial is None or r.best]


def _settings_key(record: RunRecord) -> str:
    # A key set to null is one left unset, as in runs recorded before the key existed; where a
    # run was logged to does not change what it learned.
    settings = {k: v for k, v in record.settings.items() if v is not None and k not in LOGGING_KEYS}
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
    keys = sorted({key for settings in all_settings for key in settings} - LOGGING_KEYS)
    return [
        key for key in keys if len({json.dumps(s.get(key), default=str) for s in all_settings}) > 1
    ]


def label(row: Row) -> str:
    """The row's model as a table shows it: with its folds (or that it is their ensemble), its
    trial and the settings that tell it from its siblings."""
    parts = [f"{k}={v}" for k, v in row.settings.items()]
    if row.trial is not None:
        parts.insert(0, f"trial {row.trial}, best" if row.best else f"trial {row.trial}")
    if row.folds is not None:
        parts.insert(0, f"{row.folds}-fold ensemble" if row.ensemble else f"{row.folds}-fold")
    return f"{row.model} ({', '.join(parts)})" if parts else row.model


def unit_text(unit: tuple[int, int | None]) -> str:
    """One run of a row: "seed 42", or "seed 42 fold 3"."""
    seed, fold = unit
    return f"seed {seed}" if fold is None else f"seed {seed} fold {fold}"


def _row(
    model: str, method: str, records: list[RunRecord], split: str, metrics: Sequence[Metric]
) -> Row:
    # A seed (and fold) run twice counts once, with its latest ok run: re-running must not
    # weigh double.
    by_unit = {(r.seed, r.fold): r for r in records if r.status == "ok"}
    units = sorted(by_unit, key=lambda unit: (unit[0], unit[1] or 0))
    ok = [by_unit[unit] for unit in units]
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
    # The metrics of the runs' task: multi-label runs' reports carry their thresholds.
    metrics = for_task(metrics, multi_label=any(THRESHOLDS in s for s in scores))
    classes = [s.get("per_class") or {} for s in scores]
    labels = dict.fromkeys(label for c in classes for label in c)  # first seen, in label order
    per_class = {
        label: _spread([c[label]["f1"] for c in classes if label in c]) for label in labels
    }
    one = scores[0].get(INTERVALS) or {} if len(ok) == 1 else {}
    seconds = [r.train_seconds for r in ok if r.train_seconds is not None]
    memory = [r.peak_memory_bytes for r in ok if r.peak_memory_bytes is not None]
    parameters = [r.parameters for r in ok if r.parameters is not None]
    return Row(
        model=model,
        method=method,
        runs=len(ok),
        seeds=tuple(sorted({seed for seed, _ in units})),
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
        ci95={m.name: tuple(one[m.name]) for m in metrics if _is_interval(one.get(m.name))},
        run_dirs=tuple(r.run_dir for r in ok),
        units=tuple(units),
    )


def _is_interval(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
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


def _score(score: Score | None, ci95: Interval | None = None) -> str:
    return "-" if score is None else score_text(*score, ci95)


def _note(rows: Sequence[Row], *, intervals: bool = True) -> str:
    """What a table title says about its numbers: the split (and who fell back to validation),
    that they are means over seeds (with their intervals, where the table shows them), and the
    best-value mark."""
    used = [row for row in rows if row.status == "ok"] or rows
    splits = {row.split for row in used} or {"test"}
    if len(splits) == 1:
        note = f"{splits.pop()} split"
    else:
        fallback = ", ".join(f"{r.model}/{r.method}" for r in used if r.split == "validation")
        note = f"test split; validation for {fallback}"
    over = _over(rows)
    if any(row.runs > 1 and (not intervals or len(row.ci95) < len(row.scores)) for row in rows):
        note += f"; mean ± std over {over}"
    elif any(row.runs > 1 for row in rows):
        note += f"; mean over {over}"
    if intervals and any(row.ci95 for row in used if row.status == "ok"):
        note += f"; {CI_NOTE}"
    return note + "; * best"


def _over(rows: Sequence[Row]) -> str:
    """What the rows of several runs average over: seeds, folds, or both."""
    several = [row for row in rows if row.runs > 1]
    folds = any(row.folds is not None for row in several)
    seeds = any(len(row.seeds) > 1 for row in several)
    return "seeds and folds" if folds and seeds else "folds" if folds else "seeds"


def leaderboard_table(
    rows: Sequence[Row], *, title: str, metrics: Sequence[Metric] = BUILTIN_METRICS
) -> Table:
    """One row per (model, method), best first; the best value of each column bold with '*'."""
    metrics = shown(metrics, [row.scores for row in rows])  # a multi-label row: micro-F1, ...
    columns = [
        attrs.evolve(column, number=lambda row, value=column.value: _mean_of(value(row)))
        for column in result_columns(metrics, _shown, lambda shown: _score(*shown))
    ]
    # Names and counts never wrap: on a narrow console the deviations go under their means.
    table = results_table(
        f"{title} ({_note(rows)})",
        rows,
        lead=[
            ("model", {"style": "bold", "no_wrap": True}),
            ("method", {"no_wrap": True}),
            ("runs", {"justify": "right", "no_wrap": True}),
        ],
        lead_cells=lambda row: [Text(_marked_label(row)), Text(row.method), _runs(row)],
        columns=columns,
        ok=lambda row: row.status == "ok",
    )
    table.caption = legend(rows, metrics)
    table.caption_justify = "left"
    return table


def _shown(row: Row, name: str) -> tuple[Score, Interval | None] | None:
    score = row.scores.get(name)
    return None if score is None else (score, row.ci95.get(name))


def _mean_of(value: Any) -> Any:
    while isinstance(value, tuple):  # (score, interval) -> score -> its mean
        value = value[0]
    return value


def _marked_label(row: Row) -> str:
    return f"{label(row)} {TIED}" if row.vs_best is not None and row.vs_best.tied else label(row)


def legend(rows: Sequence[Row], metrics: Sequence[Metric]) -> str | None:
    """The line under the table: what ≈ means, and which rows could not be paired."""
    compared = [row.vs_best for row in rows if row.vs_best is not None]
    if not compared:
        return None
    best, metric = compared[0].model, label_of(compared[0].metric, metrics)
    lines = []
    if any(not paired.unpaired for paired in compared):  # what ≈ means, where a row was paired
        lines.append(
            f"{TIED} tied with {best} on {metric}: the paired 95% interval of the difference "
            "holds 0"
        )
    lines += [
        f"not paired with {best}: {label(row)}: {row.vs_best.unpaired}"
        for row in rows
        if row.vs_best is not None and row.vs_best.unpaired
    ]
    return "\n".join(lines)


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
    table = Table(title=f"{title} ({_note(scored, intervals=False)})", title_justify="left")
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


def _with_interval(score: Score | None, ci95: Interval | None) -> dict[str, Any] | None:
    pair = _pair(score)
    return None if pair is None else pair | {"ci95": None if ci95 is None else list(ci95)}


def to_json(rows: Sequence[Row]) -> dict[str, Any]:
    """`{"leaderboard": [...]}`: each score as {"mean": ..., "std": ..., "ci95": [low, high]}
    (std null for one run, ci95 null where unknown); "vs_best" as `VsBest.to_json`, null on
    the best row and where `vs_best` was not asked."""
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
                "folds": row.folds,
                "ensemble": row.ensemble,
                # A search's trial only (the keys are absent on runs of no search).
                **({"trial": row.trial, "best": row.best} if row.trial is not None else {}),
                "split": row.split,
                **{
                    name: _with_interval(score, row.ci95.get(name))
                    for name, score in row.scores.items()
                },
                "vs_best": None if row.vs_best is None else row.vs_best.to_json(),
                "per_class_f1": {k: _pair(v) for k, v in row.per_class_f1.items()},
                "train_seconds": row.train_seconds,
                "peak_memory_bytes": row.peak_memory_bytes,
                "parameters": row.parameters,
            }
            for row in rows
        ]
    }


def to_csv(rows: Sequence[Row], *, metrics: Sequence[Metric] = BUILTIN_METRICS) -> str:
    """One header line and one line per row (`csv_table`)."""
    header, lines = csv_table(rows, metrics=metrics)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return out.getvalue()


def csv_table(
    rows: Sequence[Row], *, metrics: Sequence[Metric] = BUILTIN_METRICS
) -> tuple[list[str], list[list[Any]]]:
    """The columns of `zoo compare --csv` and one line per row: None for missing values; seeds
    space-separated; each metric's mean, std and 95% interval (`_ci95_low`, `_ci95_high`); the
    row against the best (`vs_best_*`, `tied`: empty on the best row); per-class F1 means in
    columns `f1_<label>`."""
    labels = list(dict.fromkeys(label for row in rows for label in row.per_class_f1))
    header = ["model", "method", "status", "runs", "not_ok", "seeds", "folds", "ensemble", "split"]
    names = [m.name for m in shown(metrics, [row.scores for row in rows])]
    header += [f"{m}{part}" for m in names for part in ("", "_std", "_ci95_low", "_ci95_high")]
    header += [f"vs_best_{key}" for key in VS_BEST_COLUMNS] + ["tied"]
    header += ["train_seconds", "peak_memory_bytes", "parameters", "settings"]
    header += [f"f1_{label}" for label in labels]
    lines = []
    for row in rows:
        line: list[Any] = [row.model, row.method, row.status, row.runs, row.not_ok]
        line += [" ".join(map(str, row.seeds)), row.folds, row.ensemble, row.split]
        for m in names:
            score, interval = row.scores.get(m), row.ci95.get(m)
            line += [None, None] if score is None else list(score)
            line += [None, None] if interval is None else list(interval)
        line += _vs_best_cells(row.vs_best)
        line += [row.train_seconds, row.peak_memory_bytes, row.parameters]
        line += ["; ".join(f"{k}={v}" for k, v in row.settings.items())]
        line += [_mean(row, label) for label in labels]
        lines.append(line)
    return header, lines


VS_BEST_COLUMNS = ("model", "metric", "diff", "ci95_low", "ci95_high", "p_value")


def _vs_best_cells(vs: VsBest | None) -> list[Any]:
    if vs is None:
        return [None] * (len(VS_BEST_COLUMNS) + 1)
    low, high = vs.ci95 if vs.ci95 is not None else (None, None)
    return [vs.model, vs.metric, vs.diff, low, high, vs.p_value, vs.tied]


# ---------------------------------------------------------------------------------------------
# Against the best row, test row by test row

NEEDS_PROBABILITIES = (
    "the metric has no confusion-matrix form (Metric.from_confusion), so it may need the class "
    "probabilities, which predictions.csv does not keep"
)

# What `vs_best` reads of a run directory: its test predictions, or why there are none.
ReadPredictions = Callable[[str], Any]


# Why a multi-label run's row has no paired test: predictions.csv holds label sets.
MULTI_LABEL_UNPAIRED = "it is multi-label, and zoo does not pair label sets row by row yet"


def _read_predictions(run_dir: str) -> Any:
    from zoo.rundir import read_run

    run = read_run(run_dir, needs=("finished", "predictions"))
    if run.record.get("label_separator") is not None:  # its label sets are no classes to count
        raise UsageError(MULTI_LABEL_UNPAIRED)
    return run.predictions


def vs_best(
    rows: Sequence[Row],
    *,
    by: str = DEFAULT_METRIC,
    metrics: Sequence[Metric] = BUILTIN_METRICS,
    read: ReadPredictions = _read_predictions,
    resamples: int = RESAMPLES,
) -> list[Row]:
    """The rows (best first by `by`, as `leaderboard` sorted them) with `vs_best` set on every
    ok row after the first: the paired bootstrap of its `by` score minus the best's on the same
    test rows (`zoo.uncertainty.paired_difference`), and with the interval of each row of
    several seeds (seeds and rows resampled). Predictions come from the run directories
    (`read`); a row whose predictions cannot be read, or are on other test rows, is reported
    `unpaired` with the reason. Nothing happens when `by` is no metric."""
    if by not in {m.name for m in metrics} or not rows or rows[0].status != "ok":
        return list(rows)
    metric = named(metrics, by)
    loaded = {id(row): _predictions_of(row, read) for row in rows if row.status == "ok"}
    universe = _label_universe(p for found, _ in loaded.values() if found for p in found)
    best = rows[0]
    out: list[Row] = []
    for row in rows:
        if row.status != "ok":
            out.append(row)
            continue
        predictions, why = loaded[id(row)]
        if predictions and row.runs > 1:
            row = attrs.evolve(row, ci95=_seeds_intervals(row, predictions, universe, metrics))
        if out:  # every ok row after the best
            paired = _against(
                row, (predictions, why), best, loaded[id(best)], metric, universe, resamples
            )
            row = attrs.evolve(row, vs_best=paired)
        out.append(row)
    return out


def _predictions_of(row: Row, read: ReadPredictions) -> tuple[list[Any] | None, str | None]:
    """The row's predictions, one per seed, or why there are none."""
    if row.split != "test":
        return None, "it has no test scores (validation splits differ from run to run)"
    found = []
    for run_dir in row.run_dirs:
        if run_dir is None:
            return None, "its results-store record names no run directory"
        try:
            found.append(read(run_dir))
        except ZooError as exc:
            return None, exc.message
    reason = None
    first = unit_text(row.units[0])
    for unit, other in zip(row.units[1:], found[1:], strict=True):
        reason = reason or _not_the_same_rows(other, found[0], f"its {first}")
        if reason:
            return None, f"{unit_text(unit)}: {reason}"
    return found, None


def _not_the_same_rows(mine: Any, theirs: Any, whose: str) -> str | None:
    """Why two runs' predictions are not on the same test rows, or None."""
    if len(mine.rows) != len(theirs.rows):
        return f"{len(mine.rows)} test rows, {len(theirs.rows)} for {whose}"
    for i, (a, b) in enumerate(
        zip(
            zip(mine.rows, mine.lines, mine.labels, strict=True),
            zip(theirs.rows, theirs.lines, theirs.labels, strict=True),
            strict=True,
        )
    ):
        if a != b:
            return (
                f"test row {i + 1} of predictions.csv is row {a[0]} (line {a[1]}, label {a[2]!r}), "
                f"for {whose} row {b[0]} (line {b[1]}, label {b[2]!r})"
            )
    return None


def _label_universe(predictions: Any) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for p in predictions:
        names |= dict.fromkeys(p.labels) | dict.fromkeys(p.predicted)
    return tuple(names)


def _ids(predictions: Sequence[Any], universe: tuple[str, ...]) -> tuple[list[int], Scored]:
    index = {name: i for i, name in enumerate(universe)}
    references = [index[name] for name in predictions[0].labels]
    return references, Scored.of([[index[name] for name in p.predicted] for p in predictions])


def _seeds_intervals(
    row: Row, predictions: list[Any], universe: tuple[str, ...], metrics: Sequence[Metric]
) -> dict[str, Interval]:
    references, scored = _ids(predictions, universe)
    seed = draws_seed(*row.seeds)
    return {
        m.name: tuple(seeds_interval(scored, references, universe, m, seed=seed))  # type: ignore[misc]
        for m in metrics
        if row.scores.get(m.name) is not None and _from_labels(m)
    }


def _from_labels(metric: Metric) -> bool:
    """Whether the predicted labels alone give the metric (what predictions.csv keeps): a
    metric with a confusion-matrix form does; another may read the class probabilities, which
    predictions.csv does not keep, so no interval or paired test is made up for it."""
    return metric.from_confusion is not None


def _against(
    row: Row,
    mine: tuple[list[Any] | None, str | None],
    best: Row,
    theirs: tuple[list[Any] | None, str | None],
    metric: Metric,
    universe: tuple[str, ...],
    resamples: int,
) -> VsBest | None:
    score, top = row.scores.get(metric.name), best.scores.get(metric.name)
    if score is None or top is None:
        return None
    name = label(best)
    why = None if _from_labels(metric) else NEEDS_PROBABILITIES
    why = why or mine[1] or (theirs[1] and f"the predictions of {name}: {theirs[1]}")
    if not why and mine[0] and theirs[0]:
        why = _not_the_same_rows(mine[0][0], theirs[0][0], name)
    if why or not mine[0] or not theirs[0]:
        return VsBest(model=name, metric=metric.name, diff=score[0] - top[0], unpaired=why)
    references, scored = _ids(mine[0], universe)
    _, scored_best = _ids(theirs[0], universe)
    paired = paired_difference(
        scored,
        scored_best,
        references,
        universe,
        metric,
        seed=draws_seed(*best.seeds, *row.seeds),
        resamples=resamples,
    )
    return VsBest(
        model=name,
        metric=metric.name,
        diff=paired.diff,
        ci95=paired.ci95,
        p_value=paired.p_value,
        tied=paired.tied,
    )
