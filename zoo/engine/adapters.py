"""LoRA and QLoRA through peft: adapters on a frozen base, the classification head trained."""

from __future__ import annotations

from typing import Any

from zoo.errors import ZooError
from zoo.recipe import LoraSettings
from zoo.spec import ModelSpec


def apply_lora(
    model: Any,
    spec: ModelSpec,
    settings: LoraSettings | None,
    *,
    quantized: bool,
    causal_lm: bool = False,
):
    """Wrap `model` in LoRA adapters; only the adapters and the fresh head stay trainable, and
    they are float32 whatever dtype the frozen base has. `causal_lm` (head = "label-words"):
    a decoder's own LM head, which stays frozen like the rest of the base."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

    settings = settings or LoraSettings()
    targets = settings.target_modules or spec.resources.lora_targets
    if not targets:
        raise ZooError(
            f"model {spec.name!r} names no LoRA target modules",
            hint="set lora.target_modules for this model in the recipe",
        )
    if quantized:
        # Casts what is not quantised to fp32. peft would also switch on activation checkpointing
        # whatever the recipe says; the Trainer does that when training.gradient_checkpointing is
        # set.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = LoraConfig(
        # SEQ_CLS keeps the classification head ("classifier"/"score") fully trainable and
        # saves it with the adapter.
        task_type=TaskType.CAUSAL_LM if causal_lm else TaskType.SEQ_CLS,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(targets),
    )
    model = get_peft_model(model, config)
    # peft makes the adapters float32, but its trainable copy of the head keeps the base's dtype:
    # trained in bf16 it would lose small updates, in fp16 it breaks the loss scaler.
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return model


def is_adapter(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)
