"""The `zoo` command line: thin wiring around the library.

Start-up stays cheap: only `zoo run` imports torch and transformers, and only once it trains.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console

import zoo
from zoo.errors import EXIT_INTERRUPTED, RecipeError, RunRefused, UsageError, WontFit, ZooError
from zoo.files import check_output
from zoo.metrics import DEFAULT_METRIC

ROUGH_HELP = (
    "estimate a model whose architecture no model family claims as a BERT-like model of its "
    "size (marked approximate), instead of refusing it (exit 6); a plugin can add the family "
    "through the register_model_families hook"
)

EPILOG = """\
exit codes:
  0  everything went well
  1  a model failed to train (the others still ran; see the table)
  2  bad command line or recipe (every problem is listed)
  3  bad data file
  4  a model's weights or files are not on this machine
  5  a plugin breaks the rules
  6  a run was refused before anything loaded (e.g. QLoRA without a CUDA GPU)
  7  a model would not fit in memory (zoo check; zoo run refuses before loading)
  130 interrupted

examples:
  zoo models                                  list the models you can train
  zoo validate recipes/demo.toml              check a recipe without running it
  zoo check recipes/koalpaca-full.toml --gpu-memory 40GiB   will it fit? what would?
  zoo run recipes/demo.toml                   fine-tune and compare the recipe's models
  zoo run recipes/demo.toml --set training.epochs=1 --json
  zoo run --resume runs/demo/e5-small-seed42-20261125-101500  continue after Ctrl-C
  zoo show runs/demo/e5-small-seed42-20261125-101500  metrics of one finished run
  zoo predict RUN_DIR --input new.csv --output submission.csv --id-column id
  zoo compare recipes/demo.toml               leaderboard of the recipe's runs on the latest data
  zoo record RUN_DIR                          record a run that the results store missed
  zoo report RUN_DIR                          HTML report with pictures
"""


def _error(message: str) -> None:
    # Plain text, not rich: error messages must not be re-wrapped or styled for scripts.
    print(f"error: {message}", file=sys.stderr, flush=True)


def _consoles() -> tuple[Console, Console]:
    # Rich falls back to 80 columns when not writing to a terminal, which squeezes the tables;
    # give files and pipes room (scores with their intervals take 20 columns each) unless
    # COLUMNS says otherwise.
    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
    return Console(width=width), Console(stderr=True, width=width)


def _check_trackers(recipe) -> None:
    from zoo.trackers import missing_problems

    problems = missing_problems(recipe)
    if problems:
        raise RecipeError(recipe.source, problems)


def _registry():
    from zoo.plugins import get_plugin_manager
    from zoo.registry import collect_models

    pm = get_plugin_manager()
    return pm, collect_models(pm)


def _metrics(pm):
    from zoo.registry import collect_metrics

    return collect_metrics(pm)


def _transforms(pm):
    from zoo.transforms import collect_transforms

    return collect_transforms(pm)


def _known_names(registry, metrics, transforms) -> dict:
    return {
        "model_names": registry.names(),
        "model_methods": registry.methods(),
        "metric_names": metrics.names(),
        "transform_names": transforms.names(),
    }


def _warn_failed_plugins(pm, registry, *others) -> None:
    """Say which plugins were left out: failed to load, or their registrations of models (and
    of what `others` collected: metrics, text transforms) failed."""
    problems = [(i.name, i.status) for i in pm.info if i.status.startswith("failed")]
    for failures in [registry.failures, *(other.failures for other in others)]:
        problems += [(name, f"failed: {reason}") for name, reason in failures]
    for name, status in problems:
        print(
            f"warning: plugin {name!r} left out ({status}); "
            f"set ZOO_BLOCK_PLUGINS={name} to skip it, see 'zoo plugins'",
            file=sys.stderr,
        )


def cmd_models(args: argparse.Namespace) -> int:
    from zoo.report import models_table

    out, err = _consoles()
    pm, registry = _registry()
    _warn_failed_plugins(pm, registry)
    if args.json:
        rows = [
            {
                "name": m.spec.name,
                "description": m.spec.description,
                "family": m.spec.family,
                "parameters": m.spec.resources.parameters,
                "methods": list(m.spec.resources.methods),
                "source": m.spec.source.describe(),
                "plugin": m.plugin,
            }
            for m in registry
        ]
        print(json.dumps({"models": rows}, indent=2))
    else:
        out.print(models_table(registry))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from zoo.plugins import what_each_registered
    from zoo.report import plugins_table

    out, _err = _consoles()
    pm, registry = _registry()
    registered = what_each_registered(pm)
    if args.json:
        failed = dict(registry.failures)
        rows = [
            {
                "name": i.name,
                "module": i.module,
                "from": i.origin,
                "status": i.status if i.name not in failed else f"failed: {failed[i.name]}",
                "models": [m.spec.name for m in registry if m.plugin == i.name],
                "registers": registered.get(i.name, {}) if i.name not in failed else {},
            }
            for i in pm.info
        ]
        print(json.dumps({"plugins": rows}, indent=2))
    else:
        out.print(plugins_table(pm.info, registry, registered))
    return 0


def _prepare(recipe, registry, transforms, metrics):
    """Every seed's data, read and checked against the recipe before anything trains."""
    from zoo.preflight import check_before_training
    from zoo.runner import load_all_splits

    splits_for = load_all_splits(recipe, transforms)
    first = next(iter(splits_for.values()))
    check_before_training(recipe, registry, first.labels, metrics.metrics)
    return splits_for


