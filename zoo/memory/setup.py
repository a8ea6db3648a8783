"""What the estimator needs to know about a training run, besides the model's shape."""

from __future__ import annotations

from typing import Literal

import attrs

from zoo.spec import Attention, Head, TrainingMethod

# fp16/bf16: mixed precision (fp32 weights, 16-bit compute); bf16-pure: everything in bf16.
Precision = Literal["fp32", "fp16", "bf16", "bf16-pure"]
Optimizer = Literal["adamw", "adamw-foreach", "adamw-8bit", "adafactor", "sgd"]
Strategy = Literal["none", "ddp", "zero2", "zero3", "fsdp"]
# Whose kernels the step runs: what autograd saves differs (zoo.memory.activations).
DeviceKind = Literal["cuda", "cpu"]


@attrs.frozen(kw_only=True)
class TrainingSetup:
    method: TrainingMethod = "full"
    precision: Precision = "fp32"
    optimizer: Optimizer = "adamw"  # adamw: fused AdamW, the HF Trainer's default
    attention: Attention = "sdpa"
    device: DeviceKind = "cuda"
    gradient_checkpointing: bool = False
    batch_size: int = 8
    sequence: int = 128  # tokens per row: the recipe's max_length (the longest batch pads to it)
    eval_batch_size: int | None = None  # None: twice the training batch, as zoo runs it
    gradient_accumulation_steps: int = 1
    lora_rank: int = 8
    lora_targets: tuple[str, ...] = ()
    lora_dropout: bool = True  # zoo's LoRA default: dropout 0.05 on the adapters' input
    gpus: int = 1
    strategy: Strategy = "none"
    # Hidden and attention dropout as the model's config has it (BERT 0.1, GPT-NeoX 0.0).
    hidden_dropout: bool = True
    attention_dropout: bool = True
    # Full fine-tuning: False freezes the word-embedding matrix (no gradient, no optimizer
    # state); "sparse" trains the rows a batch uses (a sparse gradient, the full AdamW state).
    train_embeddings: bool | Literal["sparse"] = True
    # "label-words": a decoder trains its LM head (over the whole vocabulary, at every
    # position) instead of a fresh classification head (zoo.spec.Head).
    head: Head = "classifier"
    # Label scoring (zero-shot, few-shot, a label-words model's evaluation): the longest
    # label's answer in tokens (its words, and the end-of-text token after label-words
    # training). Unknown before the tokenizer has run: 8 covers a few Korean words.
    answer_tokens: int = 8

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.gradient_accumulation_steps * self.gpus

    @property
    def evaluation_batch(self) -> int:
        return self.eval_batch_size or 2 * self.batch_size

    @property
    def adapters(self) -> bool:
        return self.method in {"lora", "qlora"}

    def trains(self, module: str) -> bool:
        """Whether a Linear layer of this name gets gradients (all do, unless LoRA adapts some)."""
        return not self.adapters or module in self.lora_targets

    @property
    def mixed(self) -> bool:
        return self.precision in {"fp16", "bf16"}

    @property
    def sharding(self) -> int:
        """How many devices share the model states (1 unless ZeRO or FSDP)."""
        return self.gpus if self.strategy in {"zero2", "zero3", "fsdp"} else 1
