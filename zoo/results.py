"""What the Python API returns (`zoo.run`, `zoo.check`, `zoo.compare`, `zoo.load_run`,
`zoo.predict`, `zoo.models`, `zoo.doctor`): objects that hold the results, convert to pandas,
and draw themselves in Jupyter as the command line draws them (the same rich tables, as HTML).

pandas is optional (``pip install "zoo-classify[notebook]"``): only `.to_pandas()` needs it.
"""

from __future__ import annotations

import functools
import html
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console, ConsoleOptions, RenderResult

from zoo.errors import UsageError
from zoo.metrics import BUILTIN_METRICS, INTERVALS, Metric, shown

# Wide enough for a comparison table with intervals (the CLI gives files 160 columns too).
HTML_WIDTH = 160


def html_of(*renderables: Any) -> str:
    """Rich renderables as an HTML fragment, as rich draws them in a terminal."""
    console = Console(record=True, file=io.StringIO(), width=HTML_WIDTH, force_jupyter=False)
    for drawn in renderables:
        console.print(drawn)
    return console.export_html(
        inline_styles=True,
        code_format='<pre style="font-family: Menlo, Consolas, monospace; '
        'line-height: 1.2; white-space: pre">{code}</pre>',
    )


def pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise UsageError(
            "to_pandas() needs pandas, which is not installed",
            hint='pip install pandas (or zoo with its notebook extra: pip install "zoo-classify'
            '[notebook]")',
        ) from None
    return pandas


@attrs.frozen
class HtmlPage:
    """A self-contained HTML page (a run's report, the comparison page): shown inline in
    Jupyter, in a frame of its own so that its styles stay inside it."""

    html: str
    # What the page could not draw (a comparison page: run directories it could not read).
    left_out: tuple[str, ...] = ()
    height: int = 900

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
            f'style="width: 100%; height: {self.height}px; border: 1px solid #ddd"></iframe>'
        )

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        from zoo.files import check_output, write_text

        path = Path(path)
        check_output(path, overwrite=overwrite, option="path", example="page.html")
        write_text(path, self.html)
        return path


class _Drawn:
    """Something drawn as rich renderables: printed by rich, shown as HTML in Jupyter."""

    def renderables(self) -> list[Any]:
        raise NotImplementedError

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.renderables()

    def _repr_html_(self) -> str:
        return html_of(*self.renderables())


