"""The Python API: what the `zoo` commands do, as functions that return objects.

    import zoo
    results = zoo.run("recipes/demo.toml", overrides={"training.epochs": 1})
    results.to_pandas()
    zoo.check("recipes/koalpaca-full.toml", gpu="a100-40gb")
    zoo.compare("runs")
    zoo.predict(results[0].run_dir, ["로그인이 안 돼요"])

The command line calls these functions (zoo.cli only parses arguments and prints). A recipe is
a path, a TOML string or a dict; problems raise `zoo.ZooError` subclasses with the messages the
command line prints (`zoo.RecipeError` lists every problem of a recipe), never `SystemExit`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console

from zoo.errors import RecipeError, RunRefused, UsageError, ZooError
from zoo.metrics import DEFAULT_METRIC
from zoo.results import (
    Checkup,
    Estimate,
    Estimates,
    Leaderboard,
    Models,
    Predictions,
    Results,
    Run,
)

# A recipe: a TOML file's path, the TOML text itself, or its tables as a dict.
RecipeSource = str | Path | Mapping[str, Any]
# Recipe keys to set, as `zoo run --set` takes them: ["training.epochs=1"] or
# {"training.epochs": 1}.
Overrides = Sequence[str] | Mapping[str, Any] | None

RECIPE_TEXT = "<recipe text>"
RECIPE_DICT = "<recipe dict>"


@attrs.frozen
class Plugins:
    """What the plugins registered: models, metrics, text transforms (and the manager)."""

    pm: Any
    registry: Any
    metrics: Any
    transforms: Any

    @classmethod
    def load(cls, *, warn: bool = True) -> Plugins:
        from zoo.plugins import get_plugin_manager
        from zoo.registry import collect_metrics, collect_models
        from zoo.transforms import collect_transforms

        pm = get_plugin_manager()
        plugins = cls(pm, collect_models(pm), collect_metrics(pm), collect_transforms(pm))
        if warn:
            plugins.warn_failed()
        return plugins

    def warn_failed(self) -> None:
        """Say which plugins were left out: failed to load, or their registrations failed."""
        problems = [(i.name, i.status) for i in self.pm.info if i.status.startswith("failed")]
        for collected in (self.registry, self.metrics, self.transforms):
            problems += [(name, f"failed: {reason}") for name, reason in collected.failures]
        for name, status in problems:
            print(
                f"warning: plugin {name!r} left out ({status}); "
                f"set ZOO_BLOCK_PLUGINS={name} to skip it, see 'zoo plugins'",
                file=sys.stderr,
            )

    def recipe(
        self, source: RecipeSource, overrides: Overrides = None, base_dir: Path | None = None
    ) -> Any:
        """Read and check a recipe against what is registered (`RecipeSource`); the relative
        paths of a TOML string or a dict are relative to `base_dir` (the working directory)."""
        from zoo.recipe import load_recipe, parse_toml, recipe_from_raw

        known = {
            "model_names": self.registry.names(),
            "model_methods": self.registry.methods(),
            "metric_names": self.metrics.names(),
            "transform_names": self.transforms.names(),
        }
        overrides = overrides or ()
        if isinstance(source, Mapping):
            where, raw = RECIPE_DICT, source
        elif isinstance(source, str) and _is_toml_text(source):
            where, raw = RECIPE_TEXT, parse_toml(source, RECIPE_TEXT)
        elif isinstance(source, str | Path):
            return load_recipe(source, overrides=overrides, **known)
        else:
            raise UsageError(
                f"a recipe is a path, a TOML string or a dict, not {type(source).__name__}",
                hint='zoo.run("recipes/demo.toml")',
            )
        return recipe_from_raw(raw, where, base_dir or Path.cwd(), overrides=overrides, **known)


def _is_toml_text(text: str) -> bool:
    """A string holds the recipe itself, not its path, when it has a line break (a path has
    none; a path may well begin with "[", a TOML table's opening)."""
    return "\n" in text


def _check_trackers(recipe: Any) -> None:
    from zoo.trackers import missing_problems

    problems = missing_problems(recipe)
    if problems:
        raise RecipeError(recipe.source, problems)


def prepare(recipe: Any, plugins: Plugins) -> dict[Any, Any]:
    """Every seed's data, read and checked against the recipe before anything trains."""
    from zoo.preflight import check_before_training
    from zoo.runner import load_all_splits

    splits_for = load_all_splits(recipe, plugins.transforms)
    first = next(iter(splits_for.values()))
    check_before_training(recipe, plugins.registry, first.labels, plugins.metrics.metrics)
    return splits_for


def say_notices(run_name: str, notices: Sequence[str]) -> None:
    for notice in notices:
        print(f"{run_name}: {notice}", file=sys.stderr)


def validate(recipe: RecipeSource, *, overrides: Overrides = None, base_dir: Path | None = None):
    """Check a recipe and its data as `zoo run` would before training (`zoo validate`);
    returns the recipe, raises `ZooError` for the first kind of problem found."""
    plugins = Plugins.load()
    return _validated(plugins, recipe, overrides, base_dir)


def _validated(plugins: Plugins, source: RecipeSource, overrides: Overrides, base_dir):
    recipe = plugins.recipe(source, overrides, base_dir)
    _check_trackers(recipe)
    splits = next(iter(prepare(recipe, plugins).values()))
    say_notices(recipe.run.name, splits.notices)
    return recipe


# ---------------------------------------------------------------------------------------------
# zoo run


def _recipe_sources(sources: Sequence[RecipeSource], resume: Path | None) -> list[RecipeSource]:
    """The recipes given, or the one recipe an interrupted run directory holds (checked to be
    resumable before anything loads; that it still matches is checked once its data is read)."""
    from zoo.rundir import RECIPE, read_run

    if resume is None:
        if not sources:
            raise UsageError("give a recipe to run", hint="zoo run RECIPE...  (see zoo run --help)")
        return list(sources)
    if sources:
        raise UsageError(
            "give either recipes to run or --resume RUN_DIR, not both",
            hint="zoo run RECIPE...  or  zoo run --resume OUTPUT_DIR/RUN_NAME/MODEL-seedN-DATE",
        )
    read_run(resume, needs=("resumable", "recipe"))
    return [resume / RECIPE]


def report_failure(
    console: Console, *, debug: bool = False
) -> Callable[[str, BaseException], None]:
    """How a run says that a model failed or was refused (the others go on): one line on
    stderr, with the traceback under `debug`."""
    from zoo.runner import format_traceback, is_out_of_memory

    def on_failure(model: str, exc: BaseException) -> None:
        verb = "refused" if isinstance(exc, RunRefused) else "failed"
        text = str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}"
        if is_out_of_memory(exc):
            text += "\n  hint: --oom-retries 2 retries with a smaller batch (same effective batch)"
        print(f"error: model {model!r} {verb}: {text}", file=sys.stderr, flush=True)
        if debug:
            console.print(format_traceback(exc), markup=False, highlight=False)

    return on_failure


