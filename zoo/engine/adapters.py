"""LoRA and QLoRA through peft: adapters on a frozen base, the classification head trained."""

from __future__ import annotations

from typing import Any

from zoo.errors import ZooError
from zoo.recipe import LoraSettings
from zoo.spec import ModelSpec


def apply_lora(model: Any, spec: ModelSpec, settings: LoraSettings | None, *, quantized: bool):
    """Wrap `model` in LoRA adapters; only the adapters and the fresh head stay trainable."""
    from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

    settings = settings or LoraSettings()
    targets = settings.target_modules or spec.resources.lora_targets
    if not targets:
        raise ZooError(
            f"model {spec.name!r} names no LoRA target modules",
            hint="set lora.target_modules for this model in the recipe",
        )
    if quantized:
        # Casts norms and the head to fp32 and enables input gradients for checkpointing.
        model = prepare_model_for_kbit_training(model)
    config = LoraConfig(
        # SEQ_CLS keeps the classification head ("classifier"/"score") fully trainable and
        # saves it with the adapter.
        task_type=TaskType.SEQ_CLS,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(targets),
    )
    return get_peft_model(model, config)


def is_adapter(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)
