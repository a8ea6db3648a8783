"""Benchmark 4 on a CUDA GPU: the estimator against the caching allocator, at real sizes.

    python benchmarks/memory_accuracy.py --device cuda [--grid real|tiny] [--budget-seconds S]
        [--largest N] [--jsonl FILE] [--list]

Each case is one steady-state training step of a random-init model on CUDA device 0
(`zoo.memory.measure_cuda`), against `estimate(shape, setup)`:

- allocated: `torch.cuda.max_memory_allocated()` against the estimate's training-step peak
  (the highest of forward, backward and optimizer step, context 0: the step runs no evaluation);
- reserved: `max_memory_reserved()` against that peak with the allocator margin
  (`ALLOCATOR_MARGIN`);
- total: reserved + the context that `torch.cuda.mem_get_info()` shows against
  `Estimate.total` less its evaluation phase (`CUDA_CONTEXT` + step peak + margin).

The grid `real` covers issue 14's: XLM-R base and a GPT-NeoX of 1.3B (Polyglot-ko-1.3B's
shape); bf16 AMP, pure bf16, fp16 AMP; full, LoRA, QLoRA; checkpointing off and on; fused AdamW
and 8-bit AdamW; batch x length from 1 x 128 to 16 x 512. Its cases come most informative
first, so that `--budget-seconds` drops the repeats of the size sweep, not a method. One JSON
line per case (measured, skipped or failed) goes to `--jsonl`, and the Markdown table to stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from zoo.memory.estimate import ALLOCATOR_MARGIN, CUDA_CONTEXT, estimate
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape, shape_from_config

MiB = 2**20
TARGETS = {"xlm-roberta": ("query", "value"), "bert": ("query", "value"),
           "gpt-neox": ("query_key_value",)}  # fmt: skip


def real_shapes() -> dict[str, ModelShape]:
    """XLM-R base (zoo's `xlmr` plugin) and Polyglot-ko-1.3B's GPT-NeoX, with 3 labels."""
    from zoo_plugins import koalpaca, xlmr

    neox = koalpaca.architecture(hidden=2_048, layers=24, heads=16, ffn=8_192, rotary_pct=0.5)
    return {
        "xlm-r-base": shape_from_config(xlmr.ARCHITECTURE, labels=3),
        "gpt-neox-1.3b": shape_from_config(neox, labels=3),
    }


def tiny_shapes() -> dict[str, ModelShape]:
    """Seconds-long models: to see that the harness works before the real grid."""
    numbers = {"vocab": 8000, "hidden": 256, "layers": 4, "heads": 4, "ffn": 1024, "labels": 3}
    families = ("xlm-roberta", "gpt-neox")
    return {family: ModelShape(family=family, positions=514, **numbers) for family in families}


@attrs.frozen(kw_only=True)
class Case:
    """One measured step: a model of the grid and how it trains."""

    model: str
    precision: str = "bf16"  # TrainingSetup.precision: bf16 / fp16 are AMP
    method: str = "full"
    checkpointing: bool = False
    optimizer: str = "adamw"
    batch: int = 8
    sequence: int = 256

    @property
    def name(self) -> str:
        checkpointing = " checkpointing" if self.checkpointing else ""
        return (f"{self.model} {self.precision} {self.method}{checkpointing} {self.optimizer} "
                f"{self.batch}x{self.sequence}")  # fmt: skip

    @property
    def needs_bitsandbytes(self) -> bool:
        return self.method == "qlora" or self.optimizer == "adamw-8bit"

    def setup(self, shape: ModelShape) -> TrainingSetup:
        hidden_dropout, _ = shape.family.dropout(shape.config())
        return TrainingSetup(
            method=self.method,  # type: ignore[arg-type]
            precision=self.precision,  # type: ignore[arg-type]
            optimizer=self.optimizer,  # type: ignore[arg-type]
            attention="sdpa",
            device="cuda",
            gradient_checkpointing=self.checkpointing,
            batch_size=self.batch,
            sequence=self.sequence,
            lora_targets=TARGETS[shape.family.name] if self.method != "full" else (),
            hidden_dropout=hidden_dropout,
            attention_dropout=False,  # the harness measures SDPA without attention dropout
        )


def _each_model(models: Iterable[str], *variants: dict[str, Any]) -> list[Case]:
    return [Case(model=model, **variant) for model in models for variant in variants]


def real_grid(models: tuple[str, ...] = ("xlm-r-base", "gpt-neox-1.3b")) -> list[Case]:
    """Issue 14's grid, most informative first (see the module docstring)."""
    largest = {"batch": 16, "sequence": 512}
    first = _each_model(
        models,
        {},  # bf16 AMP, full, fused AdamW, 8 x 256
        {"precision": "bf16-pure"},
        {"precision": "fp16"},
        {"method": "lora"},
        {"method": "qlora"},
        {"optimizer": "adamw-8bit"},
        {"checkpointing": True, **largest},
        {"method": "lora", "checkpointing": True, **largest},
        largest,
        {"method": "lora", **largest},
        {"method": "qlora", **largest},
    )
    sweep = _each_model(
        models,
        {"batch": 1, "sequence": 128},
        {"batch": 4, "sequence": 128},
        {"batch": 16, "sequence": 256},
        {"batch": 4, "sequence": 512},
        {"precision": "bf16-pure", **largest},
        {"precision": "fp16", **largest},
        {"method": "qlora", "checkpointing": True, **largest},
        {"optimizer": "adamw-8bit", **largest},
        {"method": "lora", "precision": "fp16"},
        {"method": "lora", "precision": "bf16-pure"},
    )
    return first + sweep


def tiny_grid() -> list[Case]:
    models = tuple(tiny_shapes())
    return _each_model(models, {}, {"precision": "fp16"}, {"method": "lora"},
                       {"checkpointing": True}, {"method": "qlora"})  # fmt: skip


GRIDS: dict[str, tuple[Callable[[], list[Case]], Callable[[], dict[str, ModelShape]]]] = {
    "real": (real_grid, real_shapes),
    "tiny": (tiny_grid, tiny_shapes),
}


def prior_seconds(case: Case, shape: ModelShape) -> float:
    """A rough guess of one case's wall time on an H200 before any was measured: building the
    model on the GPU, QLoRA's save and 4-bit reload, two steps. Replaced by what the same
    model and method took once one has run (`within_budget`)."""
    billions = shape.parameters() / 1e9
    build = 2.0 + 6.0 * billions
    if case.method == "qlora":
        build += 4.0 + 20.0 * billions  # a bf16 checkpoint written and read back quantised
    tokens = case.batch * case.sequence
    steps = 2 * (0.05 + 6 * shape.parameters() * tokens * 4 / 400e12)  # ~400 TFLOP/s reached
    return build + steps


def largest_cases(cases: list[Case], shapes: dict[str, ModelShape], count: int) -> list[Case]:
    """The `count` cases with the highest estimated step peak that need no bitsandbytes: the
    ones where the allocator's reserve matters most (PYTORCH_CUDA_ALLOC_CONF on and off)."""
    plain = [c for c in cases if not c.needs_bitsandbytes]
    return sorted(plain, key=lambda c: -step_peak(shapes[c.model], c.setup(shapes[c.model])))[
        :count
    ]


def step_peak(shape: ModelShape, setup: TrainingSetup) -> int:
    """The estimate's training-step peak of live tensors: forward, backward or optimizer step
    (the measured step runs no evaluation)."""
    phases = estimate(shape, setup, context=0).phases
    return max(value for phase, value in phases.items() if phase != "evaluation")


def within_budget(
    cases: Iterable[Case],
    budget: float | None,
    measure: Callable[[Case], dict[str, Any]],
    expected: Callable[[Case], float],
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[dict[str, Any]]:
    """Measure the cases in order while they fit in `budget` seconds: a case is left out
    (a row with status "skipped", reason "budget") when the time spent so far and what it is
    expected to take would pass the budget. Its expected time is what the same model and
    method took last, or `expected(case)` before one has run."""
    start = clock()
    took: dict[tuple[str, str], float] = {}
    for case in cases:
        key = (case.model, case.method)
        guess = took.get(key, expected(case))
        spent = clock() - start
        if budget is not None and spent + guess > budget:
            detail = f"{spent:.0f} s spent + {guess:.0f} s expected > {budget:.0f} s"
            yield {**_fields(case), "status": "skipped", "reason": "budget", "detail": detail}
            continue
        began = clock()
        row = measure(case)
        took[key] = clock() - began
        yield row


def _fields(case: Case) -> dict[str, Any]:
    return {"case": case.name, **attrs.asdict(case)}


def measure_case(case: Case, shape: ModelShape) -> dict[str, Any]:
    """One JSON row: the measurement beside the estimate, or why there is none."""
    from zoo.memory.measure_cuda import measure_cuda_step

    setup = case.setup(shape)
    row = {**_fields(case), "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")}
    if case.needs_bitsandbytes and not _has_bitsandbytes():
        return {**row, "status": "skipped", "reason": "bitsandbytes is not installed"}
    try:
        measured = measure_cuda_step(shape, setup)
    except Exception as exc:  # an OOM or a library's refusal: this case fails, the grid goes on
        _release_quietly()
        return {**row, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:500]}
    predicted = estimate(shape, setup)
    step = step_peak(shape, setup)
    reserved = round(step * (1 + ALLOCATOR_MARGIN))
    measured_total = measured.reserved + measured.baseline_reserved + measured.context
    return {
        **row,
        "status": "measured",
        "parameters": predicted.parameters,
        "trainable": predicted.trainable,
        "measured": attrs.asdict(measured),
        "estimated": {
            "step": step,
            "phase": max(
                (p for p in predicted.phases if p != "evaluation"),
                key=lambda p: predicted.phases[p],
            ),
            "allocated_all_phases": predicted.allocated,
            "reserved": reserved,
            "total": CUDA_CONTEXT + reserved,
            "breakdown": predicted.breakdown,
        },
        "error": {
            "allocated": step / measured.allocated - 1,
            "reserved": reserved / measured.reserved - 1,
            "total": (CUDA_CONTEXT + reserved) / measured_total - 1,
        },
        "reserved_over_allocated": measured.reserved / measured.allocated,
    }


