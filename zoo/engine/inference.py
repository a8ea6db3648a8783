"""Class probabilities from a finished run's saved transformer: what `zoo predict` needs of
torch, kept here so that zoo/predict.py imports none of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def transformer_probabilities(
    model_dir: Path, texts: list[str], *, max_length: int, batch_size: int, progress: Any
) -> np.ndarray:
    """Class probabilities from a saved transformer (a full model or LoRA adapters)."""
    import torch

    from zoo.engine.loading import load_trained
    from zoo.engine.train import quiet_libraries

    quiet_libraries()
    model, tokenizer = load_trained(model_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    rows = []
    progress.start("predicting", len(texts))
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with torch.no_grad():
            logits = model(**batch).logits.float()
        rows.append(torch.softmax(logits, dim=-1).cpu().numpy())
        progress.advance(len(rows[-1]))
    progress.stop()
    return np.concatenate(rows)
