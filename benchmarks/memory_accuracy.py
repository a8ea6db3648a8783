"""Benchmark 4: the memory estimator against measured training steps, on a CPU.

python benchmarks/memory_accuracy.py [--quick]
python benchmarks/memory_accuracy.py --device cuda [--grid real|tiny] [--budget-seconds S]
    [--largest N] [--jsonl FILE] [--list]

Without `--device cuda` it measures on this CPU. Two kinds of rows, by the device whose kernels
the estimate and the measurement follow:

- cuda: CUDA emulated on this CPU (`zoo.memory.measure`: 1-byte dropout masks, SDPA without
  attention dropout). For every combination of family (BERT, XLM-R-shaped, GPT-NeoX, Llama with
  grouped-query attention), attention (eager, SDPA), dtype (fp32, bf16), gradient
  checkpointing (off, on) and method (full, LoRA) at each batch/sequence size, one
  steady-state training step of a tiny random-init model.
- cpu: the same combinations as this CPU runs them, without emulation (dropout masks in the
  tensor's dtype; the models' attention dropout, which puts SDPA on its math path), and
  e5-small and MiniLM at their real shapes (random-init), batch 16 x 128, fp32.

Prints one row per case and a summary table in Markdown. `--quick` measures the tiny grid at one
size instead of four; `--family llama` measures only that family's tiny rows.

`--device cuda` measures on a real CUDA GPU instead (`cuda_memory.py` beside this file: the
caching allocator's allocated and reserved peaks at real sizes, one JSON line per case); on a
machine without one it says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import warnings

from zoo.memory.activations import activations
from zoo.memory.estimate import estimate, parameters
from zoo.memory.measure import add_lora, build_model, measure_step
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape

TARGETS = {"bert": ("query", "value"), "xlm-roberta": ("query", "value"),
           "gpt-neox": ("query_key_value",), "llama": ("q_proj", "v_proj")}  # fmt: skip
# The Llama rows: grouped-query attention, 2 key/value heads for 4 query heads.
EXTRA = {"llama": {"kv_heads": 2, "head_dim": 64}}
SIZES = ((1, 32), (4, 128), (8, 256), (16, 512))
# The real models' shapes (plugins/e5_small.py, plugins/minilm.py), with 2 labels.
REAL = {
    "e5-small": ModelShape(family="bert", vocab=250_037, hidden=384, layers=12, heads=12,
                           ffn=1536, labels=2),
    "minilm": ModelShape(family="bert", vocab=30_522, hidden=384, layers=6, heads=12, ffn=1536,
                         labels=2),
}  # fmt: skip
# At the real shapes: (device, attention, attention dropout, method).
REAL_CASES = (
    ("cpu", "sdpa", True, "full"),
    ("cpu", "sdpa", False, "full"),
    ("cpu", "eager", True, "full"),
    ("cpu", "sdpa", True, "lora"),
    ("cuda", "sdpa", False, "full"),
)


def tiny(family: str) -> ModelShape:
    return ModelShape(family=family, vocab=8000, hidden=256, layers=4, heads=4, ffn=1024,
                      labels=3, positions=514, extra=EXTRA.get(family, {}))  # fmt: skip


def one_case(shape, device, attention, attention_dropout, dtype, checkpointing, method, batch,
             sequence):  # fmt: skip
    """Whether parameters, gradients and optimizer state came out exact, estimate / measured - 1
    of activations and the step's peak, the measurement, and whether the measured model had
    attention dropout."""
    family = shape.family.name
    hidden_dropout, configured = shape.family.dropout(shape.config())
    # The CUDA harness measures SDPA without attention dropout (measure.build_model).
    attention_dropout = attention_dropout and configured
    if device == "cuda" and attention == "sdpa":
        attention_dropout = False
    model = build_model(shape, attention=attention, dtype=dtype, device=device,
                        attention_dropout=attention_dropout)  # fmt: skip
    if method == "lora":
        model = add_lora(model, rank=8, targets=TARGETS[family])
    measured = measure_step(model, shape, batch=batch, sequence=sequence,
                            checkpointing=checkpointing, device=device)  # fmt: skip
    setup = TrainingSetup(
        method=method,
        precision="fp32" if dtype == "fp32" else "bf16-pure",
        attention=attention,
        device=device,
        gradient_checkpointing=checkpointing,
        batch_size=batch,
        sequence=sequence,
        lora_targets=TARGETS[family],
        hidden_dropout=hidden_dropout,
        attention_dropout=attention_dropout,
    )
    predicted = estimate(shape, setup, context=0)
    gradients = sum(p.tensor.numel * p.bytes_per for p in parameters(shape, setup) if p.trains)
    exact = (
        predicted.breakdown["weights"] == measured.parameters
        and gradients == measured.gradients
        and predicted.breakdown["optimizer"] == measured.optimizer
    )
    saved = activations(shape, setup).saved(checkpointing)
    step = max(v for phase, v in predicted.phases.items() if phase != "evaluation")
    errors = saved / measured.activations - 1, step / measured.peak - 1
    return exact, *errors, measured, attention_dropout


def cases(sizes, families=tuple(TARGETS), real=True):
    """(model, shape, device, attention, attention dropout, dtype, checkpointing, method, batch,
    sequence) for every row."""
    for device in ("cuda", "cpu"):
        for family, attention, dtype, checkpointing, method, (batch, sequence) in (
            itertools.product(families, ("eager", "sdpa"), ("fp32", "bf16"), (False, True),
                              ("full", "lora"), sizes)
        ):  # fmt: skip
            yield (family, tiny(family), device, attention, True, dtype, checkpointing, method,
                   batch, sequence)  # fmt: skip
    for (name, shape), (device, attention, dropout, method) in itertools.product(
        REAL.items() if real else (), REAL_CASES
    ):
        yield name, shape, device, attention, dropout, "fp32", False, method, 16, 128


def main(sizes, families=tuple(TARGETS), real=True) -> None:
    import transformers

    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    rows = []
    print("| device | model | attention | dtype | checkpointing | method | batch x tokens "
          "| states | activations | peak |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---:|---:|")
    started = time.perf_counter()
    for case in cases(sizes, families, real):
        model, shape, device, attention, _, dtype, checkpointing, method, batch, sequence = case
        exact, act, peak, measured, dropout = one_case(shape, *case[2:])
        rows.append((device, model, method, exact, act, peak))
        shown = attention if dropout else f"{attention}, dropout 0"
        label = model
        if model in REAL:
            label += f" ({measured.activations / 1e6:,.1f} MB saved)"
        print(f"| {device} | {label} | {shown} | {dtype} | {'on' if checkpointing else 'off'} "
              f"| {method} | {batch} x {sequence} | {'exact' if exact else 'DIFFERENT'} | "
              f"{act:+.2%} | {peak:+.2%} |", flush=True)  # fmt: skip
    print(f"\n{len(rows)} cases in {time.perf_counter() - started:.0f} s\n")
    print("| device | model | method | cases | states exact | activations error | peak error |")
    print("|---|---|---|---:|---:|---|---|")
    groups = dict.fromkeys((r[0], r[1], r[2]) for r in rows)
    for device, group, method in groups:
        summary(device, group, method, [r for r in rows if r[:3] == (device, group, method)])
    for device in ("cuda", "cpu"):
        summary(device, "all", "", [r for r in rows if r[0] == device])


def summary(device, group, method, rows) -> None:
    acts, peaks = [r[4] for r in rows], [r[5] for r in rows]
    errors = f"{min(acts):+.2%} to {max(acts):+.2%} | {min(peaks):+.2%} to {max(peaks):+.2%}"
    print(f"| {device} | {group} | {method} | {len(rows)} | {sum(r[3] for r in rows)} | {errors} |")


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU: the tiny grid at one size")
    parser.add_argument("--family", default=None, help="CPU: only this family's tiny rows")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: measure on a real CUDA GPU (cuda_memory.py)")  # fmt: skip
    parser.add_argument("--grid", choices=("real", "tiny"), default="real",
                        help="cuda: real sizes (issue 14's grid) or tiny models")  # fmt: skip
    parser.add_argument("--budget-seconds", type=float, default=None,
                        help="cuda: add no case that would pass this many seconds")  # fmt: skip
    parser.add_argument("--largest", type=int, default=None,
                        help="cuda: only the N cases with the highest estimated peak")  # fmt: skip
    parser.add_argument("--jsonl", default=None, help="cuda: append one JSON line per case here")
    parser.add_argument("--list", action="store_true", help="cuda: list the cases, run none")
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = arguments(sys.argv[1:])
    if options.device == "cuda":
        import cuda_memory

        sys.exit(cuda_memory.main(options.grid, budget=options.budget_seconds,
                                  largest=options.largest, jsonl=options.jsonl,
                                  listing=options.list))  # fmt: skip
    # --family NAME: that family's tiny rows alone (no real-shape rows).
    only = options.family
    main(SIZES[1:2] if options.quick else SIZES, (only,) if only else tuple(TARGETS),
         real=only is None)  # fmt: skip