def run(
    recipe: RecipeSource | None = None,
    *,
    overrides: Overrides = None,
    resume: str | Path | None = None,
    oom_retries: int = 0,
    auto_fit: bool = False,
    force: bool = False,
    rough: bool = False,
    base_dir: str | Path | None = None,
    jobs: int | None = None,
    executor: str | None = None,
    skip_done: bool = False,
) -> Results:
    """Fine-tune and compare the models of a recipe (`zoo run`): each into a new run directory,
    recorded in the output directory's results store.

    `overrides` sets recipe keys ({"training.epochs": 1}); `resume` continues an interrupted
    run directory instead (no recipe then); `auto_fit` applies the cheapest plan that fits
    when a model would not fit in memory, `force` runs it anyway; `rough` estimates a model of
    an unknown architecture as BERT-like. Everything is checked before anything trains. A
    model that fails is a run with status "failed" and its reason (the others still run).
    `jobs` units (model x seed x fold x trial) run at once, through `executor` ("local",
    "submitit", "ray" or a plugin's; the recipe's [executor] by default); `skip_done` runs
    only the units the store does not record as finished for the same recipe and data.
    """
    return run_recipes(
        [] if recipe is None else [recipe],
        overrides=overrides,
        resume=None if resume is None else Path(resume),
        oom_retries=oom_retries,
        auto_fit=auto_fit,
        force=force,
        rough=rough,
        base_dir=None if base_dir is None else Path(base_dir),
        jobs=jobs,
        executor=executor,
        skip_done=skip_done,
    )


