"""The GPU check of issue 14: every measurement zoo needs from a CUDA machine, in one command.

    bash benchmarks/gpu_check.sh [RESULTS] [--dry-run] [--budget SECONDS] [--only STEP,...]
    bash benchmarks/gpu_check.sh --prepare      # here, before the device call (see below)

It writes everything under RESULTS (default: $OUT if set, else gpu-check-results/), at most
eight files, as the device tool brings back (/work/.library/device/README.md):

    summary.md        what ran, passed, failed, was skipped; the expandable_segments reading
    steps.jsonl       one line per step: status, exit code, wall time, budget, command
    doctor.json       zoo doctor --gpu --json
    memory.jsonl      the memory grid at real sizes, one line per case (benchmarks/cuda_memory.py)
    memory.md         its Markdown table and summary
    expandable.jsonl  the largest cases again, PYTORCH_CUDA_ALLOC_CONF off and on
    benchmarks.md     benchmark 1 (zoo against a plain Trainer script) and 2 (input pipeline)
    log.txt           every step's stderr, and stdout that has no file of its own

Each step has a time budget and runs under a timeout; one that fails or times out does not
stop the others; the whole stays under --budget seconds (default 540: a device command may run
600). A step that needs a CUDA GPU is skipped, with why, where there is none.

The device machine has PyTorch, transformers, peft and accelerate, but not zoo's lighter
dependencies, the offline model wheels or ../shared/data, and it reaches no package registry.
`--prepare` (run here) copies what it lacks that is pure Python (cattrs, tomli-w, datasets,
evaluate, dill, multiprocess, the Korean font), MiniLM's tokenizer and NSMC's rows into
.gpu-carry/ (git-ignored, ~25 MB); the device call names `.gpu-carry` in `carry`. Benchmarks 1
and 2 then train random-init stand-ins of e5-small's and MiniLM's shapes with MiniLM's
tokenizer (benchmarks/gpu_standins.py): the wall times hold, the metrics are no model's.
bitsandbytes is not there either: QLoRA and 8-bit AdamW cases are skipped with that reason
unless its wheel is carried too (README.md of the device tool says how).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import attrs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CARRY = REPO / ".gpu-carry"
WORK = Path(os.environ.get("ZOO_GPU_CHECK_WORK", "/tmp/zoo-gpu-check"))
TOTAL_BUDGET = 540
LAST_STEP = 20  # seconds under which no further step is started
FILES = ("summary.md", "steps.jsonl", "doctor.json", "memory.jsonl", "memory.md",
         "expandable.jsonl", "benchmarks.md", "log.txt")  # fmt: skip
# Pure-Python distributions zoo needs that the device image lacks (KINDS.md's package list).
CARRIED = ("cattrs", "tomli_w", "datasets", "evaluate", "dill", "multiprocess",
           "pylopdf-fonts-ko")  # fmt: skip
NEEDED_MODULES = ("torch", "transformers", "peft", "accelerate", "datasets", "evaluate", "cattrs",
                  "tomli_w", "pluggy", "rich", "sklearn", "zoo", "zoo_plugins")  # fmt: skip


@attrs.frozen(kw_only=True)
class Step:
    """One command of the check. `output`: the file its stdout goes to (else log.txt);
    `when`: why it must be skipped on this machine, or None to run it."""

    name: str
    budget: int  # seconds: its timeout, cut to what the whole check has left
    command: tuple[str, ...]
    what: str
    output: str = "log.txt"
    cuda: bool = True  # needs a CUDA GPU
    gpus: int = 1  # needs at least this many
    env: tuple[tuple[str, str], ...] = ()


def steps(results: Path, *, memory_budget: int = 200) -> list[Step]:
    """The steps in the order they run: the most wanted first, so that a short budget drops
    the least wanted."""
    py = sys.executable
    bench = str(HERE)
    memory = (py, f"{bench}/memory_accuracy.py", "--device", "cuda", "--grid", "real")
    largest = (*memory, "--largest", "3", "--jsonl", str(results / "expandable.jsonl"))
    stand_ins = WORK / "models"
    return [
        Step(
            name="setup",
            budget=45,
            cuda=False,
            what="the modules zoo imports, and versions",
            command=(py, f"{bench}/gpu_check.py", "--imports"),
        ),  # fmt: skip
        Step(
            name="doctor",
            budget=90,
            output="doctor.json",
            what="zoo doctor --gpu --json",
            command=(py, "-m", "zoo", "doctor", "--gpu", "--json"),
        ),  # fmt: skip
        Step(
            name="memory",
            budget=memory_budget + 40,
            output="memory.md",
            what="the memory grid at real sizes against the estimate",
            command=(
                *memory,
                "--budget-seconds",
                str(memory_budget),
                "--jsonl",
                str(results / "memory.jsonl"),
            ),
        ),  # fmt: skip
        Step(
            name="expandable-off",
            budget=60,
            what="the 3 largest cases, allocator default",
            command=largest,
            env=(("PYTORCH_CUDA_ALLOC_CONF", ""),),
        ),  # fmt: skip
        Step(
            name="expandable-on",
            budget=60,
            what="the 3 largest cases, expandable_segments",
            command=largest,
            env=(("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True"),),
        ),  # fmt: skip
        Step(
            name="stand-ins",
            budget=45,
            what="random-init e5-small and MiniLM stand-ins",
            command=(py, f"{bench}/gpu_standins.py", str(stand_ins)),
        ),  # fmt: skip
        Step(
            name="benchmark-1",
            budget=150,
            output="benchmarks.md",
            what="zoo against a plain Trainer script, demo data, 1 epoch, bf16",
            command=(
                py,
                f"{bench}/compare_with_plain.py",
                "demo",
                "1",
                "--gpu",
                "--bf16",
                "--skip-defaults",
                "--model-dir",
                str(stand_ins / "e5-small"),
            ),
        ),  # fmt: skip
        Step(
            name="benchmark-2",
            budget=90,
            output="benchmarks.md",
            what="the input pipelines, 1000 NSMC rows, 1 epoch, bf16",
            command=(
                py,
                f"{bench}/input_pipeline.py",
                "1000",
                "--gpu",
                "--bf16",
                "--model-dir",
                str(stand_ins / "minilm"),
            ),
        ),  # fmt: skip
        Step(
            name="ddp-nccl",
            budget=150,
            gpus=2,
            what="zoo run --nproc 2 with NCCL",
            command=(
                py,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-rs",
                "-p",
                "no:cacheprovider",
                "-m",
                "slow",
                "tests/test_distributed.py",
            ),
        ),  # fmt: skip
    ]


def environment() -> dict[str, str]:
    """What every step runs with: this tree's zoo and plugins first, the carried packages,
    the carried NSMC rows, and no network."""
    shim = WORK / "path"
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "zoo_plugins"  # the import package that pyproject maps to plugins/
    # A link an earlier run of another checkout left (or a broken one) would import its plugins.
    if link.is_symlink() and link.resolve() != (REPO / "plugins").resolve():
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(REPO / "plugins")
    paths = [str(REPO), str(shim)]
    if (CARRY / "site").is_dir():
        paths.append(str(CARRY / "site"))
    env = dict(os.environ)
    paths += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", ZOO_CACHE=str(WORK / "zoo-cache"),
               HF_HOME=str(WORK / "hf"), TOKENIZERS_PARALLELISM="false")  # fmt: skip
    if (CARRY / "data" / "nsmc").is_dir():
        env["ZOO_SHARED_DATA"] = str(CARRY / "data")
    return env


def machine() -> tuple[str | None, int]:
    """Why there is no CUDA GPU here (None when there is one), and how many there are."""
    try:
        import torch
    except ImportError:
        return "no CUDA GPU: torch is not installed", 0
    if torch.version.cuda is None:
        return f"no CUDA GPU: torch {torch.__version__} is a CPU build", 0
    if not torch.cuda.is_available():
        return "no CUDA GPU: torch.cuda.is_available() is False", 0
    return None, torch.cuda.device_count()


def skip_reason(step: Step, no_cuda: str | None, gpus: int) -> str | None:
    if step.cuda and no_cuda:
        return no_cuda
    if step.gpus > 1 and step.gpus > gpus:
        return f"needs {step.gpus} GPUs, this machine has {gpus}"
    return None


def run_all(results: Path, *, budget: int, only: set[str] | None,
            clock: Callable[[], float] = time.monotonic) -> int:  # fmt: skip
    """Run every step (or those of `only`) within `budget` seconds; write the results; 0 when
    no step failed."""
    results.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (results / name).unlink(missing_ok=True)
    env = environment()
    no_cuda, gpus = machine()
    started = clock()
    records = []
    log = results / "log.txt"
    with log.open("a", encoding="utf-8") as f:
        f.write(f"# zoo GPU check: {no_cuda or f'{gpus} CUDA GPU(s)'}; python {sys.executable}\n")
    for step in steps(results):
        if only is not None and step.name not in only:
            continue
        left = budget - (clock() - started)
        why = skip_reason(step, no_cuda, gpus)
        if why is None and left < LAST_STEP:
            why = f"the check's budget of {budget} s is spent"
        if why:
            record = {"step": step.name, "status": "skipped", "reason": why}
        else:
            record = _run(step, env, results, timeout=min(step.budget, int(left)))
        record.update(what=step.what, budget=step.budget, output=step.output,
                      command=shlex.join(step.command))  # fmt: skip
        records.append(record)
        shown = record.get("reason") or f"exit {record['exit']}, {record['seconds']:.0f} s"
        print(f"{step.name}: {record['status']} ({shown})", flush=True)
        with (results / "steps.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    (results / "summary.md").write_text(summary(records, results, clock() - started), "utf-8")
    return 1 if any(r["status"] in {"failed", "timed out"} for r in records) else 0


def _run(step: Step, env: dict[str, str], results: Path, *, timeout: int) -> dict:
    env = {**env, **dict(step.env)}
    if "PYTORCH_CUDA_ALLOC_CONF" in dict(step.env) and not env["PYTORCH_CUDA_ALLOC_CONF"]:
        del env["PYTORCH_CUDA_ALLOC_CONF"]
    began = time.monotonic()
    with (results / step.output).open("a", encoding="utf-8") as out, \
            (results / "log.txt").open("a", encoding="utf-8") as log:  # fmt: skip
        log.write(f"\n## {step.name}: {shlex.join(step.command)}\n")
        log.flush()
        if step.output != "log.txt":
            out.write(f"\n<!-- {step.name} -->\n" if step.output.endswith(".md") else "")
            out.flush()
        try:
            done = subprocess.run(step.command, cwd=REPO, env=env, stdout=out, stderr=log,
                                  timeout=timeout, check=False)  # fmt: skip
            code, status = done.returncode, "passed" if done.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            code, status = None, "timed out"
        except OSError as exc:
            code, status = None, "failed"
            log.write(f"could not start: {exc}\n")
    record = {"step": step.name, "status": status, "exit": code,
              "seconds": round(time.monotonic() - began, 1), "timeout": timeout}  # fmt: skip
    if status == "timed out":
        record["reason"] = f"timed out after {timeout} s"
    return record


def summary(records: list[dict], results: Path, seconds: float) -> str:
    lines = [f"# zoo GPU check ({seconds:.0f} s)", "",
             "| step | status | exit | seconds | budget | output | what | why |",
             "|---|---|---:|---:|---:|---|---|---|"]  # fmt: skip
    for r in records:
        lines.append(f"| {r['step']} | {r['status']} | {_shown(r.get('exit'))} "
                     f"| {_shown(r.get('seconds'))} | {r['budget']} | {r['output']} "
                     f"| {r['what']} | {r.get('reason', '')} |")  # fmt: skip
    counts = {s: sum(r["status"] == s for r in records)
              for s in ("passed", "failed", "timed out", "skipped")}  # fmt: skip
    lines += ["", ", ".join(f"{n} {s}" for s, n in counts.items()), ""]
    lines += expandable_reading(results / "expandable.jsonl")
    return "\n".join(lines) + "\n"


def _shown(value: object) -> str:
    return "" if value is None else str(value)


def expandable_reading(path: Path) -> list[str]:
    """reserved / allocated of the same cases with PYTORCH_CUDA_ALLOC_CONF off and on, and
    what that suggests: the data for issue 14's decision, not the decision itself."""
    if not path.is_file():
        return ["expandable_segments: not measured"]
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    by = {}
    for row in rows:
        if row.get("status") == "measured":
            on = "expandable_segments:True" in row.get("alloc_conf", "")
            by.setdefault(row["case"], {})[on] = row["reserved_over_allocated"]
    pairs = {case: v for case, v in by.items() if len(v) == 2}
    if not pairs:
        return ["expandable_segments: no case was measured both ways"]
    lines = ["| case | reserved / allocated, default | with expandable_segments:True |",
             "|---|---:|---:|"]  # fmt: skip
    lines += [f"| {case} | {v[False]:.3f} | {v[True]:.3f} |" for case, v in pairs.items()]
    gain = sum(v[False] - v[True] for v in pairs.values()) / len(pairs)
    verdict = ("suggests setting it (reserved is lower by more than 5% of allocated)"
               if gain > 0.05 else "shows no clear gain (within 5% of allocated)")  # fmt: skip
    return [*lines, "", f"expandable_segments:True {verdict}: mean change {-gain:+.3f}"]


