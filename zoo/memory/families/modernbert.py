"""ModernBERT (`model_type = "modernbert"`, e.g. jhu-clsp/mmBERT-base): pre-LayerNorm layers
without biases, a fused `Wqkv`, rotary embeddings (no position or token-type embeddings),
a gated GeLU MLP (`Wi` makes 2f, `Wo` reads f), every `global_attn_every_n_layers`-th layer
attending globally and the others within a `local_attention` window, no dropout by default.
ModernBertForSequenceClassification pools the last hidden state (the first token, or the mean
with `classifier_pooling = "mean"`), then a pretrained dense + GeLU + LayerNorm head
(`head`, frozen under LoRA) and a fresh linear `classifier`.

In transformers 5 the model runs padded, on a mask: the local layers mask a full s x s score
matrix (eager) or hand SDPA a mask, so they save what the global ones do; there is no unpadding
to model (that is Flash Attention 2's path). What a layer saves (e element bytes, read from
saved-tensor measurements, see tests/test_memory.py):
- attention: the LayerNorm's input and statistics (not layer 0's, whose `attn_norm` is an
  identity), Wqkv's input, the rotated query and
  key (2e.sbh), and the value: eager attention's matmul saves a contiguous copy (e.sbh), SDPA a
  view of Wqkv's whole output (3e.sbh); eager: the fp32 softmax and a cast copy
  (a.s^2.b.(4 + e); with attention dropout, which reads the copy, its mask and output instead:
  a.s^2.b.(4 + 1 + e)) and the out-projection's input; SDPA: its output, which the out-projection
  reads as it is, and a float32 logsumexp (4.a.s.b);
- MLP: the LayerNorm's input, Wi's input, Wi's 2f-wide output (GeLU reads a view of it), GeLU's
  output and the gated product that Wo reads (e.sbh + 4e.sbf);
- below: the embeddings' LayerNorm input, and the rotary tables (one per attention kind); above:
  the final LayerNorm's input, and with "cls" pooling the view hidden[:, 0] keeps the whole last
  hidden state alive.
On a CPU dropout masks are in the tensor's dtype, and SDPA with attention dropout runs the math
path (`zoo.memory.activations.math_attention`): float32 copies of the rotated q and k and of v
(12.sbh) instead of SDPA's views, the float32 softmax, mask and dropout output (12.a.s^2.b), and
Wo's own input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from zoo.memory.activations import (
    Activations,
    Block,
    adapter_mask_bytes,
    linear_inputs,
    mask_bytes,
    math_attention,
    precision_bytes,
)
from zoo.memory.families.base import ModelFamily
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape, Tensor, linear, norm

LINEARS = (
    ("Wqkv", False, "attention"),
    ("Wo", False, "attention"),
    ("Wi", False, "ffn"),
    ("Wo", True, "ffn"),
)
# ModernBertConfig's defaults, as mmBERT keeps them.
DEFAULTS = {
    "global_attn_every_n_layers": 3,
    "local_attention": 128,
    "attention_bias": False,
    "mlp_bias": False,
    "norm_bias": False,
    "classifier_bias": False,
    "classifier_pooling": "cls",
    "embedding_dropout": 0.0,
    "mlp_dropout": 0.0,
    "attention_dropout": 0.0,
}


class ModernBertFamily(ModelFamily):
    name = "modernbert"
    word_embeddings = "tok_embeddings"
    model_types = ("modernbert",)

    def shape(self, config: Mapping[str, Any], labels: int) -> ModelShape:
        shape = super().shape(config, labels)
        return attrs.evolve(shape, extra={k: config.get(k, v) for k, v in DEFAULTS.items()})

    def config(self, shape: ModelShape) -> dict[str, Any]:
        return {
            **super().config(shape),
            **{k: shape.extra.get(k, v) for k, v in DEFAULTS.items()},
            # Special tokens inside a small test vocabulary.
            "pad_token_id": 0,
            "bos_token_id": 1,
            "cls_token_id": 1,
            "eos_token_id": 2,
            "sep_token_id": 2,
        }

    def tensors(self, shape: ModelShape, layers: int) -> list[Tensor]:
        h, f, x = shape.hidden, shape.ffn, {**DEFAULTS, **shape.extra}
        nb, ab, mb = x["norm_bias"], x["attention_bias"], x["mlp_bias"]

        def layer(index: int) -> list[Tensor]:
            return [
                *([] if index == 0 else norm("attn_norm", h, "attention", bias=nb)),
                *linear("Wqkv", h, 3 * h, "attention", bias=ab),
                *linear("Wo", h, h, "attention", bias=ab),
                *norm("mlp_norm", h, "ffn", bias=nb),
                *linear("Wi", h, 2 * f, "ffn", bias=mb),
                *linear("Wo", f, h, "ffn", bias=mb),
            ]

        embeddings = [
            Tensor("tok_embeddings", "embedding", shape.vocab, h),
            *norm("norm", h, bias=nb),
        ]
        # The prediction head is pretrained (ModernBertForMaskedLM has it too): backbone.
        pooled = [
            *(
                attrs.evolve(t, head=False)
                for t in linear("dense", h, h, bias=x["classifier_bias"])
            ),
            *norm("norm", h, bias=nb),
        ]
        head = [*norm("final_norm", h, bias=nb), *pooled, *linear("classifier", h, shape.labels)]
        return embeddings + [t for i in range(layers) for t in layer(i)] + head

    def dropout(self, config: Mapping[str, Any]) -> tuple[bool, bool]:
        hidden = config.get("embedding_dropout", 0.0) or config.get("mlp_dropout", 0.0)
        return bool(hidden), bool(config.get("attention_dropout", 0.0))

    def evaluation_per_token(self, shape: ModelShape, setup: TrainingSetup) -> int:
        s, h, f, a = setup.sequence, shape.hidden, shape.ffn, shape.heads
        half, stream = precision_bytes(setup)
        ffn = half * 4 * f + stream * 4 * h
        if setup.attention == "eager":
            attention = a * s * (4 + 2 * half) + half * 5 * h + stream * 4 * h
        else:
            attention = half * 6 * h + stream * 4 * h
        return max(ffn, attention)

    def activations(self, shape: ModelShape, setup: TrainingSetup) -> Activations:
        b, s, h, f, a = setup.batch_size, setup.sequence, shape.hidden, shape.ffn, shape.heads
        x = {**DEFAULTS, **shape.extra}
        tokens = b * s
        lora = setup.adapters
        checkpointing = setup.gradient_checkpointing
        half, stream = precision_bytes(setup)
        norm_bytes = stream * tokens * h + 8 * tokens

        def saved_inputs(block: str) -> int:
            # Wo reads SDPA's output, which SDPA saves: it is laid out as Wo reads it.
            return linear_inputs(
                LINEARS,
                block,
                setup,
                tokens=tokens,
                hidden=h,
                ffn=f,
                saved_elsewhere=lambda module, where: (
                    sdpa and not math and module == "Wo" and where == "attention"
                ),
            )

        # The rotated query and key; SDPA keeps the value as a view of Wqkv's whole output,
        # eager attention's matmul a contiguous copy of it.
        sdpa = setup.attention != "eager"
        math = math_attention(setup)
        mask = mask_bytes(setup, half)
        qkv = (5 if sdpa else 3) * half * tokens * h
        scores = a * s * s * b
        if setup.attention == "eager":
            kernel = scores * 4  # the fp32 softmax
            if setup.attention_dropout:  # dropout reads its cast copy: its mask and output
                kernel += scores * (mask + half)
            elif half != 4:  # the cast copy that the matmul reads
                kernel += scores * half
            attention_working = 2 * scores * half
            attention_forward = scores * half
        elif math:  # CPU SDPA under attention dropout: the math path, in float32
            qkv = 3 * 4 * tokens * h
            kernel = 3 * 4 * scores
            attention_working = 2 * 4 * scores
            attention_forward = 4 * scores
        else:
            kernel = 4 * a * s * b + half * tokens * h
            attention_working = 3 * half * tokens * h
            attention_forward = 0
        attention_mask = mask * tokens * h if setup.attention_dropout else 0  # out_drop's mask
        residual = 2 * stream * tokens * h
        attention = Block(
            saved=norm_bytes + saved_inputs("attention") + qkv + kernel + attention_mask,
            working=attention_working,
            forward=attention_forward + residual,
        )
        mlp_mask = mask * tokens * f if setup.hidden_dropout else 0
        # Wi's 2f output (GeLU reads a view of it) and GeLU's output (f), which the gating
        # product saves; Wo's input, the product, is a Linear input like any other.
        gated = half * tokens * 3 * f
        ffn = Block(
            saved=norm_bytes + saved_inputs("ffn") + gated + mlp_mask,
            working=half * tokens * (h + 2 * f),
            forward=residual,
        )
        grads_below = not lora or checkpointing
        # Layer 0 has no attention LayerNorm; under LoRA without checkpointing its input needs
        # no gradient, so the adapters' dropout there keeps no mask.
        unsaved = norm_bytes
        if lora and not grads_below:
            unsaved += sum(
                adapter_mask_bytes(setup) * tokens * (f if wide else h)
                for module, wide, _ in LINEARS
                if module in setup.lora_targets and setup.lora_dropout
            )
        first = (attrs.evolve(attention, saved=attention.saved - unsaved), ffn)
        kinds = 2 if shape.layers > 1 and x["global_attn_every_n_layers"] > 1 else 1
        rotary = kinds * 2 * s * (h // a) * stream  # cos and sin, per attention kind
        below = rotary
        if grads_below:
            below += norm_bytes
            below += mask_bytes(setup, stream) * tokens * h if setup.hidden_dropout else 0
        cls_view = x["classifier_pooling"] == "cls" and not setup.mixed and grads_below
        above = norm_bytes + (stream * tokens * h if cls_view else 0)
        return Activations(
            below=below,
            first=first,
            attention=attention,
            ffn=ffn,
            layers=shape.layers,
            above=above,
            layer_input=stream * tokens * h,
        )