class Models(_Drawn):
    """The registered models (`zoo.models`), in the order `zoo models` lists them."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry  # zoo.registry.Registry

    def __len__(self) -> int:
        return len(self.rows())

    def __repr__(self) -> str:
        return f"<zoo.Models: {', '.join(row['name'] for row in self.rows())}>"

    def rows(self) -> list[dict[str, Any]]:
        """What `zoo models --json` lists: one dict per model."""
        return [
            {
                "name": m.spec.name,
                "description": m.spec.description,
                "family": m.spec.family,
                "parameters": m.spec.resources.parameters,
                "methods": list(m.spec.resources.methods),
                "source": m.spec.source.describe(),
                "plugin": m.plugin,
            }
            for m in self.registry
        ]

    def renderables(self) -> list[Any]:
        from zoo.report import models_table

        return [models_table(self.registry)]

    def to_pandas(self) -> Any:
        return pandas().DataFrame(self.rows())


class Results(_Drawn):
    """The runs of `zoo.run`, one per model (and seed, and fold), in the order they ran."""

    def __init__(self, runs: Sequence[Any], metrics: Sequence[Metric] = BUILTIN_METRICS) -> None:
        self.runs = tuple(runs)  # zoo.runner.ModelRun
        self.metrics = tuple(metrics)

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.runs)

    def __getitem__(self, index: int) -> Any:
        return self.runs[index]

    def __repr__(self) -> str:
        listed = ", ".join(f"{r.model} ({r.status})" for r in self.runs)
        return f"<zoo.Results: {len(self.runs)} run(s): {listed}>"

    @functools.cached_property
    def against_the_best(self) -> list[Any]:
        """The leaderboard of these runs, each row against the best on the same test rows
        (`zoo.leaderboard.vs_best`); empty when no run has test scores."""
        from zoo.leaderboard import leaderboard, vs_best

        if not any(run.metrics.get("test") for run in self.runs):  # nothing to pair them on
            return []
        # Of a search, the trial it chose on validation stands for it (never a test choice).
        chosen = [run for run in self.runs if run.trial is None or run.best]
        records = [run.record for run in chosen if run.record is not None]
        return vs_best(leaderboard(records, metrics=self.metrics), metrics=self.metrics)

    @property
    def exit_code(self) -> int:
        """What `zoo run` exits with for these runs (`zoo.errors`)."""
        from zoo.runner import exit_code

        return exit_code(list(self.runs))

    def renderables(self) -> list[Any]:
        """`zoo run`'s tables: one row per run, the runs that the paired test cannot tell from
        the best marked when each model ran once; with several runs of a model (seeds), the
        leaderboard of these runs after it, which says the same over all their runs."""
        from zoo.leaderboard import leaderboard_table, legend
        from zoo.report import comparison_table

        against = self.against_the_best
        if all(row.runs <= 1 for row in against):
            marked = {
                d for row in against if row.vs_best and row.vs_best.tied for d in row.run_dirs
            }
            tied = {run.run_dir for run in self.runs if _stored_dir(run) in marked}
            return [
                comparison_table(
                    self.runs,
                    title="Comparison",
                    metrics=self.metrics,
                    tied=tied,
                    legend=legend(against, self.metrics),
                )
            ]
        over = leaderboard_table(against, title="Over all runs", metrics=self.metrics)
        return [comparison_table(self.runs, title="Comparison", metrics=self.metrics), over]

    def vs_best_of(self, run: Any) -> dict[str, Any] | None:
        """The run's row against the best, when that row is this run alone."""
        for row in self.against_the_best:
            if row.runs == 1 and row.run_dirs == (_stored_dir(run),) and row.vs_best is not None:
                return row.vs_best.to_json()
        return None

    def to_json(self) -> dict[str, Any]:
        """What `zoo run --json` prints."""
        return {"runs": [run.to_json() | {"vs_best": self.vs_best_of(run)} for run in self.runs]}

    def to_pandas(self) -> Any:
        """One row per run: its model, status, method, seed, fold and trial, each score of its test
        split (validation without one) with its 95% interval (`_ci95_low`, `_ci95_high`),
        `tied` (the paired test cannot tell it from the best; empty on the best and where no
        test was made), train time, peak memory, parameters and run directory."""
        reports = [
            run.metrics.get("test") or run.metrics.get("validation") or {} for run in self.runs
        ]
        names = [m.name for m in shown(self.metrics, reports)]
        rows = []
        for run, report in zip(self.runs, reports, strict=True):
            intervals = report.get(INTERVALS) or {}
            vs = self.vs_best_of(run)
            row = {
                "model": run.model,
                "status": run.status,
                "method": run.method,
                "seed": run.seed,
                "fold": run.fold,
                # A trial of a search ([search]): its number and whether it was chosen.
                "trial": run.trial,
                "best": run.best,
                "split": "test" if run.metrics.get("test") else "validation",
            }
            for name in names:
                low, high = intervals.get(name) or (None, None)
                row |= {name: report.get(name), f"{name}_ci95_low": low, f"{name}_ci95_high": high}
            row |= {
                "tied": None if vs is None else vs["tied"],
                "train_seconds": run.train_seconds,
                "peak_memory_bytes": run.peak_memory_bytes,
                "parameters": run.parameters,
                "reason": run.reason,
                "run_dir": None if run.run_dir is None else str(run.run_dir),
            }
            rows.append(row)
        return pandas().DataFrame(rows)


def _stored_dir(run: Any) -> str | None:
    """The run directory as its results-store record names it (resolved)."""
    return None if run.run_dir is None else str(Path(run.run_dir).resolve())


