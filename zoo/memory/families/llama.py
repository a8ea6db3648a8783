"""Llama (`model_type = "llama"`: Llama 3.2 and the models built on it) and Qwen3
(`"qwen3"`: the same layer with a per-head RMSNorm on queries and keys): pre-RMSNorm decoder
layers, grouped-query attention (`num_key_value_heads` key/value heads of `head_dim`, which
defaults to hidden / heads), a SwiGLU MLP (gate_proj, up_proj, down_proj), rotary embeddings (no
parameters), no biases unless `attention_bias` / `mlp_bias`, and LlamaForSequenceClassification's
score layer (hidden -> labels, no bias) scoring every position (the last real token's score is
picked).

What a layer saves (e element bytes, S the residual stream's, T = b.s tokens, q = heads x
head_dim, k = kv heads x head_dim), read from LlamaDecoderLayer and checked against saved-tensor
measurements (tests/test_memory.py):
- each RMSNorm: its input upcast to fp32 (the stream itself in fp32) and the fp32 1/rms per row,
  and, where its weight trains, the normalised input its weight multiplies (4.T.h + S.T.h);
- q, k, v share one input (e.T.h); Qwen3's q_norm / k_norm save what an RMSNorm saves, per head;
- rotary: the shared cos / sin (e.s.head_dim each, once for the model) and the rotated q and k;
- eager attention: q, the key repeated to every query head (a copy, unless kv heads = heads),
  the fp32 softmax and its cast copy, the repeated value, and the out-projection's input;
- SDPA: q, k and v as they are (a batch without padding runs grouped-query attention inside the
  kernel, no repeat), its output, a fp32 logsumexp per row and head, and the out-projection's
  input (a contiguous copy);
- the MLP: gate and up's shared input, the gate's output (SiLU's input), SiLU's output, up's
  output and their product (down_proj's input): e.T.h + 4e.T.f.
Above the layers: the final RMSNorm and the score layer's input. No dropout by default
(`attention_dropout` 0.0, no hidden dropout); a config's attention dropout is not modelled.
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
    precision_bytes,
)
from zoo.memory.families.base import ModelFamily
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape, Tensor, linear, norm

# (module, input is the FFN width, block). o_proj reads heads x head_dim, which may differ from
# the hidden size (Qwen3: 16 x 128 on a 1,024 hidden size): `_layer_inputs` counts it alone.
LINEARS = (
    ("q_proj", False, "attention"),
    ("k_proj", False, "attention"),
    ("v_proj", False, "attention"),
    ("gate_proj", False, "ffn"),
    ("up_proj", False, "ffn"),
    ("down_proj", True, "ffn"),
)
# The numbers only this family reads, and their defaults when a shape leaves them out.
EXTRA = ("kv_heads", "head_dim", "qk_norm", "attention_bias", "mlp_bias", "model_type")


class LlamaFamily(ModelFamily):
    name = "llama"
    model_types = ("llama", "qwen3")
    word_embeddings = "embed_tokens"
    decoder = True
    lora_targets = ("q_proj", "v_proj")

    def shape(self, config: Mapping[str, Any], labels: int) -> ModelShape:
        base = super().shape(config, labels)
        kind = config.get("model_type", "llama")
        heads = base.heads
        extra = {
            "kv_heads": config.get("num_key_value_heads") or heads,
            "head_dim": config.get("head_dim") or base.hidden // heads,
            "qk_norm": kind == "qwen3",
            "attention_bias": bool(config.get("attention_bias", False)),
            # Qwen3's MLP has no bias whatever the config says.
            "mlp_bias": kind != "qwen3" and bool(config.get("mlp_bias", False)),
            "model_type": kind,
        }
        tied = bool(config.get("tie_word_embeddings", False))
        return attrs.evolve(base, tied_embeddings=tied, extra=extra)

    @staticmethod
    def numbers(shape: ModelShape) -> dict[str, Any]:
        """The shape's own numbers, with Llama's defaults for those it leaves out."""
        extra = shape.extra
        return {
            "kv_heads": extra.get("kv_heads", shape.heads),
            "head_dim": extra.get("head_dim", shape.hidden // shape.heads),
            "qk_norm": bool(extra.get("qk_norm", extra.get("model_type") == "qwen3")),
            "attention_bias": bool(extra.get("attention_bias", False)),
            "mlp_bias": bool(extra.get("mlp_bias", False)),
            "model_type": extra.get("model_type", "qwen3" if extra.get("qk_norm") else "llama"),
        }

    def kv_per_token(self, shape: ModelShape) -> int:
        """Grouped-query attention caches kv_heads x head_dim keys and as many values."""
        n = self.numbers(shape)
        return 2 * n["kv_heads"] * n["head_dim"]

    def attention_kv_per_token(self, shape: ModelShape) -> int:
        """Under a padding mask, transformers' SDPA path repeats each key/value head for its
        query heads (repeat_kv) before the kernel: heads x head_dim keys and values, one layer
        at a time (measured on label scoring's left-padded prompts)."""
        return 2 * shape.heads * self.numbers(shape)["head_dim"]

    def config(self, shape: ModelShape) -> dict[str, Any]:
        n = self.numbers(shape)
        config = {
            **super().config(shape),
            "model_type": n["model_type"],
            "num_key_value_heads": n["kv_heads"],
            "head_dim": n["head_dim"],
            "attention_bias": n["attention_bias"],
            "tie_word_embeddings": shape.tied_embeddings,
        }
        if n["model_type"] == "llama":
            config["mlp_bias"] = n["mlp_bias"]
        return config

    def tensors(self, shape: ModelShape, layers: int) -> list[Tensor]:
        h, f = shape.hidden, shape.ffn
        n = self.numbers(shape)
        d = n["head_dim"]
        q, kv = shape.heads * d, n["kv_heads"] * d
        bias, mlp_bias = n["attention_bias"], n["mlp_bias"]
        qk_norm = [*norm("q_norm", d, "attention", bias=False),
                   *norm("k_norm", d, "attention", bias=False)] if n["qk_norm"] else []  # fmt: skip
        layer = [
            *norm("input_layernorm", h, "attention", bias=False),
            *linear("q_proj", h, q, "attention", bias=bias),
            *linear("k_proj", h, kv, "attention", bias=bias),
            *linear("v_proj", h, kv, "attention", bias=bias),
            *linear("o_proj", q, h, "attention", bias=bias),
            *qk_norm,
            *norm("post_attention_layernorm", h, "ffn", bias=False),
            *linear("gate_proj", h, f, "ffn", bias=mlp_bias),
            *linear("up_proj", h, f, "ffn", bias=mlp_bias),
            *linear("down_proj", f, h, "ffn", bias=mlp_bias),
        ]
        outside = [
            Tensor("embed_tokens", "embedding", shape.vocab, h),
            *norm("norm", h, bias=False),
            *linear("score", h, shape.labels, bias=False),
        ]
        return outside + layer * layers

    def dropout(self, config: Mapping[str, Any]) -> tuple[bool, bool]:
        # Llama and Qwen3 have no hidden dropout at all; attention dropout defaults to 0.0.
        return False, bool(config.get("attention_dropout", 0.0))

    def scored_positions(self, setup: TrainingSetup) -> int:
        return setup.sequence

    def evaluation_per_token(self, shape: ModelShape, setup: TrainingSetup) -> int:
        """Measured: the MLP's wide tensors (five of the FFN's width at their highest point),
        with eager attention's last probabilities (a.s per token) and causal mask still alive;
        or eager attention's own fp32 scores, softmax and cast copy."""
        s, f, a = setup.sequence, shape.ffn, shape.heads
        half, stream = precision_bytes(setup)
        q = a * self.numbers(shape)["head_dim"]
        ffn = half * 5 * f
        attention = half * 6 * q
        mask = 0
        if setup.attention == "eager":
            ffn += a * s * half
            attention = a * s * (4 + 2 * half) + half * 4 * q
            mask = s * stream
        return max(ffn, attention) + mask

    def activations(self, shape: ModelShape, setup: TrainingSetup) -> Activations:
        b, s, h, f, a = setup.batch_size, setup.sequence, shape.hidden, shape.ffn, shape.heads
        n = self.numbers(shape)
        d, g = n["head_dim"], n["kv_heads"]
        tokens = b * s
        q, kv = a * d, g * d
        half, stream = precision_bytes(setup)
        lora, checkpointing = setup.adapters, setup.gradient_checkpointing

        def rms(width: int, rows: int) -> int:
            """What an RMSNorm over `width` saves for `rows` rows."""
            normed = 0 if lora else stream * rows * width  # the input its weight multiplies
            return 4 * rows * width + 4 * rows + normed

        def head_rms(width: int, heads: int) -> int:
            normed = 0 if lora else half * tokens * width
            return 4 * tokens * width + 4 * tokens * heads + normed

        def inputs(block: str) -> int:
            # k_proj and v_proj read q_proj's input, up_proj gate_proj's (one tensor, unless
            # autocast casts it for each of them).
            shared = {"k_proj", "v_proj", "up_proj"} if not setup.mixed else set()
            total = linear_inputs(LINEARS, block, setup, tokens=tokens, hidden=h, ffn=f,
                                  saved_elsewhere=lambda m, _b: m in shared)  # fmt: skip
            # SDPA's output is o_proj's input: the kernel saves it already (`kernel`).
            plain = setup.attention == "eager" or setup.adapters
            if block == "attention" and setup.trains("o_proj") and plain:
                total += _adapter_or_input(setup, tokens, q)
            return total

        def kernel(q_grad: bool, k_grad: bool, v_grad: bool) -> int:
            """What the attention kernel saves, when q, k and v require gradients or not."""
            repeated = g != a
            if setup.attention == "eager":
                key = (half * tokens * (q if repeated else kv)) if q_grad else 0
                query = half * tokens * q if k_grad else 0
                scores = a * s * s * b
                softmax = 4 * scores if (q_grad or k_grad) else 0
                cast = half * scores if v_grad and half != 4 else 0
                value = half * tokens * (q if repeated else kv) if (q_grad or k_grad) else 0
                return key + query + softmax + cast + value
            if not (q_grad or k_grad or v_grad):
                return 0
            # q, k, v, the output and a fp32 logsumexp per row and head.
            return half * tokens * (2 * q + 2 * kv) + 4 * a * s * b

        def qk_norms(q_grad: bool, k_grad: bool) -> int:
            if not n["qk_norm"]:
                return 0
            return (head_rms(q, a) if q_grad else 0) + (head_rms(kv, g) if k_grad else 0)

        if setup.attention == "eager":
            scores = a * s * s * b
            working, alive = 2 * scores * half, scores * half
        else:
            working, alive = 3 * half * tokens * h, 0
        residual = 2 * stream * tokens * h
        attention = Block(
            saved=rms(h, tokens) + inputs("attention") + qk_norms(True, True)
            + kernel(True, True, True),
            working=working,
            forward=alive + residual,
        )  # fmt: skip
        ffn = Block(
            saved=rms(h, tokens) + inputs("ffn") + 3 * half * tokens * f,
            working=half * tokens * (h + 2 * f),
            forward=half * tokens * f + residual,
        )
        first = (attention, ffn)
        if lora and not checkpointing:
            # Layer 0 reads the frozen embeddings: its first RMSNorm saves nothing, the adapters'
            # dropout keeps no mask, and only what an adapter makes requires gradients.
            q_grad, k_grad, v_grad = (setup.trains(m) for m in ("q_proj", "k_proj", "v_proj"))
            masks = sum(
                adapter_mask_bytes(setup) * tokens * width
                for module, width in (("q_proj", h), ("k_proj", h), ("v_proj", h), ("o_proj", q))
                if setup.trains(module) and setup.lora_dropout
            )
            saved = (inputs("attention") - masks + qk_norms(q_grad, k_grad)
                     + kernel(q_grad, k_grad, v_grad))  # fmt: skip
            first_attention = attrs.evolve(attention, saved=saved)
            first_ffn = ffn
            if not any(setup.trains(m) for m in ("q_proj", "k_proj", "v_proj", "o_proj")):
                # Nothing in the attention block trains: the MLP reads a frozen stream too.
                first_ffn = Block(saved=inputs("ffn") - _ffn_masks(setup, tokens, h, f),
                                  working=ffn.working)  # fmt: skip
            first = (first_attention, first_ffn)
        rotary = 2 * half * s * d  # cos and sin, shared by every layer
        final = 4 * tokens * h + 4 * tokens + (0 if lora else stream * tokens * h)
        return Activations(
            below=rotary,
            first=first,
            attention=attention,
            ffn=ffn,
            layers=shape.layers,
            above=final + half * tokens * h,  # the final RMSNorm; the score layer's input
            layer_input=stream * tokens * h,
            mask=b * s * s * stream if setup.attention == "eager" else 0,
        )


def _adapter_or_input(setup: TrainingSetup, tokens: int, width: int) -> int:
    """What a trained Linear of input `width` saves (see `linear_inputs`)."""
    return linear_inputs((("o_proj", False, "attention"),), "attention", setup, tokens=tokens,
                         hidden=width, ffn=width)  # fmt: skip


def _ffn_masks(setup: TrainingSetup, tokens: int, h: int, f: int) -> int:
    return sum(
        adapter_mask_bytes(setup) * tokens * width
        for module, width in (("gate_proj", h), ("up_proj", h), ("down_proj", f))
        if setup.trains(module) and setup.lora_dropout
    )