def cmd_validate(args: argparse.Namespace) -> int:
    from zoo.recipe import load_recipe

    out, err = _consoles()
    pm, registry = _registry()
    metrics, transforms = _metrics(pm), _transforms(pm)
    _warn_failed_plugins(pm, registry, metrics, transforms)
    failed = 0
    for path in args.recipes:
        try:
            known = _known_names(registry, metrics, transforms)
            recipe = load_recipe(path, overrides=args.set, **known)
            _check_trackers(recipe)
            splits = next(iter(_prepare(recipe, registry, transforms, metrics).values()))
        except ZooError as exc:
            if args.debug:
                err.print_exception()
            _error(str(exc))
            failed = failed or exc.exit_code
            continue
        _say_notices(recipe.run.name, splits.notices)
        models = ", ".join(entry.label for entry in recipe.models)
        print(f"ok {path}: run {recipe.run.name!r}, models: {models}")
    return failed


def _without_nproc(argv: list[str]) -> list[str]:
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept


def _recipe_paths(recipes: list[str], resume: Path | None) -> list[Path]:
    """The recipes given, or the one recipe an interrupted run directory holds (checked to be
    resumable before anything loads; that it still matches is checked once its data is read)."""
    from zoo.rundir import RECIPE, read_run

    if resume is None:
        if not recipes:
            raise UsageError("give a recipe to run", hint="zoo run RECIPE...  (see zoo run --help)")
        return [Path(p) for p in recipes]
    if recipes:
        raise UsageError(
            "give either recipes to run or --resume RUN_DIR, not both",
            hint="zoo run RECIPE...  or  zoo run --resume OUTPUT_DIR/RUN_NAME/MODEL-seedN-DATE",
        )
    read_run(resume, needs=("resumable", "recipe"))
    return [resume / RECIPE]


