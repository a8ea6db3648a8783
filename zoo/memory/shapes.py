"""A model's shape, and every parameter tensor it has, from its architecture numbers alone.

The inventory lists the tensors of the model as zoo fine-tunes it
(`AutoModelForSequenceClassification` with a fresh head), so that weights, gradients and
optimizer state can be counted exactly, and LoRA targets, the largest Linear layer and the
Linear weights that autocast copies can be found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

Family = Literal["bert", "xlm-roberta", "gpt-neox", "generic"]
Kind = Literal["linear", "bias", "embedding", "norm"]
Block = Literal["attention", "ffn", "other"]


@attrs.frozen
class Tensor:
    """One parameter tensor: `module` is the name of the module that owns it (what LoRA's
    target_modules match), `block` the part of a transformer layer it belongs to, `head` marks
    the classification head."""

    module: str
    kind: Kind
    rows: int
    columns: int = 1
    block: Block = "other"
    head: bool = False

    @property
    def numel(self) -> int:
        return self.rows * self.columns


def _linear(
    module: str, inputs: int, outputs: int, block: Block = "other", *, bias: bool = True
) -> list[Tensor]:
    head = block == "other"
    weight = Tensor(module, "linear", outputs, inputs, block, head=head)
    return [weight, Tensor(module, "bias", outputs, 1, block, head=head)] if bias else [weight]


def _norm(module: str, hidden: int, block: Block = "other") -> list[Tensor]:
    return [Tensor(module, "norm", hidden, 1, block), Tensor(module, "norm", hidden, 1, block)]


@attrs.frozen(kw_only=True)
class ModelShape:
    family: Family
    vocab: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    labels: int = 2
    positions: int = 512
    type_vocab: int = 2
    rotary_pct: float = 0.25
    # True when the family is not one zoo models tensor by tensor: the estimate is a rough one.
    approximate: bool = False

    def config(self) -> dict[str, Any]:
        """Keyword arguments for `transformers.AutoConfig.for_model`."""
        common = {
            "vocab_size": self.vocab,
            "hidden_size": self.hidden,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "intermediate_size": self.ffn,
            "max_position_embeddings": self.positions,
        }
        if self.family == "gpt-neox":
            return {
                "model_type": "gpt_neox",
                **common,
                "rotary_pct": self.rotary_pct,
                "tie_word_embeddings": False,
            }
        model_type = "xlm-roberta" if self.family == "xlm-roberta" else "bert"
        return {"model_type": model_type, **common, "type_vocab_size": self.type_vocab}

    def tensors(self, layers: int | None = None) -> list[Tensor]:
        """Every parameter tensor (with `layers`, of a model with that many layers)."""
        h, f = self.hidden, self.ffn
        count = self.layers if layers is None else layers
        if self.family == "gpt-neox":
            layer = [
                *_norm("input_layernorm", h, "attention"),
                *_linear("query_key_value", h, 3 * h, "attention"),
                *_linear("dense", h, h, "attention"),
                *_norm("post_attention_layernorm", h, "ffn"),
                *_linear("dense_h_to_4h", h, f, "ffn"),
                *_linear("dense_4h_to_h", f, h, "ffn"),
            ]
            outside = [
                Tensor("embed_in", "embedding", self.vocab, h),
                *_norm("final_layer_norm", h),
                *_linear("score", h, self.labels, bias=False),
            ]
            return outside + layer * count
        layer = [
            *_linear("query", h, h, "attention"),
            *_linear("key", h, h, "attention"),
            *_linear("value", h, h, "attention"),
            *_linear("dense", h, h, "attention"),
            *_norm("LayerNorm", h, "attention"),
            *_linear("dense", h, f, "ffn"),
            *_linear("dense", f, h, "ffn"),
            *_norm("LayerNorm", h, "ffn"),
        ]
        embeddings = [
            Tensor("word_embeddings", "embedding", self.vocab, h),
            Tensor("position_embeddings", "embedding", self.positions, h),
            Tensor("token_type_embeddings", "embedding", self.type_vocab, h),
            *_norm("LayerNorm", h),
        ]
        if self.family == "xlm-roberta":  # the head reads the first token through its own dense
            head = [*_linear("dense", h, h), *_linear("out_proj", h, self.labels)]
        else:  # BERT: pooler (part of the frozen backbone under LoRA), then a linear classifier
            pooler = [attrs.evolve(t, head=False) for t in _linear("dense", h, h)]
            head = [*pooler, *_linear("classifier", h, self.labels)]
        return embeddings + layer * count + head

    def parameters(self) -> int:
        return sum(t.numel for t in self.tensors())


def shape_from_config(config: Mapping[str, Any], labels: int) -> ModelShape:
    """The shape of a model from its transformers config dictionary; other architectures get a
    BERT-like stand-in of the same size, flagged as approximate."""
    kind = config.get("model_type")
    family = {"bert": "bert", "xlm-roberta": "xlm-roberta", "gpt_neox": "gpt-neox"}.get(kind)
    hidden = config.get("hidden_size") or config.get("d_model") or config.get("n_embd")
    layers = config.get("num_hidden_layers") or config.get("n_layer") or config.get("num_layers")
    heads = config.get("num_attention_heads") or config.get("n_head") or 1
    if not hidden or not layers:
        raise ValueError(f"cannot read hidden size and layers from a {kind!r} config")
    return ModelShape(
        family=family or "generic",
        vocab=config.get("vocab_size", 32_000),
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=config.get("intermediate_size") or config.get("n_inner") or 4 * hidden,
        labels=labels,
        positions=config.get("max_position_embeddings", 512),
        type_vocab=config.get("type_vocab_size", 2),
        rotary_pct=config.get("rotary_pct", 0.25),
        approximate=family is None,
    )
