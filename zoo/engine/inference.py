"""Class probabilities from a finished run's saved transformer: what `zoo predict` needs of
torch, kept here so that zoo/predict.py imports none of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def transformer_probabilities(
    model_dir: Path,
    texts: list[str],
    *,
    max_length: int,
    truncation: str,
    batch_size: int,
    progress: Any,
) -> np.ndarray:
    """Class probabilities from a saved transformer (a full model or LoRA adapters), each
    text cut to `max_length` as in training (`truncation`)."""
    import torch

    from zoo.engine.loading import load_trained
    from zoo.engine.train import quiet_libraries
    from zoo.engine.truncation import TEXT_TOKENS, encode

    quiet_libraries()
    model, tokenizer = load_trained(model_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    rows = []
    progress.start("predicting", len(texts))
    for start in range(0, len(texts), batch_size):
        encoded = encode(
            tokenizer, texts[start : start + batch_size], max_length=max_length, strategy=truncation
        )
        del encoded[TEXT_TOKENS]
        batch = tokenizer.pad(encoded, padding=True, return_tensors="pt").to(device)
        with torch.no_grad():
            logits = model(**batch).logits.float()
        rows.append(torch.softmax(logits, dim=-1).cpu().numpy())
        progress.advance(len(rows[-1]))
    progress.stop()
    return np.concatenate(rows)