class Leaderboard(_Drawn):
    """The recorded runs of `zoo.compare`: one row per model and method, best first."""

    def __init__(
        self,
        rows: Sequence[Any],
        records: Sequence[Any],
        *,
        title: str,
        by: str,
        metrics: Sequence[Metric] = BUILTIN_METRICS,
    ) -> None:
        self.rows = tuple(rows)  # zoo.leaderboard.Row, against the best
        self.records = tuple(records)  # zoo.store.RunRecord: the runs the rows are made of
        self.title = title
        self.by = by
        self.metrics = tuple(metrics)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"<zoo.Leaderboard: {self.title}: {len(self.rows)} row(s)>"

    def renderables(self) -> list[Any]:
        from zoo.leaderboard import leaderboard_table, per_class_table

        return [
            leaderboard_table(self.rows, title=self.title, metrics=self.metrics),
            per_class_table(self.rows),
        ]

    def to_json(self) -> dict[str, Any]:
        """What `zoo compare --json` prints."""
        from zoo.leaderboard import to_json

        return to_json(self.rows)

    def to_csv(self) -> str:
        """What `zoo compare --csv` prints."""
        from zoo.leaderboard import to_csv

        return to_csv(self.rows, metrics=self.metrics)

    def to_pandas(self) -> Any:
        """The columns of `zoo compare --csv`, one row per leaderboard row."""
        from zoo.leaderboard import csv_table

        header, lines = csv_table(self.rows, metrics=self.metrics)
        return pandas().DataFrame(lines, columns=header)

    def page(self) -> HtmlPage:
        """The comparison page (`zoo compare --html`) with its pictures; shown inline in Jupyter,
        `.save(path)` writes it."""
        from zoo.compare_page import compare_page
        from zoo.metrics import DEFAULT_METRIC

        metric = self.by if self.by in {m.name for m in self.metrics} else DEFAULT_METRIC
        page = compare_page(
            self.rows, self.records, metric=metric, title=self.title, metrics=self.metrics
        )
        return HtmlPage(page.html, left_out=page.skipped)


class Run(_Drawn):
    """One run directory, as `zoo show` and `zoo report` read it (`zoo.load_run`)."""

    def __init__(self, run: Any, metrics: Sequence[Metric] = BUILTIN_METRICS) -> None:
        self._run = run  # zoo.rundir.RunDir
        self.metrics_registered = tuple(metrics)

    @property
    def path(self) -> Path:
        return self._run.path

    @property
    def record(self) -> dict[str, Any]:
        """run.json."""
        return self._run.record

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json: each split's report (empty for a run that did not finish)."""
        return self._run.metrics or {}

    @property
    def model(self) -> str | None:
        return self.record.get("model")

    @property
    def status(self) -> str:
        return self._run.status

    def __repr__(self) -> str:
        return f"<zoo.Run {self.model} ({self.status}): {self.path}>"

    def renderables(self) -> list[Any]:
        """What `zoo show` prints."""
        from zoo.report import run_tables

        return run_tables(self.record, self.metrics, self.metrics_registered)

    def report(self) -> HtmlPage:
        """The run's report (`zoo report`) with its pictures, shown inline in Jupyter; nothing is
        written (`write_report` writes it into the run directory)."""
        from zoo.html_report import report_page

        return HtmlPage(report_page(self.path, self.metrics_registered).html)

    def write_report(self) -> Any:
        """Write report.html and its pictures into the run directory (`zoo report`); returns
        their paths (`.html`, `.pictures`)."""
        from zoo.html_report import write_report

        return write_report(self.path, self.metrics_registered)

    def _repr_html_(self) -> str:
        if self.status != "ok":  # no scores to draw: what zoo show says of it
            return html_of(*self.renderables())
        return self.report()._repr_html_()


class Estimate(_Drawn):
    """`zoo check`'s verdict on one model: its estimated peak training memory per device,
    broken down, whether it fits, and if not, what would."""

    def __init__(self, check: Any) -> None:
        self.check = check  # zoo.memory.check.ModelCheck

    model = property(lambda self: self.check.model)
    method = property(lambda self: self.check.method)
    device = property(lambda self: self.check.device)
    fits = property(lambda self: self.check.fits)

    @property
    def total_bytes(self) -> int | None:
        """The estimated peak per device (None for a model without an architecture: TF-IDF)."""
        return None if self.check.estimate is None else self.check.estimate.total

    def __repr__(self) -> str:
        verdict = "fits" if self.fits else "does not fit"
        return f"<zoo.Estimate {self.model} ({self.method}) {verdict} on {self.device.name}>"

    def renderables(self) -> list[Any]:
        from zoo.report import memory_tables

        return memory_tables(self.check)

    def to_json(self) -> dict[str, Any]:
        """One model of `zoo check --json`."""
        return self.check.to_json()


