"""`zoo compare --html FILE`: the leaderboard as one self-contained HTML page with pictures.

The page shows, for the rows that `zoo compare` ranks: the metric per model with its 95% interval
(where the run recorded one; older runs have none), how each differs from the best, per-class F1
across models as a heat map, the confusion matrices side by side, the validation curves
overlaid, and quality against training time and peak memory. Scores and facts come from the
results store; the confusion matrices and curves from each row's latest run directory, read
through `zoo.rundir.read_run`. A run directory that is gone or damaged is named on the page and
left out of those pictures; the page is still written. Every picture is a PNG inlined in the
page, which needs no other file and no network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import attrs

from zoo import drawing
from zoo.drawing import Picture, escape, shown
from zoo.files import write_text
from zoo.leaderboard import Row, label, unit_text
from zoo.metrics import BUILTIN_METRICS, Metric, label_of
from zoo.report import human_bytes, human_seconds
from zoo.rundir import RunDir, RunDirError, read_run
from zoo.store import RunRecord

Interval = tuple[float, float]


@attrs.frozen(kw_only=True)
class Entry:
    """One leaderboard row and the run directory that its pictures come from (None when no
    run directory of the row could be read)."""

    row: Row
    name: str
    run: RunDir | None = None
    record: RunRecord | None = None


@attrs.frozen(kw_only=True)
class ComparePage:
    """The page, and the run directories it could not read."""

    html: str
    skipped: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# What the page reads: intervals and differences if the leaderboard and runs have them


def interval(entry: Entry, metric: str) -> Interval | None:
    """The row's 95% interval of `metric` as the leaderboard has it (`Row.ci95`: a single run's
    own, or the seeds-and-rows bootstrap of several); None where it has none."""
    found = entry.row.ci95.get(metric)
    return None if found is None else (float(found[0]), float(found[1]))


# ---------------------------------------------------------------------------------------------
# Which run directory shows each row


def _runs_of(row: Row, records: Sequence[RunRecord]) -> list[RunRecord]:
    """The ok runs of the row, latest first."""

    def same(record: RunRecord) -> bool:
        return (
            record.model == row.model
            and record.method == row.method
            and record.status == "ok"
            and (record.seed, record.fold) in row.units
            and (record.folds, record.ensemble) == (row.folds, row.ensemble)
            and all(record.settings.get(k) == v for k, v in row.settings.items())
        )

    return sorted(filter(same, records), key=lambda r: (r.run_id or 0, r.recorded_at))[::-1]


def entries(rows: Sequence[Row], records: Sequence[RunRecord]) -> tuple[list[Entry], list[str]]:
    """Each row with its latest readable run directory, and a note for each run directory that
    could not be read (and why)."""
    out, skipped = [], []
    names = [_name(row, rows) for row in rows]
    for row, name in zip(rows, names, strict=True):
        entry = Entry(row=row, name=name)
        for record in _runs_of(row, records):
            where = f"run #{record.run_id} of {name} ({unit_text((record.seed, record.fold))})"
            if not record.run_dir:
                skipped.append(f"{where}: the store names no run directory")
                continue
            try:
                run = read_run(record.run_dir, needs=("finished", "metrics", "log_history"))
            except RunDirError as exc:
                skipped.append(f"{where}: {exc.message}")
                continue
            entry = Entry(row=row, name=name, run=run, record=record)
            break
        else:
            runs = _runs_of(row, records)
            entry = Entry(row=row, name=name, record=runs[0] if runs else None)
        out.append(entry)
    return out, skipped


def _name(row: Row, rows: Sequence[Row]) -> str:
    methods = {r.method for r in rows}
    return label(row) if len(methods) == 1 else f"{label(row)} [{row.method}]"


# ---------------------------------------------------------------------------------------------
# Pictures


def _short(text: str, width: int = 28) -> str:
    text = shown(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _score_picture(items: Sequence[Entry], metric: str, name: str) -> bytes:
    fig = drawing.figure(8.0, 1.2 + 0.45 * len(items))
    ax = fig.add_subplot()
    for y, entry in enumerate(items):
        mean = entry.row.scores[metric][0]  # type: ignore[index]
        ci = interval(entry, metric)
        ax.plot([mean], [y], "o", color="C0")
        if ci is None:
            ax.annotate(
                "no interval",
                (mean, y),
                xytext=(8, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color="#59636e",
            )
        else:  # drawn as it was recorded, even where it does not hold the mean
            ax.plot(ci, [y, y], "-", color="C0", marker="|", markersize=10)
    ax.set_yticks(range(len(items)), [_short(e.name) for e in items])
    ax.invert_yaxis()  # best first, at the top
    ax.set_xlabel(f"{name} (95% interval where recorded)")
    ax.grid(axis="x", alpha=0.3)
    return drawing.png(fig)


def _per_class_picture(items: Sequence[Entry]) -> bytes | None:
    import numpy as np

    labels = list(dict.fromkeys(k for e in items for k in e.row.per_class_f1))
    if not labels:
        return None
    values = np.array(
        [[(e.row.per_class_f1.get(k) or (math.nan,))[0] for k in labels] for e in items]
    )
    fig = drawing.figure(max(5.0, 1.0 + 0.9 * len(labels)), 1.6 + 0.45 * len(items))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_facecolor("#d0d7de")  # a label a model never saw: grey, "n/a"
    for i in range(len(items)):
        for j in range(len(labels)):
            value = values[i, j]
            text = "n/a" if math.isnan(value) else f"{value:.2f}"
            color = "black" if math.isnan(value) or value > 0.6 else "white"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
    ax.set_xticks(range(len(labels)), [_short(k, 16) for k in labels])
    ax.set_yticks(range(len(items)), [_short(e.name) for e in items])
    for tick in ax.get_xticklabels():
        tick.set(rotation=30, ha="right", rotation_mode="anchor")
    fig.colorbar(image, ax=ax, label="F1")
    return drawing.png(fig)


def _has_confusion(entry: Entry) -> bool:
    """Whether the entry's run has a confusion matrix to draw (multi-label runs have none)."""
    if entry.run is None or not entry.run.metrics:
        return False
    metrics = entry.run.metrics
    split = entry.row.split if metrics.get(entry.row.split) else "validation"
    return "confusion_matrix" in (metrics.get(split) or {})


