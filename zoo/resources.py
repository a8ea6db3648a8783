"""Model sizes computed from architecture numbers alone: no torch, no weights.

Each count is the model as zoo fine-tunes it, without the fresh classification head: BERT with
its pooler (BertForSequenceClassification uses it), XLM-R without (its classification head
reads the first token itself), GPT-NeoX without its language-model head. Tests check every
formula against the model built on the meta device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def bert_parameters(
    *,
    vocab: int,
    hidden: int,
    layers: int,
    ffn: int,
    positions: int = 512,
    type_vocab: int = 2,
    pooler: bool = True,
) -> int:
    """Parameters of a BERT-style encoder (`BertModel`, `XLMRobertaModel`), without a task head."""
    embeddings = (vocab + positions + type_vocab) * hidden + 2 * hidden  # + LayerNorm
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden  # q, k, v, out + LayerNorm
    feed_forward = (hidden * ffn + ffn) + (ffn * hidden + hidden) + 2 * hidden
    pooler_params = hidden * hidden + hidden if pooler else 0
    return embeddings + layers * (attention + feed_forward) + pooler_params


def gpt_neox_parameters(
    *, vocab: int, hidden: int, layers: int, ffn: int, lm_head: bool = False
) -> int:
    """Parameters of a GPT-NeoX decoder (`GPTNeoXModel`); `lm_head` adds the untied output
    embedding of `GPTNeoXForCausalLM`. Rotary embeddings have no parameters."""
    layer = (
        2 * 2 * hidden  # input and post-attention LayerNorms
        + hidden * 3 * hidden
        + 3 * hidden  # fused query/key/value
        + hidden * hidden
        + hidden  # attention output
        + hidden * ffn
        + ffn
        + ffn * hidden
        + hidden  # MLP
    )
    embeddings = vocab * hidden * (2 if lm_head else 1)
    return embeddings + layers * layer + 2 * hidden  # + final LayerNorm


def parameters_from_config(config: Mapping[str, Any]) -> int:
    """The backbone's parameters from a transformers config dictionary (BERT, XLM-R, GPT-NeoX)."""
    kind = config["model_type"]
    sizes = {
        "hidden": config["hidden_size"],
        "layers": config["num_hidden_layers"],
        "ffn": config["intermediate_size"],
        "vocab": config["vocab_size"],
    }
    if kind in {"bert", "xlm-roberta"}:
        return bert_parameters(
            **sizes,
            positions=config["max_position_embeddings"],
            type_vocab=config["type_vocab_size"],
            pooler=kind == "bert",
        )
    if kind == "gpt_neox":
        return gpt_neox_parameters(**sizes)
    raise ValueError(f"no parameter formula for model_type {kind!r}")