def _has_bitsandbytes() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


def _release_quietly() -> None:
    try:
        from zoo.memory.measure_cuda import release

        release()
    except Exception:
        pass


def markdown_row(row: dict[str, Any]) -> str:
    if row["status"] != "measured":
        return f"| {row['case']} | {row['status']}: {row['reason']} | | | | | |"
    m, e = row["measured"], row["error"]
    step = row["estimated"]["step"]
    return (f"| {row['case']} | {m['allocated'] / MiB:,.0f} | {step / MiB:,.0f} "
            f"| {e['allocated']:+.1%} | {m['reserved'] / MiB:,.0f} | {e['reserved']:+.1%} "
            f"| {row['reserved_over_allocated']:.3f} |")  # fmt: skip


HEADER = (
    "| case | allocated (MiB) | estimated (MiB) | error | reserved (MiB) | reserved error "
    "| reserved / allocated |\n|---|---:|---:|---:|---:|---:|---:|"
)


def summary(rows: list[dict[str, Any]]) -> str:
    """Per model and method: how many were measured, skipped, failed, and the error ranges."""
    lines = ["| model | method | measured | skipped | failed | allocated error | reserved error |",
             "|---|---|---:|---:|---:|---|---|"]  # fmt: skip
    for model, method in dict.fromkeys((r["model"], r["method"]) for r in rows):
        group = [r for r in rows if (r["model"], r["method"]) == (model, method)]
        done = [r for r in group if r["status"] == "measured"]
        counts = [sum(r["status"] == s for r in group) for s in ("measured", "skipped", "failed")]
        ranges = ["", ""]
        if done:
            for i, key in enumerate(("allocated", "reserved")):
                errors = [r["error"][key] for r in done]
                ranges[i] = f"{min(errors):+.1%} to {max(errors):+.1%}"
        lines.append(f"| {model} | {method} | {' | '.join(map(str, counts))} | "
                     f"{ranges[0]} | {ranges[1]} |")  # fmt: skip
    return "\n".join(lines)


