"""Model sizes computed from architecture numbers alone: no torch, no weights."""

from __future__ import annotations


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
    """Parameters of a BERT-style encoder (`BertModel`), without a task head."""
    embeddings = (vocab + positions + type_vocab) * hidden + 2 * hidden  # + LayerNorm
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden  # q, k, v, out + LayerNorm
    feed_forward = (hidden * ffn + ffn) + (ffn * hidden + hidden) + 2 * hidden
    pooler_params = hidden * hidden + hidden if pooler else 0
    return embeddings + layers * (attention + feed_forward) + pooler_params
