"""ELECTRA (`model_type = "electra"`, e.g. monologg/koelectra-base-v3-discriminator): BERT's
layers; embeddings of `embedding_size` (a small discriminator's may be narrower than the hidden
size, then a Linear `embeddings_project` maps them up); no pooler: ElectraClassificationHead
reads the first token through a fresh dense layer (GeLU) and output projection, as RoBERTa's
head does. Dropout 0.1 (hidden and attention) by default.

What it saves is BERT's (see `bert`), with the embeddings' LayerNorm input and dropout mask at
the embedding width, plus the projection's input when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from zoo.memory.activations import Activations
from zoo.memory.families.bert import (
    BertFamily,
    Head,
    embedding_tensors,
    encoder_activations,
    layer_tensors,
    roberta_head,
)
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape, Tensor, linear


def _embedding_size(shape: ModelShape) -> int:
    return shape.extra.get("embedding_size") or shape.hidden


class ElectraFamily(BertFamily):
    name = "electra"
    model_types = ("electra",)
    head: Head = "first-token"

    def shape(self, config: Mapping[str, Any], labels: int) -> ModelShape:
        shape = super().shape(config, labels)
        size = config.get("embedding_size", 128)  # ElectraConfig's default
        return attrs.evolve(shape, extra={"embedding_size": size})

    def config(self, shape: ModelShape) -> dict[str, Any]:
        return {**super().config(shape), "embedding_size": _embedding_size(shape)}

    def tensors(self, shape: ModelShape, layers: int) -> list[Tensor]:
        h, width = shape.hidden, _embedding_size(shape)
        embeddings = embedding_tensors(shape, width)
        if width != h:  # part of the pretrained backbone, not the head
            embeddings += [
                attrs.evolve(t, head=False) for t in linear("embeddings_project", width, h)
            ]
        return embeddings + layer_tensors(h, shape.ffn) * layers + roberta_head(h, shape.labels)

    def activations(self, shape: ModelShape, setup: TrainingSetup) -> Activations:
        return encoder_activations(
            shape, setup, head=self.head, embedding_width=_embedding_size(shape)
        )