class Estimates(list):
    """`zoo.check`'s list of `Estimate`s, one per model, drawn one after another in Jupyter."""

    def _repr_html_(self) -> str:
        return "".join(estimate._repr_html_() for estimate in self)


class Checkup(_Drawn):
    """`zoo.doctor`: what this machine can do for zoo, one `zoo.checkup.Check` per line.

    `.ok` when every check that zoo needs for a run on this device passed (optional ones, such
    as bitsandbytes, may be missing); `.exit_code` is what `zoo doctor` exits with."""

    SCHEMA_VERSION = 1

    def __init__(self, checks: Sequence[Any], *, device: str, gpu: bool, seconds: float) -> None:
        self.checks = tuple(checks)
        self.device = device  # where the smoke test ran: "cuda" or "cpu"
        self.gpu = gpu  # a CUDA device was asked for (zoo doctor --gpu)
        self.seconds = seconds

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> tuple[Any, ...]:
        """The needed checks that did not pass (an optional one never counts)."""
        return tuple(c for c in self.checks if c.needed and c.status != "ok")

    @property
    def exit_code(self) -> int:
        from zoo.errors import EXIT_DOCTOR

        return 0 if self.ok else EXIT_DOCTOR

    def __getitem__(self, name: str) -> Any:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else f"failed: {', '.join(c.name for c in self.failed)}"
        return f"<zoo.Checkup {len(self.checks)} checks on {self.device}, {verdict}>"

    def renderables(self) -> list[Any]:
        from zoo.report import checkup_table

        return [checkup_table(self)]

    def to_json(self) -> dict[str, Any]:
        """What `zoo doctor --json` prints (the README's "zoo doctor" section)."""
        return {
            "schema_version": self.SCHEMA_VERSION,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "device": self.device,
            "gpu_required": self.gpu,
            "seconds": round(self.seconds, 2),
            "checks": [check.to_json() for check in self.checks],
        }

    def to_pandas(self) -> Any:
        """One row per check: name, status, needed, detail."""
        rows = [{k: v for k, v in c.to_json().items() if k != "values"} for c in self.checks]
        return pandas().DataFrame(rows)


class Predictions(_Drawn):
    """`zoo.predict`: each text's label and the probability of every label, in the texts'
    order."""

    def __init__(self, texts: Sequence[Any], predicted: Any) -> None:
        self.texts = tuple(texts)
        self.labels = predicted.labels  # the run's labels, the probabilities' columns
        self.predicted = predicted.predicted  # a multi-label run: the labels joined
        self.probabilities = predicted.probabilities  # numpy, texts x labels

    def __len__(self) -> int:
        return len(self.predicted)

    def __iter__(self) -> Iterator[str]:
        return iter(self.predicted)

    def __repr__(self) -> str:
        return f"<zoo.Predictions: {len(self)} text(s) over {len(self.labels)} labels>"

    def _columns(self) -> tuple[list[str], list[list[Any]]]:
        pairs = bool(self.texts) and isinstance(self.texts[0], tuple)
        header = ["text", "pair"] if pairs else ["text"]
        header += ["label"] + [f"proba_{label}" for label in self.labels]
        lines = []
        for text, label, row in zip(self.texts, self.predicted, self.probabilities, strict=True):
            first = list(text) if pairs else [text]
            lines.append([*first, label, *(float(p) for p in row)])
        return header, lines

    def renderables(self) -> list[Any]:
        from rich.table import Table

        header, lines = self._columns()
        table = Table(title=f"Predictions ({len(self)} texts)", title_justify="left")
        for name in header:
            table.add_column(name, justify="right" if name.startswith("proba_") else "left")
        for line in lines:
            table.add_row(*(f"{c:.4f}" if isinstance(c, float) else str(c) for c in line))
        return [table]

    def to_pandas(self) -> Any:
        """Columns text (and pair), label and proba_<label> for each label: `zoo predict
        --proba`'s columns."""
        header, lines = self._columns()
        return pandas().DataFrame(lines, columns=header)