def _say_notices(run_name: str, notices: Sequence[str]) -> None:
    for notice in notices:
        print(f"{run_name}: {notice}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from zoo.engine.distributed import is_main, launch, world
    from zoo.events import collect_run_listeners
    from zoo.recipe import load_recipe
    from zoo.report import NoProgress, RichProgress
    from zoo.runner import (
        RunOptions,
        exit_code,
        format_traceback,
        is_out_of_memory,
        run_recipe,
    )

    if args.nproc > 1 and world()[1] == 1:
        # Start again under torchrun, one process per device; zoo runs in each of them.
        return launch(args.nproc, _without_nproc(args.argv))
    out, err = _consoles()
    pm, registry = _registry()
    metrics, transforms = _metrics(pm), _transforms(pm)
    if is_main():
        _warn_failed_plugins(pm, registry, metrics, transforms)
    resume = Path(args.resume) if args.resume else None
    # Check every recipe before training anything.
    recipes = [
        load_recipe(p, overrides=args.set, **_known_names(registry, metrics, transforms))
        for p in _recipe_paths(args.recipes, resume)
    ]
    # And that the trackers they report to are installed, before any data or model loads.
    for recipe in recipes:
        _check_trackers(recipe)
    # Every recipe's data too, and the recipe against it: a bad file in the last recipe stops
    # the run before any training.
    prepared = [(recipe, _prepare(recipe, registry, transforms, metrics)) for recipe in recipes]
    for recipe, splits_for in prepared:
        _say_notices(recipe.run.name, next(iter(splits_for.values())).notices)
    # And whether each model fits in memory, before any model loads.
    device = _device(pm, None, world()[1] if world()[1] > 1 else None)
    memory: dict[str, Any] = {}
    fitted = []
    for recipe, splits_for in prepared:
        labels = len(next(iter(splits_for.values())).labels)
        recipe, records = _fit_to_memory(recipe, registry, device, labels, args, err)
        memory |= {(recipe.run.name, label): check for label, check in records.items()}
        fitted.append((recipe, splits_for))
    prepared = fitted
    options = RunOptions(
        resume=resume,
        oom_retries=args.oom_retries,
        memory=memory,
        device=device,
        listeners=collect_run_listeners(pm),
        metrics=metrics.metrics,
    )

    def on_failure(model: str, exc: BaseException) -> None:
        verb = "refused" if isinstance(exc, RunRefused) else "failed"
        text = str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}"
        if is_out_of_memory(exc):
            text += "\n  hint: --oom-retries 2 retries with a smaller batch (same effective batch)"
        _error(f"model {model!r} {verb}: {text}")
        if args.debug:
            err.print(format_traceback(exc), markup=False, highlight=False)

    runs = []
    # With --json, stdout carries the one JSON object alone: anything a library prints goes to
    # stderr.
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        for recipe, splits_for in prepared:
            if is_main():
                err.print(f"run {recipe.run.name!r}: {len(recipe.models)} model(s)", markup=False)
            progress = (
                (lambda label: RichProgress(err, label)) if is_main() else (lambda _: NoProgress())
            )
            runs += run_recipe(recipe, registry, progress, on_failure, options, splits_for)
    if not is_main():  # the main process reports for all of them
        return 0
    against = _against_the_best(runs, metrics.metrics)
    tables = _run_tables(runs, against, metrics.metrics)
    if args.json:
        err.print(*tables)
        found = [r.to_json() | {"vs_best": _vs_best_of(r, against)} for r in runs]
        print(json.dumps({"runs": found}, indent=2, ensure_ascii=False))
    else:
        out.print(*tables)
        for run in runs:
            if run.run_dir:
                out.print(f"{run.model}: {run.run_dir}", style="dim", markup=False)
    return exit_code(runs)


def _against_the_best(runs, metrics):
    """The leaderboard of these runs, each row against the best (`zoo.leaderboard.vs_best`)."""
    from zoo.leaderboard import leaderboard, vs_best

    if not any(run.metrics.get("test") for run in runs):  # nothing to pair them on
        return []
    records = [run.record for run in runs if run.record is not None]
    return vs_best(leaderboard(records, metrics=metrics), metrics=metrics)


def _run_tables(runs, against, metrics) -> list[Any]:
    """`zoo run`'s tables: one row per run, with the rows the paired test ties with the best
    marked when each model ran once; when some ran several times (seeds), the leaderboard of
    these runs after it, which says the same over all their runs."""
    from zoo.leaderboard import leaderboard_table, legend
    from zoo.report import comparison_table

    if all(row.runs <= 1 for row in against):
        marked = {d for row in against if row.vs_best and row.vs_best.tied for d in row.run_dirs}
        tied = {run.run_dir for run in runs if _stored_dir(run) in marked}
        legend_line = legend(against, metrics)
        return [
            comparison_table(
                runs, title="Comparison", metrics=metrics, tied=tied, legend=legend_line
            )
        ]
    over = leaderboard_table(against, title="Over all runs", metrics=metrics)
    return [comparison_table(runs, title="Comparison", metrics=metrics), over]


def _vs_best_of(run, against) -> dict[str, Any] | None:
    """The run's row against the best, when that row is this run alone."""
    for row in against:
        if row.runs == 1 and row.run_dirs == (_stored_dir(run),) and row.vs_best is not None:
            return row.vs_best.to_json()
    return None


def _stored_dir(run) -> str | None:
    """The run directory as its results-store record names it (resolved)."""
    return None if run.run_dir is None else str(Path(run.run_dir).resolve())


def _device(pm, gpu_memory: str | None, gpus: int | None):
    """The device to plan for: one the user names, else what the device probes find."""
    from zoo.memory.probe import named_gpu, probe_device

    if gpu_memory:
        return named_gpu(gpu_memory, gpus or 1)
    found = probe_device(pm)
    return attrs.evolve(found, count=gpus) if gpus else found