def _confusion_picture(items: Sequence[Entry]) -> bytes | None:
    shown_items = [e for e in items if _has_confusion(e)]
    if not shown_items:
        return None
    columns = min(3, len(shown_items))
    rows = math.ceil(len(shown_items) / columns)
    fig = drawing.figure(4.4 * columns, 4.2 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, entry in zip(axes, shown_items, strict=False):
        metrics = entry.run.metrics  # type: ignore[union-attr]
        split = entry.row.split if metrics.get(entry.row.split) else "validation"
        confusion = metrics[split]["confusion_matrix"]
        labels, matrix = confusion["labels"], confusion["matrix"]
        ax.imshow(matrix, cmap="Blues", vmin=0)
        top = max((max(row) for row in matrix), default=0)
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                color = "white" if count > top / 2 else "black"
                ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
        ticks = [_short(k, 12) for k in labels]
        ax.set_xticks(range(len(labels)), ticks, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(len(labels)), ticks)
        ax.set_title(
            f"{_short(entry.name, 34)}\n{split}, seed {entry.run.record.get('seed')}", fontsize=9
        )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    for ax in axes[len(shown_items) :]:
        ax.set_axis_off()
    return drawing.png(fig)


def _curves_picture(items: Sequence[Entry], metric: str, name: str) -> bytes | None:
    fig = drawing.figure(8.0, 4.2)
    ax = fig.add_subplot()
    for entry in items:
        history = entry.run.log_history if entry.run is not None else None
        points = [
            (e["epoch"], e[f"eval_{metric}"])
            for e in history or []
            if e.get("epoch") is not None and e.get(f"eval_{metric}") is not None
        ]
        if points:
            ax.plot(
                *zip(*points, strict=True), marker="o", markersize=3, label=_short(entry.name, 40)
            )
    if not ax.get_lines():
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {name}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return drawing.png(fig)


def _tradeoff_picture(items: Sequence[Entry], metric: str, name: str) -> bytes | None:
    facts = (
        ("train_seconds", "training time (s)", 1.0),
        ("peak_memory_bytes", "peak memory (GiB)", 2.0**30),
    )
    drawn = [f for f in facts if any(getattr(e.row, f[0]) is not None for e in items)]
    if not drawn:
        return None
    fig = drawing.figure(5.0 * len(drawn), 4.2)
    axes = fig.subplots(1, len(drawn), squeeze=False).ravel()
    for ax, (key, axis_label, unit) in zip(axes, drawn, strict=True):
        for i, entry in enumerate(items):
            x = getattr(entry.row, key)
            if x is None:
                continue
            y = entry.row.scores[metric][0]  # type: ignore[index]
            ax.plot([x / unit], [y], "o", color=f"C{i % 10}")
            ax.annotate(
                _short(entry.name, 20),
                (x / unit, y),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=8,
            )
        ax.set_xlabel(axis_label)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    return drawing.png(fig)


def _pictures(items: Sequence[Entry], metric: str, name: str) -> list[Picture]:
    scored = [e for e in items if e.row.status == "ok" and e.row.scores.get(metric)]
    drawn = [
        (
            "scores.png",
            f"{name} per model with its 95% interval",
            _score_picture(scored, metric, name) if scored else None,
        ),
        ("per_class_f1.png", "per-class F1 across models", _per_class_picture(scored)),
        ("confusion_matrices.png", "confusion matrices", _confusion_picture(scored)),
        (
            "validation_curves.png",
            f"validation {name} per epoch",
            _curves_picture(scored, metric, name),
        ),
        (
            "tradeoffs.png",
            f"{name} against training time and peak memory",
            _tradeoff_picture(scored, metric, name),
        ),
    ]
    return [Picture(name=n, alt=alt, png=data) for n, alt, data in drawn if data is not None]


# ---------------------------------------------------------------------------------------------
# The page


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _vs_best_cell(row: Row) -> str:
    """The row against the best (`leaderboard.vs_best`), or "-" on the best row."""
    vs = row.vs_best
    if vs is None:
        return "-"
    parts = ["?" if vs.diff is None else f"{vs.diff:+.4f}"]
    if vs.ci95 is not None:
        parts.append(f"[{vs.ci95[0]:+.4f}, {vs.ci95[1]:+.4f}]")
    if vs.p_value is not None:
        parts.append(f"p {vs.p_value:.3f}")
    if vs.tied:
        parts.append("tied")
    if vs.unpaired:
        parts.append(f"(not paired: {vs.unpaired})")
    return escape(" ".join(parts))


def _table(items: Sequence[Entry], metric: str, name: str) -> str:
    head = [
        "model",
        "method",
        "runs",
        name,
        "95% interval",
        "vs best",
        "train time",
        "peak memory",
        "status",
    ]
    body = []
    for e in items:
        score = e.row.scores.get(metric)
        ci = interval(e, metric)
        mean = "-" if score is None else _number(score[0])
        if score is not None and score[1] is not None:
            mean += f" ± {score[1]:.4f}"
        cells = [
            escape(e.row.runs),
            mean,
            "no interval" if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]",
            _vs_best_cell(e.row),
            escape(human_seconds(e.row.train_seconds)),
            escape(human_bytes(e.row.peak_memory_bytes)),
            escape(e.row.status),
        ]
        body.append(
            f'<tr><th scope="row">{escape(label(e.row))}</th><td>{escape(e.row.method)}</td>'
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    header = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    return (
        f'<table class="leaderboard"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _page(
    title: str,
    items: Sequence[Entry],
    pictures: Sequence[Picture],
    skipped: Sequence[str],
    missing_glyphs: bool,
    metric: str,
    name: str,
) -> str:
    parts = [*drawing.page_head(f"{title} (zoo compare)"), f"<h1>{escape(title)}</h1>"]
    if not items:
        parts.append('<p class="notice">No recorded run matches: nothing to compare.</p>')
    parts += [
        f'<p class="note">Best first by {escape(name)}; mean ± std over seeds; intervals as '
        "the runs recorded them (older runs have none).</p>",
        _table(items, metric, name),
    ]
    label_sets = {tuple(sorted(e.row.per_class_f1)) for e in items if e.row.per_class_f1}
    if len(label_sets) > 1:
        parts.append(
            '<p class="notice">The runs do not all have the same labels: a label a model was '
            "not scored on is shown as n/a.</p>"
        )
    if skipped:
        notes = "".join(f"<li>{escape(s)}</li>" for s in skipped)
        parts.append(
            '<p class="notice">Left out of the confusion matrices and curves (their scores '
            f"above come from the results store):</p><ul class=skipped>{notes}</ul>"
        )
    if missing_glyphs:
        parts.append(drawing.MISSING_GLYPHS_NOTICE)
    parts += [drawing.figure_html(p, p.alt) for p in pictures]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def compare_page(
    rows: Sequence[Row],
    records: Sequence[RunRecord],
    *,
    metric: str,
    title: str,
    metrics: Sequence[Metric] = BUILTIN_METRICS,
) -> ComparePage:
    """The page for the leaderboard `rows` (built from `records`), its pictures drawn."""
    items, skipped = entries(rows, records)
    name = label_of(metric, metrics)
    pictures, missing_glyphs = drawing.draw(lambda: _pictures(items, metric, name))
    page = _page(title, items, pictures, skipped, missing_glyphs, metric, name)
    return ComparePage(html=page, skipped=tuple(skipped))


def write_compare_page(
    path: Path,
    rows: Sequence[Row],
    records: Sequence[RunRecord],
    *,
    metric: str,
    title: str,
    metrics: Sequence[Metric] = BUILTIN_METRICS,
) -> ComparePage:
    """Write the page for the leaderboard `rows` (built from `records`) to `path`, replacing
    it (the caller checks first whether it may: zoo.files.check_output)."""
    page = compare_page(rows, records, metric=metric, title=title, metrics=metrics)
    write_text(path, page.html)
    return page
