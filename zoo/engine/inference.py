"""Class probabilities from a finished run's saved transformer: what `zoo predict` needs of
torch, kept here so that zoo/predict.py imports none of it."""

from __future__ import annotations

from collections.abc import Sequence
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
    chunk_stride: int | None = None,
    pairs: list[str] | None = None,
    multi_label: bool = False,
    labels: Sequence[str] | None = None,
    label_words: bool | None = None,
) -> np.ndarray:
    """Class probabilities from a saved transformer (a full model or LoRA adapters), each
    text (or with `pairs`, each text pair) cut to `max_length` as in training (`truncation`;
    with chunks, the mean of its windows' probabilities, `chunk_stride` tokens shared).

    A label-words model (its saved label words beside it; `labels`: the run's; `label_words`:
    whether run.json says so) scores every label's words after its prompt instead, as its run
    did."""
    import torch

    from zoo.engine import truncation as cuts
    from zoo.engine.label_words import saved_answers
    from zoo.engine.loading import load_trained
    from zoo.engine.train import quiet_libraries

    quiet_libraries()
    if labels is not None:
        answers = saved_answers(model_dir, labels, label_words=label_words)
        if answers is not None:
            return _label_word_probabilities(
                model_dir, answers, texts, max_length, batch_size, progress
            )
    model, tokenizer = load_trained(model_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    specials = cuts.special_tokens(tokenizer)
    paired = cuts.pair_specials(tokenizer) if pairs is not None else None
    stride = cuts.stride_for(max_length, chunk_stride)
    found = []
    progress.start("predicting", len(texts))
    for start in range(0, len(texts), batch_size):
        some = texts[start : start + batch_size]
        if pairs is not None:
            encoded = cuts.encode_pairs(
                tokenizer,
                some,
                pairs[start : start + batch_size],
                max_length=max_length,
                specials=paired,
            )
        else:
            encoded = cuts.encode(
                tokenizer,
                some,
                max_length=max_length,
                strategy=truncation,
                specials=specials,
                stride=stride,
            )
        del encoded[cuts.TEXT_TOKENS]
        text_rows = encoded.pop(cuts.TEXT_ROW)
        rows = []  # a batch of texts may be more windows than a batch: batch_size at a time
        for at in range(0, len(text_rows), batch_size):
            window = {key: values[at : at + batch_size] for key, values in encoded.items()}
            batch = tokenizer.pad(window, padding=True, return_tensors="pt").to(device)
            with torch.no_grad():
                logits = model(**batch).logits.float()
            # multi-label: each label's own probability (training's sigmoid), else a softmax
            outputs = torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)
            rows.append(outputs.cpu().numpy())
        found.append(cuts.per_text(np.concatenate(rows), text_rows, len(some)))
        progress.advance(len(some))
    progress.stop()
    return np.concatenate(found)


def _label_word_probabilities(
    model_dir: Path, answers: Any, texts: list[str], max_length: int, batch_size: int, progress: Any
) -> np.ndarray:
    import torch

    from zoo.engine.label_words import answer_probabilities
    from zoo.engine.loading import load_trained

    model, tokenizer = load_trained(model_dir, causal_lm=True)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    progress.start("predicting", len(texts) * len(answers.words))
    found = answer_probabilities(
        model, tokenizer, answers, texts, max_length=max_length, batch_size=batch_size,
        progress=progress,
    )  # fmt: skip
    progress.stop()
    return found