def run_recipes(
    sources: Sequence[RecipeSource],
    *,
    overrides: Overrides = None,
    resume: Path | None = None,
    oom_retries: int = 0,
    auto_fit: bool = False,
    force: bool = False,
    rough: bool = False,
    base_dir: Path | None = None,
    console: Console | None = None,
    debug: bool = False,
    jobs: int | None = None,
    executor: str | None = None,
    skip_done: bool = False,
    nproc: int = 1,
) -> Results:
    """`run` for several recipes, every one checked before any trains (`zoo run A B`);
    progress goes to `console` (stderr). Through an executor, each unit trains with `nproc`
    processes (zoo run --nproc with --jobs or --executor)."""
    from zoo.coordinator import coordinate
    from zoo.engine.distributed import is_main, world
    from zoo.events import collect_run_listeners
    from zoo.executors import collect_executors
    from zoo.files import new_run_dir
    from zoo.report import NoProgress, progress_for
    from zoo.runner import RunOptions, run_recipe

    err = console or Console(stderr=True)
    plugins = Plugins.load(warn=is_main())
    # Check every recipe before training anything.
    recipes = [plugins.recipe(s, overrides, base_dir) for s in _recipe_sources(sources, resume)]
    # And that the trackers they report to are installed, before any data or model loads.
    for recipe in recipes:
        _check_trackers(recipe)
    # Every recipe's data too, and the recipe against it: a bad file in the last recipe stops
    # the run before any training.
    prepared = [(recipe, prepare(recipe, plugins)) for recipe in recipes]
    for recipe, splits_for in prepared:
        say_notices(recipe.run.name, next(iter(splits_for.values())).notices)
    # And whether each model fits in memory, before any model loads.
    processes = world()[1]
    device = planned_device(plugins.pm, gpus=processes if processes > 1 else None)
    memory: dict[Any, Any] = {}
    fitted = []
    for recipe, splits_for in prepared:
        labels = len(next(iter(splits_for.values())).labels)
        recipe, records = _fit_to_memory(
            recipe,
            plugins.registry,
            device,
            labels,
            err,
            auto_fit=auto_fit,
            force=force,
            rough=rough,
        )
        memory |= {(recipe.run.name, label): check for label, check in records.items()}
        fitted.append((recipe, splits_for))
    # Every recipe's executor by name, before anything trains.
    executors = collect_executors(plugins.pm)
    for recipe, _splits in fitted:
        if _how_to_run(recipe, executors, executor, jobs, skip_done) and resume is not None:
            raise UsageError(
                "--resume continues one run directory in this process, not through an executor",
                hint="zoo run --resume RUN_DIR, without --jobs, --executor and --skip-done",
            )
    options = RunOptions(
        resume=resume,
        oom_retries=oom_retries,
        memory=memory,
        device=device,
        listeners=collect_run_listeners(plugins.pm),
        metrics=plugins.metrics.metrics,
    )
    progress = progress_for(err) if is_main() else (lambda _label: NoProgress())
    on_failure = report_failure(err, debug=debug)
    runs = []
    for recipe, splits_for in fitted:
        how = _how_to_run(recipe, executors, executor, jobs, skip_done)
        if how is not None:  # built before the run says it starts: a missing library stops it
            spec, slots, section = how
            folder = new_run_dir(
                recipe.path(recipe.run.output_dir) / recipe.run.name / "units", "run"
            )
            made = spec.make(attrs.asdict(section) | {"nproc": nproc}, folder, slots)
        if is_main():
            err.print(f"run {recipe.run.name!r}: {len(recipe.models)} model(s)", markup=False)
        if how is None:  # in this process, one by one
            runs += run_recipe(recipe, plugins.registry, progress, on_failure, options, splits_for)
            continue
        runs += coordinate(
            recipe,
            plugins.registry,
            splits_for,
            options,
            executor=made,
            jobs=slots,
            folder=folder,  # the unit and result files of this run
            skip_done=skip_done,
            say=lambda text, name=recipe.run.name: err.print(f"{name}: {text}", markup=False),
            nproc=nproc,
        )
    return Results(runs, plugins.metrics.metrics)


