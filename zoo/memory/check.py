"""The memory check of a recipe: per model, the estimate, the verdict and what would fit.

`zoo check` prints it; `zoo run` runs it before loading anything and refuses (or, with
`--auto-fit`, applies the cheapest plan to) a model that would not fit.
"""

from __future__ import annotations

from typing import Any

import attrs

from zoo.errors import WontFit
from zoo.hub_models import read_config
from zoo.memory.estimate import Estimate, estimate, inference
from zoo.memory.families.base import Families, builtin_families
from zoo.memory.plan import Plan, suggestions
from zoo.memory.probe import DeviceMemory
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import shape_from_config
from zoo.recipe import LoraSettings, ModelEntry, Recipe, TrainingConfig
from zoo.registry import Registry
from zoo.spec import ModelSpec, trains_weights

_STRATEGIES = {"ddp": "ddp", "fsdp": "fsdp", "deepspeed-zero2": "zero2", "deepspeed-zero3": "zero3"}


@attrs.frozen(kw_only=True)
class ModelCheck:
    model: str  # the entry's label
    method: str
    device: DeviceMemory
    estimate: Estimate | None  # None: the model declares no architecture (e.g. TF-IDF)
    suggestions: tuple[Plan, ...] = ()
    plan: Plan | None = None  # the cheapest plan that fits, when the run as written does not

    @property
    def fits(self) -> bool:
        return self.estimate is None or self.estimate.total <= self.device.available

    def to_json(self) -> dict[str, Any]:
        est = self.estimate
        return {
            "model": self.model,
            "method": self.method,
            "estimate_bytes": None if est is None else {**est.breakdown, "total": est.total},
            "allocated_bytes": None if est is None else est.allocated,
            "peak_phase": None if est is None else est.phase,
            "approximate": None if est is None else est.approximate,
            "family": None if est is None else est.family,
            "kernels": None if est is None else est.device,
            "device": self.device.name,
            "device_bytes": self.device.available,
            "fits": self.fits,
            "suggestions": [
                {
                    "change": p.change,
                    "settings": p.settings,
                    "total": p.estimate.total,
                    "fits": p.estimate.total <= self.device.available,
                }
                for p in self.suggestions
            ],  # fmt: skip
            "plan": None
            if self.plan is None
            else {
                "change": self.plan.change,
                "settings": self.plan.settings,
                "total": self.plan.estimate.total,
            },  # fmt: skip
        }


def lora_settings(entry: ModelEntry, spec: ModelSpec) -> tuple[int, tuple[str, ...]]:
    lora = entry.lora or LoraSettings()
    return lora.r, tuple(lora.target_modules or spec.resources.lora_targets)


def training_setup(
    recipe: Recipe,
    entry: ModelEntry,
    spec: ModelSpec,
    settings: TrainingConfig,
    device: DeviceMemory,
    *,
    dropout: tuple[bool, bool] | None = None,
) -> TrainingSetup:
    """What the estimator needs, from the recipe as zoo would run it on `device`. `dropout`
    (hidden, attention) is the model family's default for the model's config; without it, the
    built-in family of the plugin's architecture says (BERT's dropout when none claims it)."""
    precision = settings.precision
    if precision == "auto":
        precision = "bf16" if device.kind == "cuda" else "fp32"
    method = entry.training_method if trains_weights(entry.training_method) else "full"
    rank, targets = lora_settings(entry, spec)
    strategy = _STRATEGIES[recipe.distributed.strategy] if device.count > 1 else "none"
    if dropout is None:
        dropout = _dropout(spec.resources.architecture or {}, builtin_families())
    hidden_dropout, attention_dropout = dropout
    return TrainingSetup(
        method=method,
        precision=precision,
        optimizer=settings.optimizer or "adamw",
        attention=settings.attention or "sdpa",
        # What a CPU's kernels save differs from CUDA's (zoo.memory.activations).
        device="cpu" if device.kind == "cpu" else "cuda",
        gradient_checkpointing=bool(settings.gradient_checkpointing),
        batch_size=settings.batch_size,
        sequence=settings.max_length,
        eval_batch_size=settings.eval_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        lora_rank=rank,
        lora_targets=targets,
        gpus=device.count,
        strategy=strategy,
        hidden_dropout=hidden_dropout,
        attention_dropout=attention_dropout,  # SDPA on CUDA keeps nothing for it (the family)
        train_embeddings=True if settings.train_embeddings is None else settings.train_embeddings,
    )


def _dropout(config: Any, families: Families) -> tuple[bool, bool]:
    family = families.claim(config.get("model_type"))
    return (True, True) if family is None else family.dropout(config)