def check_imports() -> int:
    """The `setup` step: import what zoo needs, print versions; 1 when one is missing."""
    import importlib
    import importlib.util

    missing = 0
    for name in NEEDED_MODULES:
        try:
            module = importlib.import_module(name)
            version = getattr(module, "__version__", "")
            print(f"{name} {version} {getattr(module, '__file__', '')}")
        except Exception as exc:
            missing += 1
            print(f"{name}: MISSING ({type(exc).__name__}: {exc})")
    for name in ("bitsandbytes", "flash_attn"):
        found = importlib.util.find_spec(name) is not None
        print(f"{name}: {'found' if found else 'absent (its cases are skipped)'}")
    return 1 if missing else 0


def prepare() -> int:
    """Here, before the device call: copy what the device lacks into .gpu-carry/."""
    import importlib.metadata
    import shutil

    site = CARRY / "site"
    shutil.rmtree(CARRY, ignore_errors=True)
    site.mkdir(parents=True)
    for name in CARRIED:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or ():
            parts = Path(file).parts
            if parts[0].startswith("..") or "__pycache__" in parts or file.suffix == ".pyc":
                continue
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.locate_file(file), target)
    from zoo_plugins.minilm import model_dir

    tokenizer = CARRY / "tokenizer"
    tokenizer.mkdir()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy2(model_dir() / name, tokenizer / name)
    sys.path.insert(0, str(HERE))
    from common import shared_data

    (CARRY / "data" / "nsmc").mkdir(parents=True)
    for name in ("train_20k.tsv", "test_4k.tsv"):
        shutil.copy2(shared_data() / "nsmc" / name, CARRY / "data" / "nsmc" / name)
    size = sum(p.stat().st_size for p in CARRY.rglob("*") if p.is_file())
    print(f"{CARRY}: {size / 2**20:.1f} MiB (the device tool carries at most 64 MiB in all)")
    print("device call: carry ['.gpu-carry'], command: bash benchmarks/gpu_check.sh \"$OUT\"")
    return 0


