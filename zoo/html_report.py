"""One finished run as a self-contained HTML page with its pictures.

`write_report(run_dir)` reads what `zoo run` left in the run directory and writes `report.html`
beside it: the run's facts, the classification report and confusion matrix of each split, and
three pictures (learning rate, loss and validation metric curves, confusion-matrix heat map),
which are also written as PNG files and embedded in the page, so that the page alone can be
mailed or archived. matplotlib is imported only when a report is drawn.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from zoo.drawing import (
    MISSING_GLYPHS_NOTICE,
    Picture,
    draw,
    escape,
    figure,
    figure_html,
    page_head,
    png,
    shown,
    write_bytes,
)
from zoo.files import write_text
from zoo.metrics import (
    ACCURACY,
    BUILTIN_METRICS,
    DEFAULT_METRIC,
    F1_MACRO,
    F1_WEIGHTED,
    THRESHOLDS,
    Metric,
    label_of,
)
from zoo.report import human_bytes, human_count, human_seconds, score_line
from zoo.rundir import read_run
from zoo.spec import PROMPTING_METHODS

REPORT_NAME = "report.html"
LEARNING_RATE_PNG = "learning_rate.png"
CURVES_PNG = "curves.png"
CONFUSION_PNG = "confusion_matrix.png"


@attrs.frozen(kw_only=True)
class ReportFiles:
    """What `write_report` wrote: the page and the pictures it embeds (those it could draw)."""

    html: Path
    pictures: tuple[Path, ...]


@attrs.frozen(kw_only=True)
class _Run:
    """The parts of a run directory that a report shows."""

    dir: Path
    record: dict[str, Any]
    metrics: dict[str, Any]
    log_history: list[dict[str, Any]]
    labels: tuple[str, ...]
    registered: Sequence[Metric] = BUILTIN_METRICS  # for their labels and directions

    @property
    def metric(self) -> str:
        return (self.record.get("settings") or {}).get("metric") or DEFAULT_METRIC

    @property
    def higher_is_better(self) -> bool:
        return next((m.higher_is_better for m in self.registered if m.name == self.metric), True)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in ("validation", "test") if self.metrics.get(s))

    @property
    def confusion_split(self) -> str:
        return "test" if self.metrics.get("test") else "validation"


# ---------------------------------------------------------------------------------------------
# Reading the run directory


def _read_run(run_dir: Path, registered: Sequence[Metric]) -> _Run:
    run = read_run(run_dir, needs=("finished", "metrics", "labels", "log_history"))
    assert run.metrics is not None and run.labels is not None and run.log_history is not None
    return _Run(
        dir=run.path,
        record=run.record,
        metrics=run.metrics,
        log_history=run.log_history,
        labels=run.labels,
        registered=registered,
    )


# ---------------------------------------------------------------------------------------------
# Pictures


def _series(history: Sequence[dict[str, Any]], x: str, y: str) -> tuple[list[float], list[float]]:
    points = [(e[x], e[y]) for e in history if e.get(x) is not None and e.get(y) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def _model(run: _Run) -> str:
    return str(run.record.get("model") or run.dir.name)


def _title(run: _Run, what: str, width: int = 70) -> str:
    return textwrap.fill(f"{shown(_model(run))}: {what}", width)


def _learning_rate_picture(run: _Run) -> bytes | None:
    from matplotlib.ticker import FuncFormatter

    steps, rates = _series(run.log_history, "step", "learning_rate")
    if not steps:
        return None
    settings = run.record.get("settings") or {}
    fig = figure(7.0, 3.6)
    ax = fig.add_subplot()
    ax.plot(steps, rates, marker="o", markersize=3, label="learning rate")
    schedule = settings.get("lr_scheduler")
    warmup = settings.get("warmup_ratio")
    if schedule:
        ax.set_title(f"{schedule} schedule" + (f", warmup {warmup:.0%}" if warmup else ""))
    fig.suptitle(_title(run, "learning rate per optimizer step"))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.yaxis.set_major_formatter(
        FuncFormatter(lambda value, _pos: f"{value:.1e}" if value else "0")
    )
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return png(fig)


def _curves_picture(run: _Run) -> bytes | None:
    history = run.log_history
    train_x, train_loss = _series(history, "epoch", "loss")
    eval_x, eval_loss = _series(history, "epoch", "eval_loss")
    metric_x, metric = _series(history, "epoch", f"eval_{run.metric}")
    if not (train_x or eval_x or metric_x):
        return None
    metric_name = label_of(run.metric, run.registered)
    fig = figure(10.0, 4.0)
    loss_ax, metric_ax = fig.subplots(1, 2)
    if train_x:
        loss_ax.plot(train_x, train_loss, marker="o", markersize=3, label="training loss (per log)")
    if eval_x:
        loss_ax.plot(eval_x, eval_loss, marker="s", markersize=5, label="validation loss")
    loss_ax.set_title("Loss")
    loss_ax.set_ylabel("cross-entropy loss")
    loss_ax.set_ylim(bottom=0)
    if metric:
        metric_ax.plot(metric_x, metric, marker="s", markersize=5, color="C2", label=metric_name)
        pick = max if run.higher_is_better else min
        best = pick(range(len(metric)), key=metric.__getitem__)  # the first best is the one kept
        metric_ax.plot(
            metric_x[best],
            metric[best],
            marker="*",
            markersize=16,
            color="C3",
            linestyle="none",
            label=f"best {metric[best]:.4f} (epoch {metric_x[best]:g})",
        )
    metric_ax.set_title(f"Validation {metric_name}")
    metric_ax.set_ylabel(metric_name)
    if min(metric, default=0) >= 0 and max(metric, default=0) <= 1:  # a score in [0, 1]
        metric_ax.set_ylim(0, 1.05)
    x_max = max([*train_x, *eval_x, *metric_x])
    for ax, legend_at in ((loss_ax, "best"), (metric_ax, "lower right")):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if x_max > 0:
            ax.set_xlim(0, x_max * 1.03)
        if ax.get_lines():
            ax.legend(loc=legend_at)
        else:
            ax.text(0.5, 0.5, "nothing logged", ha="center", transform=ax.transAxes)
    fig.suptitle(_title(run, "training curves"))
    return png(fig)


def _confusion_picture(run: _Run) -> bytes:
    split = run.confusion_split
    confusion = run.metrics[split]["confusion_matrix"]
    labels, matrix = confusion["labels"], confusion["matrix"]
    n = len(labels)
    side = max(4.8, 0.65 * n + 2.6)
    fig = figure(side + 1.0, side)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            color = "white" if count > top / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=10)
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    if n > 5 or max((len(label) for label in labels), default=0) > 6:
        for tick in ax.get_xticklabels():
            tick.set(rotation=35, ha="right", rotation_mode="anchor")
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    rows = sum(sum(row) for row in matrix)
    ax.set_title(_title(run, f"confusion matrix, {split} split ({rows} rows)", width=50))
    fig.colorbar(image, ax=ax, shrink=0.8, label="rows")
    return png(fig)


def _pictures(run: _Run) -> list[Picture]:
    """The pictures that the run has data for."""
    pictures = []
    learning_rate = _learning_rate_picture(run)
    if learning_rate is not None:
        pictures.append(
            Picture(name=LEARNING_RATE_PNG, alt="learning rate per step", png=learning_rate)
        )
    curves = _curves_picture(run)
    if curves is not None:
        pictures.append(
            Picture(name=CURVES_PNG, alt="loss and validation metric per epoch", png=curves)
        )
    if "confusion_matrix" in run.metrics[run.confusion_split]:  # none for multi-label runs
        confusion = _confusion_picture(run)
        pictures.append(Picture(name=CONFUSION_PNG, alt="confusion matrix", png=confusion))
    return pictures


# ---------------------------------------------------------------------------------------------
# The page


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _averages(report: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Macro and weighted precision and recall from the per-class values, as scikit-learn
    averages them: macro over the classes that occur in the split or among its predictions
    (the classes behind metrics.json's macro-F1), weighted by support."""
    labels = report["confusion_matrix"]["labels"]
    matrix = report["confusion_matrix"]["matrix"]
    per_class = report["per_class"]
    predicted = [sum(row[j] for row in matrix) for j in range(len(labels))]
    present = [
        label for j, label in enumerate(labels) if per_class[label]["support"] or predicted[j]
    ]
    total = sum(per_class[label]["support"] for label in labels)
    macro: dict[str, float | None] = {"f1": report[F1_MACRO.name]}
    weighted: dict[str, float | None] = {"f1": report[F1_WEIGHTED.name]}
    for key in ("precision", "recall"):
        values = [per_class[label][key] for label in present]
        macro[key] = sum(values) / len(values) if values else None
        weighted[key] = (
            sum(per_class[label][key] * per_class[label]["support"] for label in labels) / total
            if total
            else None
        )
    macro["support"] = weighted["support"] = total
    return {"macro avg": macro, "weighted avg": weighted}


