"""Zero-shot classification with an instruction-tuned causal LM: no training.

Each label name is scored by its mean token log-likelihood after a prompt in KoAlpaca's own
format (``### 질문: ...`` / ``### 답변:``). The prompt lists the labels in sorted order and every
label is scored on its own, so the answer does not depend on the order labels are given in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PROMPT = "### 질문: 다음 글은 {labels} 중 어느 분류에 속하나요?\n\n{text}\n\n### 답변: "


def prompt_for(text: str, labels: Sequence[str]) -> str:
    return PROMPT.format(labels=", ".join(sorted(labels)), text=text)


def label_scores(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    max_length: int,
    batch_size: int = 8,
    progress: Any = None,
) -> np.ndarray:
    """Mean log-likelihood of each label's tokens after each text's prompt: [texts, labels]."""
    import torch

    label_ids = [tokenizer(label, add_special_tokens=False)["input_ids"] for label in labels]
    room = max_length - max(len(ids) for ids in label_ids)
    pairs = []  # (prompt ids, label index)
    for text in texts:
        prompt_ids = tokenizer(prompt_for(text, labels), add_special_tokens=False)["input_ids"]
        # Keep the end of the prompt (the answer cue) when the text is too long.
        prompt_ids = prompt_ids[-room:] if len(prompt_ids) > room else prompt_ids
        pairs += [(prompt_ids, j) for j in range(len(labels))]
    scores = np.zeros(len(pairs))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.eval()
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        sequences = [prompt + label_ids[j] for prompt, j in chunk]
        width = max(map(len, sequences))
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, sequence in enumerate(sequences):  # right padding keeps positions as unbatched
            input_ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        with torch.no_grad():
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
        for row, (prompt, j) in enumerate(chunk):
            target = label_ids[j]
            # Token t of the label is predicted at position len(prompt) + t - 1.
            positions = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(target))
            picked = log_probs[row, positions, torch.tensor(target)]
            scores[start + row] = float(picked.mean())
        if progress is not None:
            progress.advance(len(chunk))
    return scores.reshape(len(texts), len(labels))


def run_zero_shot(job: Any, device: Any, precision: str, make_run_dir: Any, progress: Any):
    """Score the validation and test rows; nothing is trained or saved but the prompt."""
    import time

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zoo.engine import device as devices
    from zoo.engine.jobs import NOT_SCORED, TrainResult, score_split, softmax
    from zoo.engine.loading import (
        LoadRequest,
        apply_tokenizer_settings,
        model_options,
        weights_format,
    )

    options: dict[str, Any] = {"revision": job.revision} if job.revision else {}
    if job.trust_remote_code:
        options["trust_remote_code"] = True
    request = LoadRequest(
        spec=job.spec,
        location=job.location,
        revision=job.revision,
        labels=job.splits.labels,
        tokenizer=job.spec.tokenizer,
        allow_pickle=job.allow_pickle,
        # Inference only: 16-bit on a GPU, float32 on a CPU (unless the recipe asks for bf16).
        dtype=devices.weights_dtype("zero-shot", precision, device.kind),
        attention=job.settings.attention,
    )
    tokenizer = AutoTokenizer.from_pretrained(job.location, **options)
    apply_tokenizer_settings(tokenizer, job.spec.tokenizer)
    model = AutoModelForCausalLM.from_pretrained(
        job.location, **options, **weights_format(request), **model_options(request)
    )
    model.to("cuda" if device.kind == "cuda" else "cpu")
    run_dir = make_run_dir()
    labels = job.splits.labels
    (run_dir / "prompt.txt").write_text(prompt_for("{text}", labels), encoding="utf-8")

    def evaluate(rows):
        progress.start("zero-shot scoring", len(rows) * len(labels))
        scores = label_scores(
            model,
            tokenizer,
            rows.texts,
            labels,
            max_length=job.settings.max_length,
            batch_size=job.settings.eval_batch_size or 2 * job.settings.batch_size,
            progress=progress,
        )
        progress.stop()
        return score_split(softmax(scores), rows.labels, labels, job.metrics)

    with devices.PeakMemory(device) as peak:
        started = time.perf_counter()
        validation = evaluate(job.splits.validation)
        test = evaluate(job.splits.test) if job.splits.test else NOT_SCORED
        seconds = time.perf_counter() - started
    return run_dir, TrainResult.scored(
        validation,
        test,
        log_history=[],
        parameters=sum(p.numel() for p in model.parameters()),
        trainable_parameters=0,
        train_seconds=seconds,
        peak_memory_bytes=peak.peak,
        peak_memory_kind=peak.kind,
        device=device.name,
        precision=precision,
    )