def dry_run(results: Path, budget: int) -> int:
    for step in steps(results):
        needs = f"{step.gpus} GPUs" if step.gpus > 1 else "a CUDA GPU" if step.cuda else "nothing"
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in step.env)
        print(f"{step.name} ({step.budget} s, needs {needs}, stdout to {step.output}): "
              f"{step.what}\n    {env + ' ' if env else ''}{shlex.join(step.command)}")  # fmt: skip
    total = sum(s.budget for s in steps(results))
    print(f"{len(steps(results))} steps, {total} s of budgets; the whole stops at {budget} s; "
          f"results in {results}: {', '.join(FILES)}")  # fmt: skip
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default=os.environ.get("OUT") or None)
    parser.add_argument("--dry-run", action="store_true", help="list the steps, run none")
    parser.add_argument("--budget", type=int, default=TOTAL_BUDGET, help="seconds in all")
    parser.add_argument("--only", default=None, help="run only these steps (comma-separated)")
    parser.add_argument("--prepare", action="store_true", help="fill .gpu-carry/ (run here)")
    parser.add_argument("--imports", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.imports:
        return check_imports()
    if options.prepare:
        return prepare()
    results = Path(options.results or "gpu-check-results").resolve()
    if options.dry_run:
        return dry_run(results, options.budget)
    only = set(options.only.split(",")) if options.only else None
    unknown = (only or set()) - {s.name for s in steps(results)}
    if unknown:
        parser.error(f"no step named {', '.join(sorted(unknown))}")
    return run_all(results, budget=options.budget, only=only)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
