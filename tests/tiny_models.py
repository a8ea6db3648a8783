"""Tiny random-init models saved as ordinary Hugging Face directories, for CPU tests.

They load through the same code path as real weights (a local directory), so the engine is
tested without any download.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def korean_wordpiece_vocab(texts: Iterable[str], limit: int = 3000) -> list[str]:
    """A WordPiece vocabulary of the characters in `texts`: each as a word start and as '##'."""
    chars: dict[str, int] = {}
    for text in texts:
        for ch in text:
            if not ch.isspace():
                chars[ch] = chars.get(ch, 0) + 1
    common = sorted(chars, key=lambda c: (-chars[c], c))[:limit]
    return SPECIAL + common + ["##" + c for c in common]


def save_tiny_bert(directory: Path, texts: Iterable[str], *, hidden: int = 32) -> Path:
    """A 2-layer BERT with a Korean character WordPiece vocabulary."""
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = korean_wordpiece_vocab(texts)
    # No lower-casing or accent stripping: both decompose Hangul syllables into jamo (NFD).
    tokenizer = BertTokenizer(
        vocab={token: i for i, token in enumerate(vocab)},
        do_lower_case=False,
        strip_accents=False,
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