def main(grid: str, *, budget: float | None, largest: int | None, jsonl: str | None,
         listing: bool) -> int:  # fmt: skip
    """Run (or with `listing`, list) the grid; 0 when every case ran or was skipped, 2 without
    a CUDA GPU, 1 when a case failed."""
    make_cases, make_shapes = GRIDS[grid]
    shapes = make_shapes()
    cases = make_cases()
    if largest:
        cases = largest_cases(cases, shapes, largest)
    if listing:
        total = 0.0
        for case in cases:
            seconds = prior_seconds(case, shapes[case.model])
            total += seconds
            print(f"{case.name}: ~{seconds:.0f} s")
        print(f"{len(cases)} cases, ~{total:.0f} s before any was measured")
        return 0
    from zoo.memory.measure_cuda import cuda_unavailable

    reason = cuda_unavailable()
    if reason:
        print(f"memory_accuracy.py --device cuda: {reason}; it measures on a CUDA GPU only "
              "(without --device cuda it measures on this CPU)", file=sys.stderr)  # fmt: skip
        return 2
    _quiet()
    out = open(jsonl, "a", encoding="utf-8") if jsonl else None  # noqa: SIM115
    rows = []
    print(HEADER)
    started = time.monotonic()
    try:
        for row in within_budget(
            cases,
            budget,
            lambda c: measure_case(c, shapes[c.model]),
            lambda c: prior_seconds(c, shapes[c.model]),
        ):
            rows.append(row)
            print(markdown_row(row), flush=True)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
    finally:
        if out:
            out.close()
    skipped = sum(r.get("reason") == "budget" for r in rows)
    print(f"\n{len(rows) - skipped} of {len(rows)} cases run in {time.monotonic() - started:.0f} s;"
          f" {skipped} left out by --budget-seconds {budget}\n")  # fmt: skip
    print(summary(rows))
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def _quiet() -> None:
    import warnings

    import transformers

    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
