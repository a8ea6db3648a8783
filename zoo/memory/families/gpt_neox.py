"""GPT-NeoX (`model_type = "gpt_neox"`: Polyglot-ko, KoAlpaca): GPTNeoXForSequenceClassification,
pre-LayerNorm layers with parallel attention and MLP branches, a fused query/key/value, rotary
embeddings (no parameters), no dropout by default, and a score layer that scores every position
(the last token's score is picked).

What a layer saves (e element bytes): one LayerNorm input for both branches (they read the same
tensor), the fused QKV's input and q, k, v, the out-projection's input, the MLP's FC1 input, GeLU
input and FC2 input; eager attention keeps its softmax in fp32 plus a cast copy
(a.s^2.b.(4 + e)) and reads a b x 1 x s x s float mask built once; SDPA as BERT's (see `bert`).
Above the layers: the final LayerNorm's input and the score layer's input. Without dropout a
CPU saves what CUDA does (measured); dropout, where a config sets it, is not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from zoo.memory.activations import (
    Activations,
    Block,
    adapter_mask_bytes,
    head_trains,
    linear_inputs,
    precision_bytes,
)
from zoo.memory.families.base import ModelFamily
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape, Tensor, linear, norm

LINEARS = (
    ("query_key_value", False, "attention"),
    ("dense", False, "attention"),
    ("dense_h_to_4h", False, "ffn"),
    ("dense_4h_to_h", True, "ffn"),
)


class GptNeoxFamily(ModelFamily):
    name = "gpt-neox"
    word_embeddings = "embed_in"
    model_types = ("gpt_neox",)
    decoder = True
    lora_targets = ("query_key_value",)

    def shape(self, config: Mapping[str, Any], labels: int) -> ModelShape:
        tied = bool(config.get("tie_word_embeddings", False))
        return attrs.evolve(super().shape(config, labels), tied_embeddings=tied)

    # The base class's lm_head: transformers 5 names GPTNeoXForCausalLM's output layer lm_head
    # (checkpoints' embed_out is renamed on loading: transformers.conversion_mapping), the name
    # LoRA's target_modules would match.

    def config(self, shape: ModelShape) -> dict[str, Any]:
        return {
            **super().config(shape),
            "rotary_pct": shape.rotary_pct,
            "tie_word_embeddings": shape.tied_embeddings,
        }

    def tensors(self, shape: ModelShape, layers: int) -> list[Tensor]:
        h, f = shape.hidden, shape.ffn
        layer = [
            *norm("input_layernorm", h, "attention"),
            *linear("query_key_value", h, 3 * h, "attention"),
            *linear("dense", h, h, "attention"),
            *norm("post_attention_layernorm", h, "ffn"),
            *linear("dense_h_to_4h", h, f, "ffn"),
            *linear("dense_4h_to_h", f, h, "ffn"),
        ]
        outside = [
            Tensor("embed_in", "embedding", shape.vocab, h),
            *norm("final_layer_norm", h),
            *linear("score", h, shape.labels, bias=False),
        ]
        return outside + layer * layers

    def dropout(self, config: Mapping[str, Any]) -> tuple[bool, bool]:
        return bool(config.get("hidden_dropout", 0.0)), bool(config.get("attention_dropout", 0.0))

    def scored_positions(self, setup: TrainingSetup) -> int:
        return setup.sequence

    def evaluation_per_token(self, shape: ModelShape, setup: TrainingSetup) -> int:
        """Measured: the MLP's wide tensors, the parallel attention and MLP branches, eager
        attention's fp32 softmax and its causal mask."""
        s, h, f, a = setup.sequence, shape.hidden, shape.ffn, shape.heads
        half, stream = precision_bytes(setup)
        ffn = half * 4 * f + stream * 4 * h
        attention = a * s * (8 + 2 * half) + stream * 5 * h
        mask = s * stream if setup.attention == "eager" else 0
        if setup.attention != "eager":
            attention = stream * 6 * h
        return max(ffn, attention) + mask

    def activations(self, shape: ModelShape, setup: TrainingSetup) -> Activations:
        b, s, h, f, a = setup.batch_size, setup.sequence, shape.hidden, shape.ffn, shape.heads
        tokens = b * s
        lora = setup.adapters
        checkpointing = setup.gradient_checkpointing
        half, stream = precision_bytes(setup)
        norm_bytes = stream * tokens * h + 8 * tokens

        def saved_inputs(block: str) -> int:
            return linear_inputs(LINEARS, block, setup, tokens=tokens, hidden=h, ffn=f)

        qkv = 3 * half * tokens * h
        if setup.attention == "eager":
            scores = a * s * s * b
            kernel = scores * (4 + (half if half != 4 else 0))  # fp32 softmax, a cast copy
            attention_working = 2 * scores * half
            attention_forward = scores * half
        else:
            kernel = 4 * a * s * b + half * tokens * h
            attention_working = 3 * half * tokens * h
            attention_forward = 0
        residual = 2 * stream * tokens * h
        attention = Block(
            saved=norm_bytes + saved_inputs("attention") + qkv + kernel,
            working=attention_working,
            forward=attention_forward + residual,
        )
        # The second LayerNorm reads the same input as the first: only its statistics.
        gelu_output = half * tokens * f if lora else 0
        ffn = Block(
            saved=8 * tokens + saved_inputs("ffn") + half * tokens * f,
            working=half * tokens * (h + f),
            forward=gelu_output + residual,
        )
        first = (attention, ffn)
        if lora and not checkpointing:
            # Layer 0 reads the frozen embeddings: the adapters' dropout keeps no mask there,
            # its LayerNorms save nothing, and its MLP branch (parallel to attention) saves
            # nothing unless an adapter sits in it.
            unsaved = norm_bytes + sum(
                adapter_mask_bytes(setup) * tokens * (f if wide else h)
                for module, wide, _ in LINEARS
                if module in setup.lora_targets and setup.lora_dropout
            )
            first_ffn = ffn
            if not any(setup.trains(m) for m, _, where in LINEARS if where == "ffn"):
                first_ffn = Block(0, 0)
            first = (attrs.evolve(attention, saved=attention.saved - unsaved), first_ffn)
        return Activations(
            below=0,  # no embedding LayerNorm, no dropout
            first=first,
            attention=attention,
            ffn=ffn,
            layers=shape.layers,
            # The final LayerNorm's input and statistics; the head's input where the head
            # trains (a frozen LM head under LoRA needs none for its input's gradient).
            above=stream * tokens * h * (1 + head_trains(shape, setup)) + 8 * tokens,
            layer_input=stream * tokens * h,
            mask=b * s * s * stream if setup.attention == "eager" else 0,
        )
