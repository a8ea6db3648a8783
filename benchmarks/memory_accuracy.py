"""Benchmark 4: the memory estimator against measured training steps, on a CPU.

python benchmarks/memory_accuracy.py [--quick]

For every combination of family (BERT, XLM-R-shaped, GPT-NeoX), attention (eager, SDPA), dtype
(fp32, bf16), gradient checkpointing (off, on) and method (full, LoRA) at each batch/sequence
size, one steady-state training step of a tiny random-init model is measured
(`zoo.memory.measure`) and compared with `zoo.memory.estimate`. Prints one row per case and a
summary table in Markdown. `--quick` measures one size instead of four.
"""

from __future__ import annotations

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
           "gpt-neox": ("query_key_value",)}  # fmt: skip
SIZES = ((1, 32), (4, 128), (8, 256), (16, 512))


def one_case(family, attention, dtype, checkpointing, method, batch, sequence):
    shape = ModelShape(family=family, vocab=8000, hidden=256, layers=4, heads=4, ffn=1024,
                       labels=3, positions=514)  # fmt: skip
    hidden_dropout, attention_dropout = shape.family.dropout(shape.config())
    model = build_model(shape, attention=attention, dtype=dtype)
    if method == "lora":
        model = add_lora(model, rank=8, targets=TARGETS[family])
    measured = measure_step(
        model, shape, batch=batch, sequence=sequence, checkpointing=checkpointing
    )
    setup = TrainingSetup(
        method=method,
        precision="fp32" if dtype == "fp32" else "bf16-pure",
        attention=attention,
        gradient_checkpointing=checkpointing,
        batch_size=batch,
        sequence=sequence,
        lora_targets=TARGETS[family],
        hidden_dropout=hidden_dropout,
        attention_dropout=attention_dropout and attention == "eager",
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
    return exact, saved / measured.activations - 1, step / measured.peak - 1


def main(sizes) -> None:
    import transformers

    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    rows = []
    print("| family | attention | dtype | checkpointing | method | batch x tokens | states "
          "| activations | peak |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---:|---:|")
    started = time.perf_counter()
    for case in itertools.product(
        TARGETS, ("eager", "sdpa"), ("fp32", "bf16"), (False, True), ("full", "lora"), sizes
    ):
        family, attention, dtype, checkpointing, method, (batch, sequence) = case
        exact, act, peak = one_case(family, attention, dtype, checkpointing, method, batch,
                                    sequence)  # fmt: skip
        rows.append((family, method, exact, act, peak))
        print(f"| {family} | {attention} | {dtype} | {'on' if checkpointing else 'off'} | "
              f"{method} | {batch} x {sequence} | {'exact' if exact else 'DIFFERENT'} | "
              f"{act:+.2%} | {peak:+.2%} |", flush=True)  # fmt: skip
    print(f"\n{len(rows)} cases in {time.perf_counter() - started:.0f} s\n")
    print("| family | method | cases | states exact | activations error | peak error |")
    print("|---|---|---:|---:|---|---|")
    for family, method in itertools.product(TARGETS, ("full", "lora")):
        group = [r for r in rows if r[0] == family and r[1] == method]
        acts, peaks = [r[3] for r in group], [r[4] for r in group]
        print(f"| {family} | {method} | {len(group)} | {sum(r[2] for r in group)} | "
              f"{min(acts):+.2%} to {max(acts):+.2%} | "
              f"{min(peaks):+.2%} to {max(peaks):+.2%} |")  # fmt: skip
    acts, peaks = [r[3] for r in rows], [r[4] for r in rows]
    print(f"| all | | {len(rows)} | {sum(r[2] for r in rows)} | {min(acts):+.2%} to "
          f"{max(acts):+.2%} | {min(peaks):+.2%} to {max(peaks):+.2%} |")  # fmt: skip


if __name__ == "__main__":
    main(SIZES[1:2] if "--quick" in sys.argv else SIZES)
