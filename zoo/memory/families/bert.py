"""BERT (`model_type = "bert"`): BertForSequenceClassification, post-LayerNorm layers, a pooler
read by a linear classifier. Also the layer rules that XLM-R and ELECTRA share with it, and the
BERT-like stand-in behind a rough estimate.

What a layer saves (e = element bytes, s sequence, b batch, h hidden, f FFN, a heads), checked
against saved-tensor measurements within +0.04% to +0.15%: both LayerNorms' inputs (2e.sbh and
their fp32 statistics), the QKV input and q, k, v (4e.sbh; key and value share the query's input
unless autocast casts it), the out-projection's input, the FFN's FC1 input, GeLU input and FC2
input (e.sbh + 2e.sbf), and 1-byte dropout masks (2.sbh at p = 0.1). Eager attention saves the
softmax output, its dropout mask and output (a.s^2.b.(e + 1 + e)); SDPA a float32 logsumexp per
row and head (4.a.s.b) and its output. The pooler's `hidden[:, 0]` is a view that keeps the whole
last hidden state alive.

On a CPU (measured at e5-small's and MiniLM's shapes): dropout masks are in the tensor's dtype
(4 bytes in fp32), and SDPA with attention dropout runs the math path: float32 copies of q, k, v
(12.sbh), the softmax, its mask and output (12.a.s^2.b), and the out-projection's own input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

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

# The Linear layers of a BERT layer: (module name as LoRA targets it, input width is the FFN
# width, block). BERT names both FFN layers 'dense', like its attention output.
LINEARS = (
    ("query", False, "attention"),
    ("key", False, "attention"),
    ("value", False, "attention"),
    ("dense", False, "attention"),
    ("dense", False, "ffn"),
    ("dense", True, "ffn"),
)
# What the classification head keeps of the last hidden state: BERT's pooler reads the view
# hidden[:, 0] (the whole state stays alive); RoBERTa-style heads read it through their own
# dense layer; the rough stand-in assumes neither.
Head = Literal["pooler", "first-token", "none"]


def layer_tensors(h: int, f: int) -> list[Tensor]:
    return [
        *linear("query", h, h, "attention"),
        *linear("key", h, h, "attention"),
        *linear("value", h, h, "attention"),
        *linear("dense", h, h, "attention"),
        *norm("LayerNorm", h, "attention"),
        *linear("dense", h, f, "ffn"),
        *linear("dense", f, h, "ffn"),
        *norm("LayerNorm", h, "ffn"),
    ]


def embedding_tensors(shape: ModelShape, width: int) -> list[Tensor]:
    return [
        Tensor("word_embeddings", "embedding", shape.vocab, width),
        Tensor("position_embeddings", "embedding", shape.positions, width),
        Tensor("token_type_embeddings", "embedding", shape.type_vocab, width),
        *norm("LayerNorm", width),
    ]


def roberta_head(h: int, labels: int) -> list[Tensor]:
    """RoBERTa's and ELECTRA's classification head: a dense layer on the first token, then the
    output projection, both fresh."""
    return [*linear("dense", h, h), *linear("out_proj", h, labels)]


def encoder_activations(
    shape: ModelShape, setup: TrainingSetup, *, head: Head, embedding_width: int | None = None
) -> Activations:
    """What a BERT-style encoder saves: the rules of the module docstring, for `head` and
    embeddings of `embedding_width` (ELECTRA: projected to the hidden size when it differs)."""
    b, s, h, f, a = setup.batch_size, setup.sequence, shape.hidden, shape.ffn, shape.heads
    tokens = b * s
    lora = setup.adapters
    checkpointing = setup.gradient_checkpointing
    half, stream = precision_bytes(setup)
    norm_bytes = stream * tokens * h + 8 * tokens  # a LayerNorm's input, its fp32 mean and rstd
    mask = mask_bytes(setup, half)
    hidden_mask = mask * tokens * h if setup.hidden_dropout else 0
    math = math_attention(setup)

    def shared(module: str, block: str) -> bool:
        """The Linear layer's input is saved already, by another op that reads it."""
        if module in {"key", "value"}:  # the same tensor as the query's input, unless cast
            return not setup.mixed
        # The attention output projection reads the fused kernel's output, which it saves.
        return module == "dense" and block == "attention" and setup.attention == "sdpa" and not math

    def saved_inputs(block: str) -> int:
        return linear_inputs(
            LINEARS, block, setup, tokens=tokens, hidden=h, ffn=f, saved_elsewhere=shared
        )

    # --- attention: query, key and value, the attention kernel, the output projection
    qkv = 3 * half * tokens * h
    scores = a * s * s * b
    if setup.attention == "eager":
        if setup.mixed:  # autocast: fp32 softmax and dropout (+ mask), 16-bit copy for matmul
            dropout = 4 + mask_bytes(setup, 4) if setup.attention_dropout else 0
            kernel = scores * (4 + dropout + 2)
        else:
            kernel = scores * (half + ((mask + half) if setup.attention_dropout else 0))
        attention_working = 2 * scores * half
        attention_forward = scores * half  # the raw scores, before the softmax
    elif math:  # CPU SDPA under attention dropout: the math path, in float32
        qkv = 3 * 4 * tokens * h
        kernel = 3 * 4 * scores
        attention_working = 2 * 4 * scores
        attention_forward = 4 * scores
    else:  # fused SDPA: its output and a float32 logsumexp per row and head, no s x s matrix
        kernel = 4 * a * s * b + half * tokens * h
        attention_working = 3 * half * tokens * h
        attention_forward = 0
    residual = 2 * stream * tokens * h  # a block's output and the residual sum
    attention = Block(
        saved=norm_bytes + saved_inputs("attention") + qkv + kernel + hidden_mask,
        working=attention_working,
        forward=attention_forward + residual,
    )
    # --- FFN: FC1, GeLU, FC2; under LoRA, a frozen FC2 does not save the GeLU's output, but it
    # lives until FC2 ran.
    gelu_output = half * tokens * f if lora else 0
    ffn = Block(
        saved=norm_bytes + saved_inputs("ffn") + half * tokens * f + hidden_mask,
        working=half * tokens * (h + f),
        forward=gelu_output + residual,
    )
    first = (attention, ffn)
    grads_below = not lora or checkpointing  # checkpointing makes the embeddings require grad
    if lora and not grads_below:
        # Layer 0 reads the frozen embeddings, which need no gradient: the adapters' dropout
        # there keeps no mask, and an attention matmul keeps only what the trained side needs.
        adapter_mask = adapter_mask_bytes(setup)
        unsaved = sum(
            adapter_mask * tokens * (f if wide else h)
            for module, wide, _ in LINEARS
            if module in setup.lora_targets and setup.lora_dropout
        )
        if setup.attention == "eager" or math:
            # q @ k^T keeps each side for the other's gradient; a frozen side needs none.
            frozen = sum(1 for other in ("key", "query") if not setup.trains(other))
            unsaved += (4 if math else half) * tokens * h * frozen
        first = (attrs.evolve(attention, saved=attention.saved - unsaved), ffn)

    width = embedding_width or h
    below = 0
    if grads_below:
        # The embeddings' LayerNorm and dropout mask, at the embedding width; a projection to
        # the hidden size (ELECTRA) saves its input too.
        embedding_mask = mask_bytes(setup, stream) * tokens * width if hidden_mask else 0
        below = stream * tokens * width + 8 * tokens + embedding_mask
        if width != h:
            below += half * tokens * width
    # BertPooler reads hidden[:, 0], a view that keeps the whole last hidden state alive
    # (autocast instead casts that view to a new, small tensor).
    pooler_view = head == "pooler" and not setup.mixed and (not lora or checkpointing)
    # Measured: with LoRA and checkpointing, XLM-R's last hidden state stays alive too.
    first_token_lora = head == "first-token" and lora and checkpointing
    above = stream * tokens * h if pooler_view or first_token_lora else 0
    return Activations(
        below=below,
        first=first,
        attention=attention,
        ffn=ffn,
        layers=shape.layers,
        above=above,
        layer_input=stream * tokens * h,
    )


class BertFamily(ModelFamily):
    name = "bert"
    model_types = ("bert",)
    head: Head = "pooler"

    def config(self, shape: ModelShape) -> dict[str, Any]:
        return {**super().config(shape), "type_vocab_size": shape.type_vocab}

    def tensors(self, shape: ModelShape, layers: int) -> list[Tensor]:
        h = shape.hidden
        # The pooler is part of the pretrained backbone (frozen under LoRA), then a linear
        # classifier.
        pooler = [attrs.evolve(t, head=False) for t in linear("dense", h, h)]
        head = [*pooler, *linear("classifier", h, shape.labels)]
        return embedding_tensors(shape, h) + layer_tensors(h, shape.ffn) * layers + head

    def activations(self, shape: ModelShape, setup: TrainingSetup) -> Activations:
        return encoder_activations(shape, setup, head=self.head)


class RoughFamily(BertFamily):
    """The BERT-like stand-in of a rough estimate, for an architecture no family claims: a BERT
    of the config's size, without the pooler's view."""

    name = "generic"
    model_types = ()
    head: Head = "none"

    def dropout(self, config: Mapping[str, Any]) -> tuple[bool, bool]:
        return True, True