def _classification_table(report: dict[str, Any]) -> str:
    head = "".join(f"<th>{c}</th>" for c in ("label", "precision", "recall", "F1", "support"))
    rows = []
    for label, s in report["per_class"].items():
        absent = not s["support"]
        note = ' <span class="note">(not in this split)</span>' if absent else ""
        rows.append(
            f'<tr{" class=absent" if absent else ""}><th scope="row">{escape(label)}{note}</th>'
            f"<td>{_score(s['precision'])}</td><td>{_score(s['recall'])}</td>"
            f"<td>{_score(s['f1'])}</td><td>{escape(s['support'])}</td></tr>"
        )
    total = sum(s["support"] for s in report["per_class"].values())
    rows.append(
        f'<tr class="summary"><th scope="row">{ACCURACY.label}</th><td></td><td></td>'
        f"<td>{_score(report[ACCURACY.name])}</td><td>{total}</td></tr>"
    )
    for name, s in _averages(report).items():
        rows.append(
            f'<tr class="summary"><th scope="row">{name}</th><td>{_score(s["precision"])}</td>'
            f"<td>{_score(s['recall'])}</td><td>{_score(s['f1'])}</td><td>{s['support']}</td></tr>"
        )
    return (
        f'<table class="scores"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _label_table(report: dict[str, Any]) -> str:
    """A multi-label split's per-label precision, recall, F1, support and threshold."""
    columns = ("label", "precision", "recall", "F1", "support", "threshold")
    head = "".join(f"<th>{c}</th>" for c in columns)
    rows = [
        f'<tr><th scope="row">{escape(label)}</th><td>{_score(s["precision"])}</td>'
        f"<td>{_score(s['recall'])}</td><td>{_score(s['f1'])}</td><td>{escape(s['support'])}</td>"
        f"<td>{report[THRESHOLDS][label]:.3f}</td></tr>"
        for label, s in report["per_class"].items()
    ]
    return (
        f'<table class="scores"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _confusion_table(report: dict[str, Any]) -> str:
    labels = report["confusion_matrix"]["labels"]
    matrix = report["confusion_matrix"]["matrix"]
    top = max((max(row) for row in matrix), default=0) or 1
    head = "".join(f'<th scope="col">{escape(label)}</th>' for label in labels)
    rows = []
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        cells = []
        for j, count in enumerate(row):
            shade = 0.08 + 0.6 * count / top if count else 0
            style = f"background: rgba(33, 113, 181, {shade:.2f})" if shade else ""
            style += "; color: white" if shade > 0.45 else ""
            style = f' style="{style}"' if style else ""
            cls = ' class="diagonal"' if i == j else ""
            cells.append(f"<td{cls}{style}>{count}</td>")
        rows.append(f'<tr><th scope="row">{escape(label)}</th>{"".join(cells)}</tr>')
    return (
        '<table class="confusion"><thead><tr><th class="corner">true \\ predicted</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _facts_table(run: _Run) -> str:
    record = run.record
    settings = record.get("settings") or {}
    rows_by_split = record.get("rows") or {}
    kind = record.get("peak_memory_kind")
    memory_note = {
        "cpu_peak_rss": " (peak resident set size of the process)",
        "cuda_max_allocated": " (GPU allocator peak)",
    }.get(kind or "", "")
    parameters = record.get("parameters")
    trainable = record.get("trainable_parameters")
    facts = [
        ("model", record.get("model")),
        ("registered model", record.get("registered_model")),
        ("source", record.get("source")),
        ("started", record.get("started")),
        ("device", record.get("device")),
        ("precision", record.get("precision")),
        ("method", record.get("method")),
        ("seed", record.get("seed")),
        ("train time", human_seconds(record.get("train_seconds"))),
        ("wall time", human_seconds(record.get("wall_seconds"))),
        ("peak memory", f"{human_bytes(record.get('peak_memory_bytes'))}{memory_note}"),
        (
            "parameters",
            None if parameters is None else f"{parameters:,} ({human_count(parameters)})",
        ),
        ("trainable parameters", None if trainable is None else f"{trainable:,}"),
        ("rows", ", ".join(f"{split} {n}" for split, n in rows_by_split.items()) or None),
        ("labels", ", ".join(run.labels)),
        (
            "settings",
            ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None) or None,
        ),
        (
            "versions",
            ", ".join(f"{k} {v}" for k, v in (record.get("versions") or {}).items()) or None,
        ),
    ]
    body = "".join(
        f'<tr><th scope="row">{escape(name)}</th><td>{escape("-" if v is None else v)}</td></tr>'
        for name, v in facts
    )
    return f'<table class="facts"><tbody>{body}</tbody></table>'


CSS = """
table.facts td { text-align: left; } table.facts th { color: #59636e; font-weight: normal; }
tr.summary th, tr.summary td { border-top: 2px solid #afb8c1; }
tr.summary + tr.summary th, tr.summary + tr.summary td { border-top: none; }
tr.absent { color: #8c959f; }
table.confusion td { min-width: 3rem; text-align: center; border: 1px solid #e5e9ed; }
table.confusion td.diagonal { font-weight: bold; }
th.corner { color: #59636e; font-weight: normal; }
"""


def _page(run: _Run, pictures: Sequence[Picture], missing_glyphs: bool) -> str:
    model = _model(run)
    parts = [
        *page_head(f"{model}: {run.dir.name} (zoo report)", CSS),
        f"<h1>{escape(model)} <small>{escape(run.dir.name)}</small></h1>",
        "<h2>Run</h2>",
        _facts_table(run),
    ]
    for split in run.splits:
        report = run.metrics[split]
        if THRESHOLDS in report:  # multi-label: per label, no confusion matrix
            parts += [
                f"<h2>{split.capitalize()} split</h2>",
                f"<p>{escape(score_line(report, run.registered))}</p>",
                "<h3>Per label</h3>",
                _label_table(report),
                '<p class="note">Several labels per text: each label is decided by its own '
                "threshold (tuned on the validation split unless training.threshold fixes it); "
                "support counts the rows that carry the label.</p>",
            ]
            continue
        parts += [
            f"<h2>{split.capitalize()} split</h2>",
            f"<p>{escape(score_line(report, run.registered))}</p>",
            "<h3>Classification report</h3>",
            _classification_table(report),
            '<p class="note">Macro averages are over the classes that occur in this split or '
            "among its predictions; weighted averages weigh each class by its support.</p>",
            "<h3>Confusion matrix</h3>",
            '<p class="note">Rows: true label; columns: predicted label.</p>',
            _confusion_table(report),
        ]
    parts.append("<h2>Pictures</h2>")
    by_name = {p.name: p for p in pictures}
    if not run.log_history:
        why = (
            f"a {run.record['method']} run trains nothing, so it has no optimizer step or "
            "evaluation to log"
            if run.record.get("method") in PROMPTING_METHODS
            else "this model was not trained step by step by the Hugging Face Trainer"
        )
        parts.append(
            '<p class="notice">No learning-rate or training curves: the log history is empty '
            f"({why}).</p>"
        )
    else:
        for name, what in ((LEARNING_RATE_PNG, "learning rate"), (CURVES_PNG, "loss or metric")):
            if name not in by_name:
                parts.append(
                    f'<p class="notice">No {what} picture: the log history has no {what} '
                    "entries.</p>"
                )
    if missing_glyphs:
        parts.append(MISSING_GLYPHS_NOTICE)
    parts += [figure_html(p) for p in pictures]
    parts.append("</body></html>\n")
    return "\n".join(parts)


@attrs.frozen
class ReportPage:
    html: str
    pictures: tuple[Picture, ...]


def report_page(run_dir: Path, metrics: Sequence[Metric] = BUILTIN_METRICS) -> ReportPage:
    """The report of `run_dir`, a directory that `zoo run` made, with its pictures drawn.

    The learning-rate and curve pictures are left out (and the page says why) when the run has
    no log history, as a zero-shot run has none. Raises `ZooError` for a directory that is not a
    finished zoo run.
    """
    run = _read_run(Path(run_dir), metrics)
    pictures, missing_glyphs = draw(lambda: _pictures(run))
    return ReportPage(html=_page(run, pictures, missing_glyphs), pictures=tuple(pictures))


def write_report(run_dir: Path, metrics: Sequence[Metric] = BUILTIN_METRICS) -> ReportFiles:
    """Write `report.html` and its PNG pictures (`report_page`) into `run_dir`."""
    run_dir = Path(run_dir)
    page = report_page(run_dir, metrics)
    paths = []
    for picture in page.pictures:
        path = run_dir / picture.name
        write_bytes(path, picture.png)
        paths.append(path)
    html_path = run_dir / REPORT_NAME
    write_text(html_path, page.html)
    return ReportFiles(html=html_path, pictures=tuple(paths))