def _how_to_run(recipe: Any, executors: Any, name: str | None, jobs: int | None, skip_done: bool):
    """(executor spec, units at once, [executor] settings) for a run over an executor, or None
    for one in this process, one model after another (no executor, one job, nothing to skip)."""
    from zoo.recipe import ExecutorSection

    section = recipe.executor or ExecutorSection()
    name = name or (section.name if recipe.executor else None)
    slots = jobs or section.jobs or 1
    if name is None and slots == 1 and not skip_done:
        return None
    from zoo.engine.distributed import world

    if world()[1] > 1:  # every process would hand out the units
        raise UsageError(
            f"{recipe.source}: a run through an executor cannot itself run under torchrun",
            hint="give --nproc N with --jobs or --executor: each unit then trains with N processes",
        )
    if recipe.search is not None and recipe.search.pruner != "none":
        raise UsageError(
            f"{recipe.source}: search.pruner = {recipe.search.pruner!r} prunes trials in this "
            "process only, not through an executor",
            hint="leave out --jobs, --executor and --skip-done (and [executor]), or set "
            'search.pruner = "none"',
        )
    return executors.get(name or "local"), slots, section


def _fit_to_memory(recipe, registry, device, labels: int, err, *, auto_fit, force, rough):
    """Check every model of the recipe before anything loads (see `zoo.memory.check.fit`);
    print what `auto_fit` changed, and refuse with the tables what does not fit."""
    from zoo.memory.check import fit, refusal
    from zoo.report import memory_tables

    fitted = fit(
        recipe, registry, device, labels=labels, auto_fit=auto_fit, force=force, rough=rough
    )
    for label, change in fitted.applied:
        err.print(f"{label}: --auto-fit applies {change}", markup=False)
    if fitted.refused:
        for check in fitted.refused:
            for table in memory_tables(check):
                err.print(table)
        raise refusal(recipe, fitted.refused, device)
    return fitted.recipe, fitted.records


# ---------------------------------------------------------------------------------------------
# zoo check


def planned_device(
    pm: Any, *, gpu: str | None = None, gpu_memory: str | None = None, gpus: int | None = None
):
    """The device to plan for: a GPU preset (`gpu`), a GPU of `gpu_memory` bytes, else what
    the device probes find here; `gpus` of them."""
    from zoo.memory.probe import named_gpu, probe_device

    if gpu is not None and gpu_memory is not None:
        raise UsageError(
            "give a GPU preset or a GPU memory size, not both",
            hint="zoo check RECIPE --gpu a100-40gb  or  zoo check RECIPE --gpu-memory 40GiB",
        )
    if gpu is not None:
        from zoo.memory.gpus import preset_device

        return preset_device(gpu, gpus or 1)
    if gpu_memory is not None:
        return named_gpu(gpu_memory, gpus or 1)
    found = probe_device(pm)
    return attrs.evolve(found, count=gpus) if gpus else found