def cmd_check(args: argparse.Namespace) -> int:
    from zoo.memory.check import check_recipe
    from zoo.recipe import load_recipe
    from zoo.report import memory_tables

    out, err = _consoles()
    pm, registry = _registry()
    known = _known_names(registry, _metrics(pm), _transforms(pm))
    recipes = [load_recipe(p, overrides=args.set, **known) for p in args.recipes]
    device = _device(pm, args.gpu_memory, args.gpus)
    checks = [
        check
        for recipe in recipes
        for check in check_recipe(recipe, registry, device, rough=args.rough)
    ]
    if args.json:
        print(json.dumps({"models": [c.to_json() for c in checks]}, indent=2))
    else:
        for check in checks:
            for table in memory_tables(check):
                out.print(table)
    return 0 if all(c.fits for c in checks) else WontFit.exit_code


def _fit_to_memory(recipe, registry, device, labels: int, args, err) -> tuple[Any, dict]:
    """Check every model of the recipe before anything loads (see `zoo.memory.check.fit`);
    print what --auto-fit changed, and refuse with the tables what does not fit."""
    from zoo.memory.check import fit, refusal
    from zoo.report import memory_tables

    fitted = fit(
        recipe,
        registry,
        device,
        labels=labels,
        auto_fit=args.auto_fit,
        force=args.force,
        rough=args.rough,
    )
    for label, change in fitted.applied:
        err.print(f"{label}: --auto-fit applies {change}", markup=False)
    if fitted.refused:
        for check in fitted.refused:
            for table in memory_tables(check):
                err.print(table)
        raise refusal(recipe, fitted.refused, device)
    return fitted.recipe, fitted.records


