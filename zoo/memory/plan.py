"""What would make a run fit: single changes, each with its estimate, and the cheapest plan.

Every change costs something: speed (checkpointing recomputes, smaller batches run slower),
quality (LoRA and QLoRA train less, a shorter max_length truncates) or hardware. Costs are
ranks, not measurements; the cheapest plan is the combination with the lowest total cost that
fits, and ties go to the smaller estimate. The effective batch always stays the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import attrs

from zoo.memory.estimate import Estimate, estimate
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape


@attrs.frozen(kw_only=True)
class Plan:
    changes: tuple[str, ...]  # in words, for people
    settings: dict[str, Any]  # the recipe keys of the model entry that make the change
    setup: TrainingSetup
    estimate: Estimate
    cost: int

    @property
    def change(self) -> str:
        return " + ".join(self.changes) or "as written"


@attrs.frozen
class _Option:
    change: str
    settings: dict[str, Any]
    cost: int
    apply: Any  # TrainingSetup -> TrainingSetup


def _options(setup: TrainingSetup, methods: tuple[str, ...], cuda: bool) -> list[list[_Option]]:
    """Groups of alternatives; a plan takes at most one option from each group."""
    groups: list[list[_Option]] = []
    if setup.attention == "eager":
        groups.append(
            [
                _Option(
                    "SDPA attention",
                    {"attention": "sdpa"},
                    0,
                    lambda s: attrs.evolve(s, attention="sdpa"),
                )
            ]
        )
    if not setup.gradient_checkpointing:
        groups.append(
            [
                _Option(
                    "gradient checkpointing",
                    {"gradient_checkpointing": True},
                    3,
                    lambda s: attrs.evolve(s, gradient_checkpointing=True),
                )
            ]
        )
    if setup.method == "full" and setup.train_embeddings:
        # May cost some quality (the issue measured macro-F1 0.800 -> 0.776 on NSMC).
        groups.append(
            [
                _Option(
                    "frozen word embeddings",
                    {"train_embeddings": False},
                    2,
                    lambda s: attrs.evolve(s, train_embeddings=False),
                )
            ]
        )
    halvings = []
    batch, accumulation = setup.batch_size, setup.gradient_accumulation_steps
    step = 0
    while batch > 1:
        batch, accumulation, step = batch // 2, accumulation * 2, step + 1
        if batch * accumulation != setup.batch_size * setup.gradient_accumulation_steps:
            break
        halvings.append(
            _Option(
                f"batch {batch} x {accumulation} accumulation",
                {"batch_size": batch, "gradient_accumulation_steps": accumulation},
                step,
                lambda s, b=batch, a=accumulation: attrs.evolve(
                    s, batch_size=b, gradient_accumulation_steps=a, eval_batch_size=None
                ),
            )
        )
    if halvings:
        groups.append(halvings)
    if cuda and setup.optimizer in {"adamw", "adamw-foreach"}:
        groups.append(
            [
                _Option(
                    "8-bit AdamW",
                    {"optimizer": "adamw-8bit"},
                    2,
                    lambda s: attrs.evolve(s, optimizer="adamw-8bit"),
                )
            ]
        )
    methods_group = []
    if setup.method == "full" and "lora" in methods:
        methods_group.append(
            _Option("LoRA", {"method": "lora"}, 4, lambda s: attrs.evolve(s, method="lora"))
        )
    if setup.method in {"full", "lora"} and "qlora" in methods and cuda:
        methods_group.append(
            _Option(
                "QLoRA (4-bit base)",
                {"method": "qlora"},
                6,
                lambda s: attrs.evolve(s, method="qlora"),
            )
        )
    if methods_group:
        groups.append(methods_group)
    shorter = []
    length, step = setup.sequence, 0
    while length // 2 >= 64:
        length, step = length // 2, step + 1
        shorter.append(
            _Option(
                f"max_length {length}",
                {"max_length": length},
                5 * step,
                lambda s, n=length: attrs.evolve(s, sequence=n),
            )
        )
    if shorter:
        groups.append(shorter)
    return groups


def _plans(
    shape: ModelShape, setup: TrainingSetup, groups: list[list[_Option]], context: int
) -> Iterator[Plan]:
    for picks in itertools.product(*[[None, *group] for group in groups]):
        chosen = [p for p in picks if p is not None]
        changed = setup
        settings: dict[str, Any] = {}
        for option in chosen:
            changed = option.apply(changed)
            settings.update(option.settings)
        yield Plan(
            changes=tuple(o.change for o in chosen),
            settings=settings,
            setup=changed,
            estimate=estimate(shape, changed, context=context),
            cost=sum(o.cost for o in chosen),
        )


def suggestions(
    shape: ModelShape,
    setup: TrainingSetup,
    available: int,
    *,
    methods: tuple[str, ...],
    cuda: bool,
    context: int,
    preset: str | None = None,
) -> tuple[list[Plan], Plan | None]:
    """Each single change (ranked: those that fit first, then by cost), and the cheapest plan
    that fits (None when nothing does). More GPUs are more of the same: of the GPU `preset`
    ("2 x a100-40gb GPUs with ZeRO-3") when the device is one."""
    groups = _options(setup, methods, cuda)
    singles = []
    for group in groups:
        for option in group:
            changed = option.apply(setup)
            singles.append(
                Plan(
                    changes=(option.change,),
                    settings=dict(option.settings),
                    setup=changed,
                    estimate=estimate(shape, changed, context=context),
                    cost=option.cost,
                )
            )
    if setup.sharding == 1 and setup.method != "qlora":
        for gpus in (2, 4, 8):
            changed = attrs.evolve(setup, gpus=gpus, strategy="zero3")
            more = estimate(shape, changed, context=context)
            if more.total <= available or gpus == 8:
                singles.append(
                    Plan(
                        changes=(f"{_gpus(gpus, preset)} with ZeRO-3",),
                        settings={"distributed.strategy": "deepspeed-zero3", "gpus": gpus},
                        setup=changed,
                        estimate=more,
                        cost=8,
                    )
                )
                break
    singles.sort(key=lambda p: (p.estimate.total > available, p.cost, p.estimate.total))
    fitting = [p for p in _plans(shape, setup, groups, context) if p.estimate.total <= available]
    best = min(fitting, key=lambda p: (p.cost, p.estimate.total), default=None)
    return singles, best


def _gpus(count: int, preset: str | None) -> str:
    return f"{count} GPUs" if preset is None else f"{count} x {preset} GPUs"