def check(
    recipe: RecipeSource,
    *,
    gpu: str | None = None,
    gpu_memory: str | None = None,
    gpus: int | None = None,
    rough: bool = False,
    overrides: Overrides = None,
    base_dir: str | Path | None = None,
) -> list[Estimate]:
    """Estimate each model's peak training memory per device without loading anything
    (`zoo check`): on a GPU preset (`gpu="a100-40gb"`, see `zoo check --help`), a GPU of
    `gpu_memory` ("40GiB"), or this machine's device; `gpus` of them."""
    return check_recipes(
        [recipe],
        gpu=gpu,
        gpu_memory=gpu_memory,
        gpus=gpus,
        rough=rough,
        overrides=overrides,
        base_dir=None if base_dir is None else Path(base_dir),
    )


def check_recipes(
    sources: Sequence[RecipeSource],
    *,
    gpu: str | None = None,
    gpu_memory: str | None = None,
    gpus: int | None = None,
    rough: bool = False,
    overrides: Overrides = None,
    base_dir: Path | None = None,
) -> list[Estimate]:
    from zoo.memory.check import check_recipe

    plugins = Plugins.load(warn=False)
    recipes = [plugins.recipe(source, overrides, base_dir) for source in sources]
    device = planned_device(plugins.pm, gpu=gpu, gpu_memory=gpu_memory, gpus=gpus)
    return Estimates(
        Estimate(found)
        for recipe in recipes
        for found in check_recipe(recipe, plugins.registry, device, rough=rough)
    )


# ---------------------------------------------------------------------------------------------
# zoo compare

COMPARE_HINT = (
    "give the recipe you ran (zoo compare RECIPE: its output_dir, which is relative to the recipe "
    "file) or its output directory (zoo compare --output-dir DIR)"
)


def _compare_where(
    output_dir: str | Path | None, recipe_file: str | Path | None, recipe: str | None
) -> tuple[Path, str | None]:
    """The output directory whose store is read, and the run name to compare."""
    from zoo.recipe import load_recipe

    if recipe_file is None:
        where = Path(output_dir or "runs")
        if not where.is_dir():
            what = "is a file, not a folder" if where.exists() else "does not exist"
            raise UsageError(f"no results in {where}: the folder {what}", hint=COMPARE_HINT)
        return where, recipe
    if output_dir is not None:
        raise UsageError(
            "give a recipe or --output-dir, not both",
            hint="zoo compare RECIPE  or  zoo compare --output-dir DIR",
        )
    loaded = load_recipe(recipe_file)
    return loaded.path(loaded.run.output_dir), recipe or loaded.run.name


def check_sort_key(by: str, metrics: Sequence[Any]) -> None:
    import difflib

    from zoo.leaderboard import sort_keys

    keys = sort_keys(metrics)
    if by not in keys:
        guess = difflib.get_close_matches(by, list(keys), n=1)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        raise UsageError(
            f"cannot sort by {by!r}", hint=f"{hint}--by takes one of {', '.join(keys)}"
        )


