"""Model sizes from architecture numbers alone agree with the real `transformers.BertModel`."""

from __future__ import annotations

import pytest
import torch
import transformers

from zoo.resources import bert_parameters


def bert_model_parameters(
    *, vocab, hidden, layers, ffn, positions=512, type_vocab=2, pooler=True, heads=12
) -> int:
    """Parameters of a real BertModel, built on the meta device: no memory, no weights."""
    config = transformers.BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        max_position_embeddings=positions,
        type_vocab_size=type_vocab,
    )
    with torch.device("meta"):
        model = transformers.BertModel(config, add_pooling_layer=pooler)
    return sum(p.numel() for p in model.parameters())


# The sizes in plugins/minilm.py and plugins/e5_small.py.
MINILM = {"vocab": 30_522, "hidden": 384, "layers": 6, "ffn": 1_536}
E5_SMALL = {"vocab": 250_037, "hidden": 384, "layers": 12, "ffn": 1_536}
TINY = {"vocab": 99, "hidden": 32, "layers": 2, "ffn": 37, "positions": 64, "type_vocab": 3}


@pytest.mark.parametrize(
    ("sizes", "pooler"),
    [(MINILM, True), (E5_SMALL, True), (TINY, True), (TINY, False)],
    ids=["minilm", "e5-small", "tiny", "tiny-without-pooler"],
)
def test_bert_parameters_match_a_real_bert_model(sizes, pooler):
    heads = 4 if sizes is TINY else 12
    expected = bert_model_parameters(**sizes, pooler=pooler, heads=heads)
    assert bert_parameters(**sizes, pooler=pooler) == expected


def test_the_builtin_sizes():
    assert bert_parameters(**MINILM) == 22_713_216
    assert bert_parameters(**E5_SMALL) == 117_653_760


def test_the_pooler_is_one_dense_layer():
    assert bert_parameters(**TINY) - bert_parameters(**TINY, pooler=False) == 32 * 32 + 32