def check_entry(
    recipe: Recipe,
    entry: ModelEntry,
    registry: Registry,
    device: DeviceMemory,
    *,
    labels: int = 2,
    rough: bool = False,
) -> ModelCheck:
    """The estimate for one model entry; suggestions and a plan when it does not fit.
    (The number of labels only sizes the head: a handful of bytes per row.)

    The model family that claims the architecture's `model_type` (`registry.families`) reads
    it; one that no family claims raises `UnknownArchitecture`, unless `rough` accepts a rough
    BERT-like estimate."""
    from zoo.recipe import settings_for

    spec = registry.spec_for(recipe, entry)
    method = entry.training_method
    architecture_numbers = architecture(recipe, entry, spec)
    if architecture_numbers is None or spec.engine is not None:
        return ModelCheck(model=entry.label, method=method, device=device, estimate=None)
    families = registry.families
    if families.claim(architecture_numbers.get("model_type")) is None and not rough:
        raise families.unknown(architecture_numbers.get("model_type"), model=entry.label)
    shape = shape_from_config(architecture_numbers, labels, families=families, rough=True)
    setup = training_setup(
        recipe,
        entry,
        spec,
        settings_for(recipe, entry, spec),
        device,
        dropout=_dropout(architecture_numbers, families),
    )
    if not trains_weights(method):  # zero-shot, few-shot: scoring at training.max_length
        result = inference(shape, setup, context=device.context)
        return ModelCheck(model=entry.label, method=method, device=device, estimate=result)
    result = estimate(shape, setup, context=device.context)
    check = ModelCheck(model=entry.label, method=method, device=device, estimate=result)
    if check.fits:
        return check
    singles, best = suggestions(
        shape,
        setup,
        device.available,
        methods=spec.resources.methods,
        cuda=device.kind == "cuda",
        context=device.context,
        preset=device.preset,
    )
    return attrs.evolve(check, suggestions=tuple(singles), plan=best)


def architecture(recipe: Recipe, entry: ModelEntry, spec: ModelSpec) -> Any:
    """A local checkpoint's own config.json (read as JSON, nothing loaded), else the plugin's."""
    if entry.checkpoint:
        config = recipe.path(entry.checkpoint) / "config.json"
        if config.is_file():
            hint = f"replace the checkpoint of {entry.label!r}, or fix its config.json"
            return read_config(config, hint=hint)
    return spec.resources.architecture


def check_recipe(
    recipe: Recipe, registry: Registry, device: DeviceMemory, *, rough: bool = False
) -> list[ModelCheck]:
    return [check_entry(recipe, entry, registry, device, rough=rough) for entry in recipe.models]


def apply_plan(entry: ModelEntry, spec: ModelSpec, plan: Plan) -> ModelEntry:
    """The model entry with the plan's settings, as if the recipe had said them."""
    # More GPUs are hardware, not a setting: plans that fit never include them.
    changes = {k: v for k, v in plan.settings.items() if k not in {"gpus", "distributed.strategy"}}
    if changes.get("method") in {"lora", "qlora"} and entry.lora is None:
        rank, targets = lora_settings(entry, spec)
        changes["lora"] = LoraSettings(r=rank, target_modules=targets)
    return attrs.evolve(entry, **changes)


@attrs.frozen(kw_only=True)
class Fitted:
    recipe: Recipe  # with the plans that --auto-fit applied
    records: dict[str, Any]  # each entry's check as JSON, by label, for its run record
    refused: tuple[ModelCheck, ...]  # what does not fit and was not forced or fitted
    applied: tuple[tuple[str, str], ...]  # (label, change) that --auto-fit made


def fit(
    recipe: Recipe,
    registry: Registry,
    device: DeviceMemory,
    *,
    labels: int,
    auto_fit: bool = False,
    force: bool = False,
    rough: bool = False,
) -> Fitted:
    """Check every model of the recipe. One that does not fit is refused, unless `force`
    runs it anyway or `auto_fit` applies the cheapest plan that fits."""
    entries, refused, records, applied = [], [], {}, []
    for entry in recipe.models:
        check = check_entry(recipe, entry, registry, device, labels=labels, rough=rough)
        if not check.fits and auto_fit and check.plan is not None:
            entry = apply_plan(entry, registry.spec_for(recipe, entry), check.plan)
            applied.append((check.model, check.plan.change))
            check = check_entry(recipe, entry, registry, device, labels=labels, rough=rough)
        elif not check.fits and not force:
            refused.append(check)
        records[entry.label] = check.to_json()
        entries.append(entry)
    return Fitted(
        recipe=attrs.evolve(recipe, models=tuple(entries)),
        records=records,
        refused=tuple(refused),
        applied=tuple(applied),
    )


def refusal(recipe: Recipe, refused: tuple[ModelCheck, ...], device: DeviceMemory) -> WontFit:
    from zoo.report import human_bytes

    names = ", ".join(repr(c.model) for c in refused)
    plans = [c.plan for c in refused if c.plan is not None]
    largest = max(c.estimate.total for c in refused if c.estimate is not None)
    hint = (
        f"--auto-fit applies the cheapest plan that fits ({plans[0].change})"
        if plans
        else "train it on a larger GPU, or on several (see zoo check --gpus N)"
    )
    return WontFit(
        f"{recipe.run.name}: {names} would not fit in memory on {device.name} "
        f"(estimated {human_bytes(largest)} per device, {human_bytes(device.available)} "
        "available); nothing was loaded",
        hint=f"{hint}; --force runs it anyway",
    )