def compare(
    output_dir: str | Path | None = None,
    *,
    recipe_file: str | Path | None = None,
    recipe: str | None = None,
    data: str | None = None,
    all_data: bool = False,
    by: str = DEFAULT_METRIC,
    split: str = "test",
    each: bool = False,
) -> Leaderboard:
    """The leaderboard of the runs recorded in `output_dir` (default "runs"), or in the
    output directory of `recipe_file` (`zoo compare`): one row per model and method, best
    first by `by`, each against the best on the same test rows. Only runs on the data of the
    latest run (of the run name `recipe`, when given) are compared, unless `data` (a
    fingerprint prefix) or `all_data` says otherwise; `each` gives one row per run."""
    from zoo.leaderboard import TRIAL, headline, leaderboard, unit_text, vs_best
    from zoo.store import STORE_NAME, ResultsStore

    if data is not None and all_data:
        raise UsageError("give data or all_data, not both", hint="--data FINGERPRINT or --all-data")
    if split not in ("test", "validation"):
        raise UsageError(f"split {split!r} is neither 'test' nor 'validation'")
    metrics = Plugins.load(warn=False).metrics.metrics
    check_sort_key(by, metrics)
    where, recipe_name = _compare_where(output_dir, recipe_file, recipe)
    if not (where / STORE_NAME).is_file():
        hint = f"run it first: zoo run {recipe_file}" if recipe_file is not None else COMPARE_HINT
        raise UsageError(f"no results in {where}: {where / STORE_NAME} does not exist", hint=hint)
    # Read as it is: a command that only reads writes nothing, not even a schema.
    records = ResultsStore.read_only(where / STORE_NAME).runs(recipe_name=recipe_name)
    if data is not None:
        data = _one_fingerprint(data, {r.data_fingerprint for r in records})
    elif not all_data and records:
        data = records[-1].data_fingerprint  # compare like with like: the latest run's data
    records = [r for r in records if data is None or r.data_fingerprint == data]
    if by != TRIAL:  # a search's headline is the trial it chose on validation
        records = headline(records)
    if each:  # one row per run instead of one per model and method
        records = [
            attrs.evolve(r, model=f"{r.model} ({unit_text((r.seed, r.fold))}, #{r.run_id})")
            for r in records
        ]
    rows = leaderboard(records, by=by, split=split, metrics=metrics)
    # Each row against the best on the same test rows (their run directories' predictions).
    rows = vs_best(rows, by=by, metrics=metrics)
    described = f"data {data[:12]}" if data else "all data"
    if recipe_name:
        described += f", recipe {recipe_name!r}"
    title = f"Leaderboard: {len(records)} runs, {described}"
    return Leaderboard(rows, records, title=title, by=by, metrics=metrics)


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


# ---------------------------------------------------------------------------------------------
# zoo doctor, zoo models, zoo show, zoo record, zoo predict


def doctor(*, gpu: bool = False, on_check: Callable[[str], Any] | None = None) -> Checkup:
    """What this machine can do for zoo (`zoo doctor`): Python and the libraries, torch's build
    and each GPU, the offline models and caches, the hub's offline setting, free disk, and a
    few real training steps of a tiny model on the device for each method, with zoo's memory
    estimate beside the measured peak. `gpu`: a CUDA device is needed (``--gpu``).
    `on_check` is called with what is checked next. Nothing raises for a failed check: it is
    a line of the returned `zoo.Checkup` (`.ok`, `.checks`, `.to_json()`)."""
    import time

    from zoo.checkup import run_checks

    start = time.perf_counter()
    checks = run_checks(gpu=gpu, on_check=on_check)
    cuda = any(c.name.startswith("gpu ") and c.status == "ok" for c in checks)
    return Checkup(
        checks, device="cuda" if cuda else "cpu", gpu=gpu, seconds=time.perf_counter() - start
    )


def models() -> Models:
    """The registered models (`zoo models`): name, description, family, parameters, methods,
    source and plugin of each."""
    return Models(Plugins.load().registry)


@attrs.frozen(kw_only=True)
class Recorded:
    """A run directory `record` put in its results store (or found there already)."""

    run_dir: Path
    store: Path
    run_id: int
    new: bool  # False: the store had it already
    model: str
    seed: int | None
    status: str


def record(run_dirs: Sequence[str | Path]) -> list[Recorded]:
    """Record run directories in the results store of their output directory (`zoo record`):
    runs that `zoo run` could not record. Every directory is checked before anything is
    written; a run the store has already is not added again."""
    from zoo.rundir import read_run, store_path, store_record
    from zoo.store import ResultsStore

    runs = [read_run(run_dir, needs=("identity",)) for run_dir in run_dirs]
    plans = [(run, store_path(run), store_record(run)) for run in runs]
    done = []
    for run, path, found in plans:
        run_id, new = ResultsStore(path).record_once(found)
        done.append(
            Recorded(
                run_dir=run.path,
                store=path,
                run_id=run_id,
                new=new,
                model=found.model,
                seed=found.seed,
                status=found.status,
            )
        )
    return done


