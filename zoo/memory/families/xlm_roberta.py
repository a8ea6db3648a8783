"""XLM-RoBERTa and RoBERTa (`model_type = "xlm-roberta"` or `"roberta"`, e.g. klue/roberta-base):
BERT's layers, a type vocabulary of 1, positions offset by the padding index (514 rows for 512
tokens), and no pooler: the classification head reads the first token through its own dense
layer and output projection, both fresh. The layers save what BERT's do (see `bert`); with LoRA
and gradient checkpointing the last hidden state stays alive for the head (measured).
"""

from __future__ import annotations

from zoo.memory.families.bert import (
    BertFamily,
    Head,
    embedding_tensors,
    layer_tensors,
    roberta_head,
)
from zoo.memory.shapes import ModelShape, Tensor


class XlmRobertaFamily(BertFamily):
    name = "xlm-roberta"
    model_types = ("xlm-roberta", "roberta")
    head: Head = "first-token"

    def tensors(self, shape: ModelShape, layers: int) -> list[Tensor]:
        h = shape.hidden
        return (
            embedding_tensors(shape, h)
            + layer_tensors(h, shape.ffn) * layers
            + roberta_head(h, shape.labels)
        )
