"""Zero-shot and few-shot classification with an instruction-tuned causal LM: no training.

Each label's words are scored after the entry's prompt (`zoo.engine.label_scoring`); the prompt
lists the label words in sorted order and every label is scored on its own, so the answer does
not depend on the order labels come in. Few-shot puts training examples before the prompt
(`zoo.shots`, fitted into max_length by `zoo.engine.few_shot`).
"""

from __future__ import annotations

from typing import Any


def run_zero_shot(job: Any, device: Any, precision: str, make_run_dir: Any, progress: Any):
    """Score the validation and test rows; nothing is trained or saved but the prompt (and
    few-shot's examples)."""
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
    from zoo.files import write_json
    from zoo.rundir import PROMPT, SHOTS

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
        dtype=devices.weights_dtype(job.method, precision, device.kind),
        attention=job.settings.attention,
    )
    tokenizer = AutoTokenizer.from_pretrained(job.location, **options)
    apply_tokenizer_settings(tokenizer, job.spec.tokenizer)
    prompt, words = job.prompt_for_labels(), job.answer_words()
    shots = None
    if job.method == "few-shot":  # refused here, before the model loads, when it cannot fit
        from zoo.engine.few_shot import job_shots, shots_record

        fitted = job_shots(job, tokenizer)
        prompt = fitted.prompt
        shots = shots_record(fitted, job.splits.labels, job.shots, job.settings.max_length)
        for notice in shots["notices"]:
            progress.message(notice)
    model = AutoModelForCausalLM.from_pretrained(
        job.location, **options, **weights_format(request), **model_options(request)
    )
    model.to("cuda" if device.kind == "cuda" else "cpu")
    run_dir = make_run_dir()
    labels = job.splits.labels
    (run_dir / PROMPT).write_text(prompt.template(), encoding="utf-8")
    if shots is not None:
        write_json(run_dir / SHOTS, shots)

    def evaluate(rows):
        progress.start(f"{job.method} scoring", len(rows) * len(labels))
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
        shots=None if shots is None else {k: shots[k] for k in ("shots", "in_prompt")},
    )
