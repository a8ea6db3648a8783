"""Rich renderables for the CLI: tables of models, plugins and results, and a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from zoo.metrics import (
    BUILTIN_METRICS,
    INTERVALS,
    THRESHOLDS,
    Metric,
    label_of,
    scores_of,
    shown,
)
from zoo.plugins import PluginInfo
from zoo.registry import Registry


def _scaled(n: float, step: float, units: Sequence[str], first: str) -> str:
    """`n` in the largest unit that keeps it at least 1 once rounded to one decimal."""
    if round(n) < step:
        return first
    for i, unit in enumerate(units):
        value = n / step ** (i + 1)
        if round(value, 1) < step or i == len(units) - 1:
            return f"{value:.1f}{unit}"
    raise AssertionError("unreachable")


def human_count(n: int | None) -> str:
    if n is None:
        return "-"
    return _scaled(n, 1000, ("K", "M", "B"), str(n))


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    return _scaled(n, 1024, (" KiB", " MiB", " GiB"), f"{n} B")


def human_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    tenths = round(s * 10)  # round once, then split, so 59.96 s reads 1m00.0s
    minutes, rest = divmod(tenths, 600)
    return f"{minutes}m{rest / 10:04.1f}s" if minutes else f"{rest / 10:.1f}s"


def models_table(registry: Registry) -> Table:
    table = Table(title="Registered models", title_justify="left")
    table.add_column("name", style="bold", overflow="fold")
    table.add_column("family", overflow="fold")
    table.add_column("parameters", justify="right")
    table.add_column("methods")
    # Fold long sources and plugin names rather than cut them: they are what a user copies.
    table.add_column("source", overflow="fold")
    table.add_column("plugin", style="dim", overflow="fold")
    for entry in registry:
        spec = entry.spec
        table.add_row(
            spec.name,
            spec.family,
            "-" if spec.resources.parameters is None else f"{spec.resources.parameters:,}",
            ", ".join(spec.resources.methods),
            spec.source.describe(),
            entry.plugin,
        )
    return table


def plugins_table(
    infos: Iterable[PluginInfo], registry: Registry, registered: Mapping[str, Mapping[str, list]]
) -> Table:
    """One row per plugin: where it comes from, whether it loaded, and what it registered
    (`zoo.plugins.what_each_registered`), kind by kind."""
    failed = dict(registry.failures)
    table = Table(title="Plugins", title_justify="left")
    for column in ("name", "from", "status", "registers"):
        table.add_column(column)
    for info in infos:
        status = info.status if info.name not in failed else f"failed: {failed[info.name]}"
        style = "" if status == "loaded" else "yellow"
        kinds = registered.get(info.name, {}) if info.name not in failed else {}
        things = "\n".join(
            f"{kind.replace('_', ' ')}: {', '.join(sorted(names))}" for kind, names in kinds.items()
        )
        table.add_row(info.name, info.origin, Text(status, style=style), things or "-")
    return table


@attrs.frozen(kw_only=True)
class Column:
    """A right-aligned column of a results table (`zoo run`'s and `zoo compare`'s)."""

    title: str
    value: Callable[[Any], Any]  # what the cell shows; None: "-"
    text: Callable[[Any], str]  # how it shows it
    higher_is_better: bool | None  # None: no value is marked best
    # The number the "best" mark compares (a score's mean); the value itself when not given.
    number: Callable[[Any], float | None] | None = None

    def compared(self, row: Any) -> float | None:
        return (self.number or self.value)(row)


def result_columns(
    metrics: Sequence[Metric], score: Callable[[Any, str], Any], text: Callable[[Any], str]
) -> list[Column]:
    """A column per metric (`score(row, name)`, shown by `text`), then train time, peak memory
    and parameters."""
    return [
        *(
            Column(
                title=m.label,
                value=lambda row, name=m.name: score(row, name),
                text=text,
                higher_is_better=m.higher_is_better,
            )
            for m in metrics
        ),
        Column(
            title="train time",
            value=lambda r: r.train_seconds,
            text=human_seconds,
            higher_is_better=False,
        ),
        Column(
            title="peak memory",
            value=lambda r: r.peak_memory_bytes,
            text=human_bytes,
            higher_is_better=False,
        ),
        Column(
            title="parameters",
            value=lambda r: r.parameters,
            text=human_count,
            higher_is_better=None,
        ),
    ]


def score_text(mean: float, std: float | None = None, ci95: Sequence[float] | None = None) -> str:
    """A score as the results tables show it: "0.8710", "0.8710 ± 0.0120" (spread over seeds),
    "0.8710 [0.82, 0.91]" (its 95% interval, which then stands for the spread too)."""
    if ci95 is not None:
        return f"{mean:.4f} [{ci95[0]:.2f}, {ci95[1]:.2f}]"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


CI_NOTE = "[95% CI]"
# Marks a row whose difference from the best the paired test cannot tell from 0.
TIED = "≈"


def best_value(values: Sequence[float | None], higher: bool | None) -> float | None:
    present = [v for v in values if v is not None]
    if higher is None or len(present) < 2:
        return None
    return max(present) if higher else min(present)


def marked_cell(text: str, marked: bool) -> Text:
    # Unmarked cells keep two spaces where "*" goes, so right-aligned numbers line up.
    return Text(text + " *", style="bold green") if marked else Text(text + "  ")


def results_table(
    title: str,
    rows: Sequence[Any],
    *,
    lead: Sequence[tuple[str, dict[str, Any]]],
    lead_cells: Callable[[Any], Sequence[Any]],
    columns: Sequence[Column],
    ok: Callable[[Any], bool],
) -> Table:
    """A table with the `lead` columns (title, options) filled by `lead_cells`, then `columns`;
    among the rows that are `ok`, the best value of each column (of two or more) is bold and
    marked with '*'. A row that is not ok shows "-" in `columns`."""
    table = Table(title=title, title_justify="left")
    for name, options in lead:
        table.add_column(name, **options)
    for column in columns:
        table.add_column(column.title, justify="right")
    done = [row for row in rows if ok(row)]
    best = [best_value([c.compared(r) for r in done], c.higher_is_better) for c in columns]
    for row in rows:
        cells = list(lead_cells(row))
        for column, top in zip(columns, best, strict=True):
            value = column.value(row) if ok(row) else None
            marked = value is not None and top is not None and column.compared(row) == top
            cells.append(marked_cell("-" if value is None else column.text(value), marked))
        table.add_row(*cells)
    return table


def _scores(run: Any) -> dict[str, Any]:
    # Test scores when the recipe has a test file, else validation scores.
    return run.metrics.get("test") or run.metrics.get("validation") or {}


def _test(run: Any, key: str) -> tuple[float, Sequence[float] | None] | None:
    """A score and its interval (None where the run has none: older runs, validation)."""
    scores = _scores(run)
    if scores.get(key) is None:
        return None
    return scores[key], (scores.get(INTERVALS) or {}).get(key)


def comparison_table(
    runs: Sequence[Any],
    title: str = "Results",
    *,
    metrics: Sequence[Metric] = BUILTIN_METRICS,
    tied: Collection[Path] = (),
    legend: str | None = None,
) -> Table:
    """One row per run; the best value of each column is bold and marked with '*', the runs in
    `tied` (by run directory: those the paired test cannot tell from the best) with TIED, and
    `legend` under the table says what that means."""
    has_test = any(r.metrics.get("test") for r in runs)
    split = "test" if has_test else "validation"
    several_seeds = len({getattr(run, "seed", None) for run in runs}) > 1
    # The columns of the metrics these runs have (a multi-label run: micro-F1, not accuracy).
    metrics = shown(metrics, [s for run in runs for s in run.metrics.values() if s])

    def lead_cells(run: Any) -> list[Any]:
        name = run_name(run, seed=several_seeds)
        if run.run_dir is not None and run.run_dir in tied:
            name = f"{name} {TIED}"
        return [Text(name), _status(run)]

    columns = [
        attrs.evolve(column, number=lambda run, value=column.value: _first(value(run)))
        for column in result_columns(metrics, _test, lambda v: score_text(v[0], ci95=v[1]))
    ]
    intervals = any(_scores(run).get(INTERVALS) for run in runs if run.status == "ok")
    table = results_table(
        f"{title} ({split} split; {CI_NOTE + '; ' if intervals else ''}* best)",
        runs,
        lead=[("model", {"style": "bold"}), ("status", {})],
        lead_cells=lead_cells,
        columns=columns,
        ok=lambda run: run.status == "ok",
    )
    table.caption, table.caption_justify = legend, "left"
    return table


def run_name(run: Any, *, seed: bool) -> str:
    """How a table names one run: its model, with its seed (when asked) and its fold (or that
    it is the ensemble of its seed's folds)."""
    parts = [f"seed {run.seed}"] if seed else []
    fold, folds = getattr(run, "fold", None), getattr(run, "folds", None)
    if folds is not None:
        parts.append(f"fold {fold}" if fold is not None else f"{folds}-fold ensemble")
    trial = getattr(run, "trial", None)
    if trial is not None:  # a trial of a search; the one it chose on validation says so
        parts.append(f"trial {trial}, best" if getattr(run, "best", None) else f"trial {trial}")
    return f"{run.model} ({', '.join(parts)})" if parts else run.model


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def score_line(report: dict[str, Any], metrics: Sequence[Metric] = BUILTIN_METRICS) -> str:
    """A split's scores in one line, in metrics.json's order, each with its 95% interval where
    the report has one: "accuracy 0.8750 [0.82, 0.93], macro-F1 ..."."""
    found = report.get(INTERVALS) or {}
    return ", ".join(
        f"{label_of(name, metrics)} {score_text(value, ci95=found.get(name))}"
        for name, value in scores_of(report).items()
    ) + (f" {CI_NOTE}" if found else "")


def _status(run: Any) -> Text:
    return Text(run.status, style={"ok": "green", "failed": "red"}.get(run.status, "yellow"))


def per_class_table(report: dict[str, Any], title: str) -> Table:
    """Each class's (multi-label: each label's, with its decision threshold) precision,
    recall, F1 and support."""
    thresholds = report.get(THRESHOLDS)
    table = Table(title=title, title_justify="left")
    table.add_column("label", style="bold")
    for column in ("precision", "recall", "F1", "support", *(("threshold",) if thresholds else ())):
        table.add_column(column, justify="right")
    for label, scores in report["per_class"].items():
        table.add_row(
            Text(label),
            f"{scores['precision']:.4f}",
            f"{scores['recall']:.4f}",
            f"{scores['f1']:.4f}",
            str(scores["support"]),
            *((f"{thresholds[label]:.3f}",) if thresholds else ()),
        )
    return table


def confusion_table(report: dict[str, Any]) -> Table:
    labels = report["confusion_matrix"]["labels"]
    table = Table(title="Confusion matrix (rows: true, columns: predicted)", title_justify="left")
    table.add_column("", style="bold")
    for label in labels:
        table.add_column(Text(label), justify="right")
    for label, row in zip(labels, report["confusion_matrix"]["matrix"], strict=True):
        table.add_row(Text(label), *(str(n) for n in row))
    return table


def run_tables(
    record: Mapping[str, Any],
    metrics: Mapping[str, Any],
    registered: Sequence[Metric] = BUILTIN_METRICS,
) -> list[Any]:
    """What `zoo show` prints of a run (run.json and metrics.json): how it ran, then each
    split's scores, per-class table and confusion matrix (none for multi-label runs)."""
    drawn: list[Any] = [
        Text(
            f"{record.get('model')} ({record.get('status')}) on {record.get('device', '-')}, "
            f"{record.get('precision', '-')}: trained in "
            f"{human_seconds(record.get('train_seconds'))}, "
            f"peak memory {human_bytes(record.get('peak_memory_bytes'))}"
        )
    ]
    if record.get("reason"):
        drawn.append(Text(f"reason: {record['reason']}"))
    for split in ("validation", "test"):
        report = metrics.get(split)
        if report:
            drawn.append(
                Text.assemble("\n", (split, "bold"), f": {score_line(report, registered)}")
            )
            drawn.append(per_class_table(report, f"{split}: per class"))
            if "confusion_matrix" in report:
                drawn.append(confusion_table(report))
    return drawn


class RichProgress:
    """The engine's progress sink, drawn as a rich progress bar on `console` (stderr)."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self._progress: Progress | None = None
        self._task: Any = None

    def start(self, description: str, total: int) -> None:
        self.stop()
        self._progress = Progress(
            TextColumn(f"[bold]{self.label}[/] {description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task(description, total=total)
        self._progress.start()

    def advance(self, steps: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, steps)

    def message(self, text: str) -> None:
        self.console.print(f"[dim]{self.label}:[/] {text}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class NoProgress:
    """A progress sink that shows nothing (the other processes of a distributed run)."""

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass


class LineProgress:
    """A progress sink that says each stage in one line when it starts and when it ends: for
    a Jupyter notebook without ipywidgets, where rich cannot redraw a bar in place."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self._stage: tuple[str, int, int] | None = None

    def start(self, description: str, total: int) -> None:
        self.stop()
        self._stage = (description, total, 0)
        self.console.print(f"[bold]{self.label}[/] {description}: {total} steps")

    def advance(self, steps: int = 1) -> None:
        if self._stage is not None:
            description, total, done = self._stage
            self._stage = (description, total, done + steps)

    def message(self, text: str) -> None:
        self.console.print(f"[dim]{self.label}:[/] {text}")

    def stop(self) -> None:
        if self._stage is not None:
            description, total, done = self._stage
            self.console.print(f"[bold]{self.label}[/] {description}: {done}/{total} steps done")
            self._stage = None


def progress_for(console: Console) -> Callable[[str], Any]:
    """How `console` shows progress: a rich bar, redrawn in place in a terminal and in Jupyter
    with ipywidgets (rich draws it in an output widget there); a line per stage in Jupyter
    without them, where every redraw would be a new output."""
    if console.is_jupyter:
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return lambda label: LineProgress(console, label)
    return lambda label: RichProgress(console, label)


def memory_tables(check: Any) -> list[Table]:
    """The memory check of one model (`zoo.memory.check.ModelCheck`): its breakdown and
    verdict, and when it does not fit, the changes that would make it fit."""
    est, device = check.estimate, check.device
    title = f"{check.model} ({check.method}) on {device.name}"
    table = Table(title=title, title_justify="left")
    table.add_column("memory per device", style="bold")
    table.add_column("bytes", justify="right")
    if est is None:
        table.add_row("not estimated", "-")
        table.caption = "the model declares no architecture (not a transformer)"
        return [table]
    for key, name in est.terms():
        if est.breakdown[key]:
            table.add_row(name, human_bytes(est.breakdown[key]))
    table.add_section()
    verdict = Text("fits", style="green") if check.fits else Text("does not fit", style="red")
    table.add_row(Text(f"total at the peak ({est.phase})", style="bold"), human_bytes(est.total))
    table.add_row("available", human_bytes(device.available))
    table.add_row("verdict", verdict)
    notes = [f"{human_count(est.parameters)} parameters, {human_count(est.trainable)} trained"]
    if not est.approximate:
        notes.append(f"model family {est.family}")
    if est.device == "cpu":
        notes.append("activations as CPU kernels save them")
    if est.head == "label-words" and not est.breakdown["logits"]:
        notes.append(f"LM head logits and loss {human_bytes(est.logits)} (at the backward's start)")
    if est.approximate:
        notes.append("approximate: this architecture is estimated as a BERT-like model")
    table.caption = "; ".join(notes)
    tables = [table]
    if check.suggestions:
        changes = Table(title="What would fit (one change at a time)", title_justify="left")
        changes.add_column("change")
        changes.add_column("total", justify="right")
        changes.add_column("fits")
        for plan in check.suggestions:
            fits = plan.estimate.total <= device.available
            changes.add_row(
                plan.change,
                human_bytes(plan.estimate.total),
                Text("yes", style="green") if fits else Text("no", style="red"),
            )
        if check.plan is not None:
            changes.caption = (
                f"cheapest plan that fits: {check.plan.change} "
                f"({human_bytes(check.plan.estimate.total)}); 'zoo run --auto-fit' applies it"
            )
        else:
            changes.caption = "nothing zoo can change makes it fit this device"
        tables.append(changes)
    return tables


def gpu_presets_table() -> Table:
    """The GPUs that `zoo check --gpu NAME` knows (`zoo.memory.gpus.PRESETS`)."""
    from zoo.memory.estimate import CUDA_CONTEXT
    from zoo.memory.gpus import PRESETS, units

    table = Table(title="GPU presets", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("GPU")
    table.add_column("memory", justify="right")
    table.add_column("units")
    for preset in PRESETS:
        table.add_row(preset.name, preset.label, human_bytes(preset.memory), units(preset))
    context = human_bytes(CUDA_CONTEXT)
    table.caption = f"memory: nvidia-smi's total; zoo plans with the CUDA context ({context}) off"
    return table


STATUS_STYLES = {"ok": "green", "missing": "yellow", "failed": "red", "skipped": "dim"}


def checkup_table(checkup: Any) -> Table:
    """`zoo doctor`: one line per check (`zoo.results.Checkup`), its status and why."""
    table = Table(title=f"zoo doctor ({checkup.device})", title_justify="left")
    table.add_column("check", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("needed", no_wrap=True)
    table.add_column("detail")
    for check in checkup.checks:
        status = Text(check.status, style=STATUS_STYLES[check.status])
        # Text, not markup: a detail may hold brackets ("[distributed] strategy").
        table.add_row(check.name, status, "yes" if check.needed else "", Text(check.detail))
    took = human_seconds(checkup.seconds)
    if checkup.ok:
        table.caption = f"everything zoo needs for a run on this device works ({took}); exit 0"
    else:
        names = ", ".join(f"{c.name} ({c.status})" for c in checkup.failed)
        table.caption = f"zoo needs what did not pass: {names} ({took}); exit {checkup.exit_code}"
    return table