def cmd_show(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from zoo.plugins import get_plugin_manager
    from zoo.report import confusion_table, human_bytes, human_seconds, per_class_table, score_line
    from zoo.rundir import read_run

    out, _err = _consoles()
    run = read_run(args.run_dir, needs=("metrics",))  # a run that did not finish has none
    record, metrics = run.record, run.metrics or {}
    if args.json:
        print(json.dumps({"run": record, "metrics": metrics}, indent=2, ensure_ascii=False))
        return 0
    registered = _metrics(get_plugin_manager()).metrics  # the labels of a plugin's metrics
    out.print(
        f"{record.get('model')} ({record.get('status')}) on {record.get('device', '-')}, "
        f"{record.get('precision', '-')}: trained in {human_seconds(record.get('train_seconds'))}, "
        f"peak memory {human_bytes(record.get('peak_memory_bytes'))}",
        markup=False,
    )
    if record.get("reason"):
        out.print(f"reason: {record['reason']}", markup=False)
    for split in ("validation", "test"):
        report = metrics.get(split)
        if report:
            out.print(f"\n[bold]{split}[/]: {escape(score_line(report, registered))}")
            out.print(per_class_table(report, f"{split}: per class"))
            if "confusion_matrix" in report:  # none for multi-label runs
                out.print(confusion_table(report))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from zoo.predict import predict_run
    from zoo.report import RichProgress

    _out, err = _consoles()
    pm, registry = _registry()
    rows = predict_run(
        Path(args.run_dir),
        Path(args.input),
        Path(args.output),
        registry=registry,
        progress=RichProgress(err, Path(args.run_dir).name),
        transforms=_transforms(pm),
        id_column=args.id_column,
        text_column=args.text_column,
        encoding=args.encoding,
        proba=args.proba,
        overwrite=args.force,
    )
    print(f"wrote {rows} predictions to {args.output}", file=sys.stderr)
    return 0


COMPARE_HINT = (
    "give the recipe you ran (zoo compare RECIPE: its output_dir, which is relative to the recipe "
    "file) or its output directory (zoo compare --output-dir DIR)"
)


def _compare_where(args: argparse.Namespace) -> tuple[Path, str | None]:
    """The output directory whose store `zoo compare` reads, and the run name to compare."""
    from zoo.recipe import load_recipe

    if args.recipe_file is None:
        output_dir = Path(args.output_dir or "runs")
        if not output_dir.is_dir():
            what = "is a file, not a folder" if output_dir.exists() else "does not exist"
            raise UsageError(f"no results in {output_dir}: the folder {what}", hint=COMPARE_HINT)
        return output_dir, args.recipe
    if args.output_dir is not None:
        raise UsageError(
            "give a recipe or --output-dir, not both",
            hint="zoo compare RECIPE  or  zoo compare --output-dir DIR",
        )
    recipe = load_recipe(args.recipe_file)
    return recipe.path(recipe.run.output_dir), args.recipe or recipe.run.name


def cmd_compare(args: argparse.Namespace) -> int:
    import attrs

    from zoo.leaderboard import (
        leaderboard,
        leaderboard_table,
        per_class_table,
        sort_keys,
        to_csv,
        to_json,
        unit_text,
        vs_best,
    )
    from zoo.plugins import get_plugin_manager
    from zoo.store import STORE_NAME, ResultsStore

    out, _err = _consoles()
    metrics = _metrics(get_plugin_manager()).metrics
    keys = sort_keys(metrics)
    if args.by not in keys:
        guess = difflib.get_close_matches(args.by, list(keys), n=1)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        raise UsageError(
            f"cannot sort by {args.by!r}",
            hint=f"{hint}--by takes one of {', '.join(keys)}",
        )
    if args.html is not None:  # before any work, as zoo predict checks its --output
        check_output(Path(args.html), overwrite=args.force, option="--html", example="compare.html")
    elif args.force:
        raise UsageError("--force replaces the --html page; give --html FILE with it")
    output_dir, recipe_name = _compare_where(args)
    if not (output_dir / STORE_NAME).is_file():
        if args.recipe_file is not None:
            hint = f"run it first: zoo run {args.recipe_file}"
        else:
            hint = COMPARE_HINT
        raise UsageError(
            f"no results in {output_dir}: {output_dir / STORE_NAME} does not exist", hint=hint
        )
    # Read as it is: a command that only reads writes nothing, not even a schema.
    records = ResultsStore.read_only(output_dir / STORE_NAME).runs(recipe_name=recipe_name)
    data = args.data
    if data is not None:
        data = _one_fingerprint(data, {r.data_fingerprint for r in records})
    elif not args.all_data and records:
        data = records[-1].data_fingerprint  # compare like with like: the latest run's data
    records = [r for r in records if data is None or r.data_fingerprint == data]
    if args.each:  # one row per run instead of one per model and method
        records = [
            attrs.evolve(r, model=f"{r.model} ({unit_text((r.seed, r.fold))}, #{r.run_id})")
            for r in records
        ]
    rows = leaderboard(records, by=args.by, split=args.split, metrics=metrics)
    # Each row against the best on the same test rows (their run directories' predictions).
    rows = vs_best(rows, by=args.by, metrics=metrics)
    if args.json:
        print(json.dumps(to_json(rows), indent=2, ensure_ascii=False))
    elif args.csv:
        sys.stdout.write(to_csv(rows, metrics=metrics))
    else:
        where = f"data {data[:12]}" if data else "all data"
        if recipe_name:
            where += f", recipe {recipe_name!r}"
        title = f"Leaderboard: {len(records)} runs, {where}"
        out.print(leaderboard_table(rows, title=title, metrics=metrics))
        out.print(per_class_table(rows))
    if args.html is not None:
        from zoo.compare_page import write_compare_page

        where = f"data {data[:12]}" if data else "all data"
        if recipe_name:
            where += f", recipe {recipe_name}"
        metric = args.by if args.by in {m.name for m in metrics} else DEFAULT_METRIC
        page = write_compare_page(
            Path(args.html),
            rows,
            records,
            metric=metric,
            title=f"Leaderboard: {len(records)} runs, {where}",
            metrics=metrics,
        )
        for note in page.skipped:
            print(f"left out of the page's pictures: {note}", file=sys.stderr)
        print(f"wrote {page.path}", file=sys.stderr)
    return 0


def _one_fingerprint(prefix: str, recorded: set[str]) -> str:
    """The one recorded data fingerprint that `--data PREFIX` names: a prefix that fits several
    would mix runs on different data in one leaderboard."""
    matches = sorted(f for f in recorded if f.startswith(prefix))
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(f[:12] for f in sorted(recorded)) or "none"
    if not matches:
        raise UsageError(
            f"--data {prefix}: no recorded run is on data with this fingerprint",
            hint=f"the recorded fingerprints begin {listed}",
        )
    raise UsageError(
        f"--data {prefix}: {len(matches)} recorded data fingerprints begin with it "
        f"({', '.join(f[:12] for f in matches)}); runs on different data are never compared",
        hint="give more of the fingerprint",
    )


def cmd_record(args: argparse.Namespace) -> int:
    from zoo.rundir import read_run, store_path, store_record
    from zoo.store import ResultsStore

    # Every directory is checked before anything is written.
    runs = [read_run(run_dir, needs=("identity",)) for run_dir in args.run_dirs]
    plans = [(run, store_path(run), store_record(run)) for run in runs]
    for run, path, record in plans:
        run_id, new = ResultsStore(path).record_once(record)
        what = f"{record.model!r} (seed {record.seed}, {record.status})"
        if new:
            print(f"recorded {run.path}: {what} in {path} as run #{run_id}")
        else:
            print(f"{run.path}: {what} is in {path} already, as run #{run_id}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from zoo.html_report import write_report
    from zoo.plugins import get_plugin_manager

    files = write_report(Path(args.run_dir), _metrics(get_plugin_manager()).metrics)
    cmd_show(argparse.Namespace(run_dir=args.run_dir, json=False))
    print(f"wrote {files.html}", file=sys.stderr)
    for picture in files.pictures:
        print(f"wrote {picture}", file=sys.stderr)
    return 0


def _count(least: int):
    """An argparse type: an integer of at least `least`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    return parse


def _memory_size(text: str) -> str:
    """An argparse type: a memory size that `zoo.memory.probe.parse_size` reads."""
    from zoo.memory.probe import parse_size

    try:
        parse_size(text)
    except ZooError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} ({exc.hint})") from None
    return text


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe key, e.g. --set training.epochs=1 (TOML value; may repeat)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="Fine-tune and compare pretrained transformers on text classification, "
        "from TOML recipes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"zoo {zoo.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    # --debug works after the command too (zoo run RECIPE --debug); SUPPRESS keeps the value
    # given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("models", parents=[common], help="list the registered models")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "plugins", parents=[common], help="list plugins, where they come from and what they add"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("validate", parents=[common], help="check recipes without running them")
    p.add_argument("recipes", nargs="+", metavar="RECIPE", help="TOML recipe file(s)")
    _add_set(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "run",
        parents=[common],
        help="fine-tune the models of one or more recipes and compare them",
        description="Fine-tune every model of each recipe, each into a new run directory "
        "(OUTPUT_DIR/RUN_NAME/MODEL-seedN-DATE), then print a comparison table: each test "
        "score with its 95% bootstrap interval, and '≈' on the runs that the paired bootstrap "
        "cannot tell from the best on macro-F1 (with several seeds, in a second table over all "
        "the runs, as 'zoo compare' shows them).",
    )
    p.add_argument("recipes", nargs="*", metavar="RECIPE", help="TOML recipe file(s)")
    _add_set(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with every run on stdout (the table goes to stderr)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last checkpoint, in its own directory",
    )
    p.add_argument(
        "--oom-retries",
        type=_count(0),
        default=0,
        metavar="N",
        help="on CUDA out-of-memory, retry up to N times with half the batch and twice the "
        "gradient accumulation (the effective batch stays the same)",
    )
    p.add_argument(
        "--nproc",
        type=_count(1),
        default=1,
        metavar="N",
        help="train with N processes on this machine through torchrun (one per GPU; gloo on a "
        "CPU); for several machines: 'torchrun ... -m zoo run' or 'accelerate launch -m zoo run'",
    )
    fit = p.add_mutually_exclusive_group()
    fit.add_argument(
        "--force",
        action="store_true",
        help="run a model even when zoo estimates that it will not fit in memory",
    )
    fit.add_argument(
        "--auto-fit",
        action="store_true",
        help="when a model would not fit, apply the cheapest plan that fits (as 'zoo check' "
        "shows it; the effective batch stays the same)",
    )
    p.add_argument(
        "--rough",
        action="store_true",
        help=ROUGH_HELP,
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "check",
        parents=[common],
        help="estimate each model's peak training memory and say whether it fits",
        description="Estimate, without loading anything, the peak memory per device of "
        "training each model of the recipes, broken down; say whether it fits the GPU here "
        "(or the one you name), and if not, which changes would make it fit, each with its "
        "estimate. Exits 7 when a model does not fit.",
    )
    p.add_argument("recipes", nargs="+", metavar="RECIPE", help="TOML recipe file(s)")
    _add_set(p)
    p.add_argument(
        "--gpu-memory",
        type=_memory_size,
        metavar="SIZE",
        help="plan for a GPU with this much memory (e.g. 40GiB, 80GB) instead of this machine",
    )
    p.add_argument(
        "--gpus",
        type=_count(1),
        metavar="N",
        help="plan for N GPUs (the recipe's [distributed] strategy shares the work)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument(
        "--rough",
        action="store_true",
        help=ROUGH_HELP,
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "predict",
        parents=[common],
        help="classify the rows of a file with a finished run's model",
        description="Classify every row of a CSV/TSV file with the model a run saved, and write "
        "a submission file in the input's row order: the id column (if given) and the label "
        "column named as in the training data (a multi-label run: each row's labels joined by "
        "its separator), optionally one probability column per label.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory that 'zoo run' made")
    p.add_argument("--input", required=True, metavar="FILE", help="CSV/TSV file with the texts")
    p.add_argument("--output", required=True, metavar="FILE", help="the submission CSV to write")
    p.add_argument("--id-column", metavar="NAME", help="copy this input column into the output")
    p.add_argument(
        "--text-column",
        metavar="NAME",
        nargs="+",
        help="the input column with the texts, or the two columns of each text pair for a run "
        "that read pairs (default: the run's data.text_column)",
    )
    p.add_argument(
        "--encoding",
        metavar="NAME",
        help="the input's encoding: auto, utf-8, utf-8-sig, cp949 or euc-kr "
        "(default: the run's data.encoding)",
    )
    p.add_argument("--proba", action="store_true", help="add one probability column per label")
    p.add_argument("--force", action="store_true", help="replace --output if it exists")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "compare",
        parents=[common],
        help="the leaderboard of recorded runs (mean ± std over seeds)",
        description="Rank the runs recorded in OUTPUT_DIR/zoo-results.sqlite: one row per model "
        "and method (a model's folds of cross-validation in a row of their own, and their "
        "ensemble in another), scores averaged over seeds and folds. Only runs on the same "
        "data as the latest run (of the recipe, if one is named) are compared, unless --data "
        "or --all-data says otherwise. Nothing is written except the --html page, when one "
        "is asked for.",
    )
    p.add_argument(
        "recipe_file",
        nargs="?",
        metavar="RECIPE",
        help="compare the runs of this recipe: its output_dir, and its run name as --recipe",
    )
    p.add_argument(
        "--output-dir", metavar="DIR", help="the output directory to read (default: runs)"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--data", metavar="FINGERPRINT", help="runs on this data (a prefix)")
    which.add_argument("--all-data", action="store_true", help="runs on any data")
    p.add_argument("--recipe", metavar="NAME", help="runs of this recipe ([run] name)")
    p.add_argument(
        "--by",
        metavar="KEY",
        default=DEFAULT_METRIC,
        help=f"sort key: a registered metric (default: {DEFAULT_METRIC}), train_seconds or "
        "peak_memory_bytes",
    )
    p.add_argument("--split", default="test", choices=("test", "validation"))
    p.add_argument("--each", action="store_true", help="one row per run, not per model")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write the comparison as one self-contained HTML page with pictures",
    )
    p.add_argument("--force", action="store_true", help="replace the --html file if it exists")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "report",
        parents=[common],
        help="write an HTML report with pictures for a run directory",
        description="Print the classification report and confusion matrix of a run, and write "
        "RUN_DIR/report.html (self-contained) with the learning-rate schedule, the training "
        "curves and the confusion-matrix heat map as PNG files beside it.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "record",
        parents=[common],
        help="record run directories in their results store (runs the store missed)",
        description="Add each run directory's run to the results store of its output directory "
        "(OUTPUT_DIR/zoo-results.sqlite), from what the run directory holds: for a run that "
        "'zoo run' could not record (the store was busy). A run that is in the store already is "
        "not added again.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories 'zoo run' made")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "show", parents=[common], help="show the metrics of a finished run directory"
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--json", action="store_true", help="print run.json and metrics.json as JSON")
    p.set_defaults(func=cmd_show)
    return parser


def _interrupt(_signum: int, _frame: object) -> None:
    # SIGTERM (a scheduler, `kill`) stops a run the way Ctrl-C does: checkpoints are kept and
    # the run is marked interrupted.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    err = Console(stderr=True)
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    try:
        return args.func(args)
    except ZooError as exc:
        if args.debug:
            err.print_exception()
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted (each run's run.json says how to go on)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
