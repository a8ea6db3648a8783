"""The built-in model families of the memory estimator, registered through the same hook as a
third-party plugin's."""

from __future__ import annotations

from zoo.hookspecs import hookimpl
from zoo.memory.families.bert import BertFamily
from zoo.memory.families.electra import ElectraFamily
from zoo.memory.families.gpt_neox import GptNeoxFamily
from zoo.memory.families.llama import LlamaFamily
from zoo.memory.families.modernbert import ModernBertFamily
from zoo.memory.families.xlm_roberta import XlmRobertaFamily


@hookimpl
def register_model_families(register):
    for family in (
        BertFamily(),
        XlmRobertaFamily(),
        GptNeoxFamily(),
        ModernBertFamily(),
        ElectraFamily(),
        LlamaFamily(),
    ):
        register(family)