def load_run(run_dir: str | Path) -> Run:
    """A run directory that `zoo run` made (`zoo show`): run.json, metrics.json (for a run
    that finished), its tables, and its report (`.report()`)."""
    from zoo.rundir import read_run

    found = read_run(run_dir, needs=("metrics",))  # a run that did not finish has none
    return Run(found, Plugins.load(warn=False).metrics.metrics)


def predict(run_dir: str | Path, texts: Sequence[str] | Sequence[tuple[str, str]]) -> Predictions:
    """Classify `texts` with the model a finished run saved, preprocessed and cut as training
    did (`zoo predict`, without the files): each text's label and every label's probability.
    A run that read text pairs takes (text, second text) pairs."""
    from zoo.predicting import PREDICT_NEEDS, predict_texts
    from zoo.report import progress_for
    from zoo.rundir import read_run

    if isinstance(texts, str):
        raise UsageError(
            "texts is one string: give a list of texts", hint='zoo.predict(run_dir, ["a text"])'
        )
    texts = list(texts)
    found = read_run(run_dir, needs=PREDICT_NEEDS)
    text_column = (found.recipe or {}).get("data", {}).get("text_column")
    pairs = isinstance(text_column, list)
    firsts, seconds = _split_inputs(texts, pairs, text_column)
    plugins = Plugins.load(warn=False)
    predicted = predict_texts(
        found,
        firsts,
        seconds,
        registry=plugins.registry,
        progress=progress_for(Console(stderr=True))(found.path.name),
        transforms=plugins.transforms,
    )
    return Predictions([tuple(t) if pairs else t for t in texts], predicted)


def predict_file(
    run_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    id_column: str | None = None,
    text_column: str | Sequence[str] | None = None,
    encoding: str | None = None,
    proba: bool = False,
    overwrite: bool = False,
    console: Console | None = None,
) -> int:
    """Classify every row of a file and write a submission in its row order (`zoo predict`):
    the id column (if given), the label column named as in training, with `proba` one
    probability column per label; `output_path` is never replaced unless `overwrite`. Returns
    the number of rows."""
    from zoo.predicting import predict_run
    from zoo.report import progress_for

    plugins = Plugins.load()
    return predict_run(
        Path(run_dir),
        Path(input_path),
        Path(output_path),
        registry=plugins.registry,
        progress=progress_for(console or Console(stderr=True))(Path(run_dir).name),
        transforms=plugins.transforms,
        id_column=id_column,
        text_column=text_column,
        encoding=encoding,
        proba=proba,
        overwrite=overwrite,
    )


def _split_inputs(
    texts: list[Any], pairs: bool, text_column: Any
) -> tuple[list[str], list[str] | None]:
    """The texts (and second texts of pairs), each checked to be what the run reads."""
    from zoo.cells import text_to_classify

    what = f"a (text, second text) pair, as the run read {text_column}" if pairs else "a string"
    for i, text in enumerate(texts):
        if pairs:
            fits = isinstance(text, tuple | list) and len(text) == 2
            fits = fits and all(isinstance(part, str) for part in text)
        else:
            fits = isinstance(text, str)
        if not fits:
            raise UsageError(f"texts[{i}] is {text!r}, not {what}")
    # Read as a file's cells are (zoo predict): NFC, no surrounding whitespace, "NA" empty.
    if not pairs:
        return [text_to_classify(t) for t in texts], None
    return [text_to_classify(t[0]) for t in texts], [text_to_classify(t[1]) for t in texts]
