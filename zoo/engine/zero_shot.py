"""Zero-shot classification with an instruction-tuned causal LM: no training.

Each label's words are scored after the entry's prompt (`zoo.engine.label_scoring`); the prompt
lists the label words in sorted order and every label is scored on its own, so the answer does
not depend on the order labels come in.
"""

from __future__ import annotations

from typing import Any


def run_zero_shot(job: Any, device: Any, precision: str, make_run_dir: Any, progress: Any):
    """Score the validation and test rows; nothing is trained or saved but the prompt."""
    import time

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zoo.engine import device as devices
    from zoo.engine.jobs import NOT_SCORED, TrainResult, score_split, softmax
    from zoo.engine.label_scoring import label_scores
    from zoo.engine.loading import (
        LoadRequest,
        apply_tokenizer_settings,
        model_options,
        weights_format,
    )
    from zoo.rundir import PROMPT

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
    prompt, words = job.prompt_for_labels(), job.answer_words()
    (run_dir / PROMPT).write_text(prompt.template(), encoding="utf-8")

    def evaluate(rows):
        progress.start("zero-shot scoring", len(rows) * len(labels))
        scores = label_scores(
            model,
            tokenizer,
            prompt,
            rows.texts,
            words,
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
