"""Model sizes computed from architecture numbers alone: no torch, no weights.

Each count is the model as zoo fine-tunes it, without the fresh classification head: BERT with
its pooler (BertForSequenceClassification uses it), XLM-R without (its classification head
reads the first token itself), GPT-NeoX without its language-model head. The model families of
the memory estimator (`zoo.memory.families`) own the tensor inventories; these functions count
them, so that `zoo models` and `zoo check` use the same counter. Tests check every count against
the model built on the meta device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.memory.families.base import Families, builtin_families
from zoo.memory.shapes import ModelShape


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
    shape = ModelShape(
        family="bert" if pooler else "xlm-roberta",
        vocab=vocab,
        hidden=hidden,
        layers=layers,
        heads=1,
        ffn=ffn,
        positions=positions,
        type_vocab=type_vocab,
    )
    return shape.backbone_parameters()


def gpt_neox_parameters(
    *, vocab: int, hidden: int, layers: int, ffn: int, lm_head: bool = False
) -> int:
    """Parameters of a GPT-NeoX decoder (`GPTNeoXModel`); `lm_head` adds the untied output
    embedding of `GPTNeoXForCausalLM`. Rotary embeddings have no parameters."""
    shape = ModelShape(family="gpt-neox", vocab=vocab, hidden=hidden, layers=layers, heads=1,
                       ffn=ffn)  # fmt: skip
    return shape.backbone_parameters() + (vocab * hidden if lm_head else 0)


def parameters_from_config(
    config: Mapping[str, Any], families: Families | None = None
) -> int | None:
    """The backbone's parameters from a transformers config dictionary, counted by the family
    that claims its `model_type` (the built-in families when `families` is None); None when no
    family claims it."""
    family = (families or builtin_families()).claim(config.get("model_type"))
    return None if family is None else family.parameters(config)
