"""head = "label-words": a decoder fine-tuned to answer each prompt with its label's words.

Each training row is the prompt around its text, then its label's words and the end-of-text
token; the loss is on those answer tokens only (every prompt and padding position is -100), so
the model learns to say the label and then stop: the end-of-text token that pads the batch
is never a target, only the one that ends an answer. The model predicts by scoring every
label's answer after the prompt (`zoo.engine.label_scoring`), never by free generation: each
row gets one label of the data and a probability for every label, and validation, early
stopping, the test split, `zoo predict --proba` and the reports read them as a head's.

The run directory's model is the causal LM (or its LoRA adapter), with `LABEL_WORDS` beside
it: the prompt and the words that `zoo predict` scores with.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from zoo.engine import device as devices
from zoo.engine.arguments import training_arguments
from zoo.engine.jobs import NOT_SCORED, Progress, TrainJob, TrainResult, score_split, softmax
from zoo.engine.label_scoring import answer_ids, label_scores, prompt_ids
from zoo.engine.metrics import ClassificationMetrics
from zoo.errors import RunRefused
from zoo.prompts import Prompt
from zoo.rundir import LABEL_WORDS, RunDirError

IGNORED = -100  # the label of a position the loss skips (transformers' ignore_index)


@attrs.frozen
class Answers:
    """How a run asks and what it scores: the prompt, and each label's words in label order."""

    prompt: Prompt
    words: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        # The prompt's two sides apart: a label word may hold "{text}" itself.
        prompt = {"before": self.prompt.before, "after": self.prompt.after}
        return {"prompt": prompt, "template": self.prompt.template(), "words": list(self.words)}


def training_rows(
    tokenizer: Any,
    answers: Answers,
    texts: Sequence[str],
    label_ids: Sequence[int],
    *,
    max_length: int,
) -> list[dict[str, list[int]]]:
    """Token ids and targets of each row: the prompt (targets -100), then the answer tokens."""
    answer_tokens = answer_ids(tokenizer, answers.words, end=True)
    room = max_length - max(map(len, answer_tokens))
    rows = []
    for text, label in zip(texts, label_ids, strict=True):
        asked = prompt_ids(tokenizer, answers.prompt, text, room)
        answer = answer_tokens[label]
        rows.append({"input_ids": asked + answer, "labels": [IGNORED] * len(asked) + answer})
    return rows


@attrs.frozen
class AnswerCollator:
    """Right-pads a batch: padding is masked out of attention and of the loss."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        labels = torch.full((len(features), width), IGNORED, dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.tensor(f["input_ids"])
            mask[row, :n] = 1
            labels[row, :n] = torch.tensor(f["labels"])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def run_label_words(
    job: TrainJob,
    device: Any,
    precision: str,
    make_run_dir: Callable[[], Path],
    progress: Progress,
) -> tuple[Path, TrainResult]:
    """Fine-tune the decoder on its prompts' answers, then score every label's words on the
    validation and test rows with the best checkpoint; save the model and its answers."""
    from zoo.engine.train import save_model, tensorboard_logging_dir
    from zoo.trackers import TENSORBOARD_DIR

    # zoo.preflight.answer_problems has refused what label words cannot do.
    devices.check_training(job.method, job.settings, device)
    if job.settings.trainer:  # a value TrainingArguments refuses fails before anything loads
        training_arguments(job, device, precision, output_dir="not-made-yet")
    model, tokenizer = load_model(job, device, precision)
    answers = Answers(job.prompt_for_labels(), tuple(job.answer_words()))
    splits, settings = job.splits, job.settings
    ids = {name: i for i, name in enumerate(splits.labels)}

    def rows(split: Any) -> list[dict[str, list[int]]]:
        labels = [ids[label] for label in split.labels]
        return training_rows(
            tokenizer, answers, split.texts, labels, max_length=settings.max_length
        )

    train, validation = rows(splits.train), rows(splits.validation)  # a prompt too long: here
    run_dir = make_run_dir()
    checkpoints = run_dir / "checkpoints"
    args = training_arguments(job, device, precision, output_dir=str(checkpoints))
    scorer = Scorer(job, tokenizer, answers, batch_size=args.per_device_eval_batch_size)
    with tensorboard_logging_dir(run_dir / TENSORBOARD_DIR):
        trainer = build_trainer(job, model, tokenizer, args, train, validation, scorer, progress)
    with devices.PeakMemory(device) as peak:
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(job.resume_from) if job.resume_from else None)
        train_seconds = time.perf_counter() - started
        progress.message("scoring the labels with the best checkpoint")
        scored_validation = scorer.score(trainer.model, splits.validation, progress)
        scored_test = scorer.score(trainer.model, splits.test, progress) if splits.test else None
    words = json.dumps(answers.to_json(), ensure_ascii=False, indent=2) + "\n"
    save_model(trainer, model, run_dir, checkpoints, beside={LABEL_WORDS: words})
    return run_dir, TrainResult.scored(
        scored_validation,
        scored_test if scored_test is not None else NOT_SCORED,
        log_history=list(trainer.state.log_history),
        parameters=sum(p.numel() for p in model.parameters()),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        train_seconds=train_seconds,
        peak_memory_bytes=peak.peak,
        peak_memory_kind=peak.kind,
        device=device.name,
        precision=precision,
    )


def load_model(job: TrainJob, device: Any, precision: str) -> tuple[Any, Any]:
    """The causal LM (with LoRA adapters for 'lora' and 'qlora') and its tokenizer, which must
    have the end-of-text token every answer ends with."""
    from zoo.engine.train import load_model as load

    model, tokenizer, _request = load(job, device, precision, causal_lm=True)
    if tokenizer.eos_token_id is None:
        raise RunRefused(
            f"the tokenizer of {job.spec.name!r} has no end-of-text token, which every label's "
            "answer ends with",
            hint="use the classification head (remove head) for this model",
        )
    return model, tokenizer


def answer_probabilities(
    model: Any,
    tokenizer: Any,
    answers: Answers,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int,
    progress: Any = None,
) -> np.ndarray:
    """Each text's probability of each label: a softmax over the mean log-likelihoods of the
    labels' answers (words, then the end-of-text token) after its prompt. `batch_size` counts
    (prompt, answer) pairs, raised to one row's labels at least."""
    scores = label_scores(
        model,
        tokenizer,
        answers.prompt,
        texts,
        answers.words,
        max_length=max_length,
        end=True,
        batch_size=max(batch_size, len(answers.words)),
        progress=progress,
    )
    return softmax(scores)


@attrs.frozen
class Scorer:
    """Scores every label's answer on a split's texts: the probabilities and the split's
    metrics, as a head's logits would give them."""

    job: TrainJob
    tokenizer: Any
    answers: Answers
    batch_size: int

    def probabilities(self, model: Any, texts: Sequence[str], progress: Any = None) -> np.ndarray:
        return answer_probabilities(
            model,
            self.tokenizer,
            self.answers,
            texts,
            max_length=self.job.settings.max_length,
            batch_size=self.batch_size,
            progress=progress,
        )

    def score(self, model: Any, rows: Any, progress: Any) -> Any:
        labels = self.job.splits.labels
        progress.start("scoring label words", len(rows) * len(labels))
        probabilities = self.probabilities(model, rows.texts, progress)
        progress.stop()
        return score_split(probabilities, rows.labels, labels, self.job.metrics)

    def metrics(self, model: Any) -> dict[str, float]:
        """The validation split's metrics (what early stopping and the best checkpoint read)."""
        splits = self.job.splits
        probabilities = self.probabilities(model, splits.validation.texts)
        ids = {name: i for i, name in enumerate(splits.labels)}
        return ClassificationMetrics().compute(
            predictions=probabilities.argmax(axis=-1),
            references=np.asarray([ids[label] for label in splits.validation.labels]),
            probabilities=probabilities,
            labels=splits.labels,
            metrics=self.job.metrics,
        )


def build_trainer(
    job: TrainJob,
    model: Any,
    tokenizer: Any,
    args: Any,
    train: list[dict[str, list[int]]],
    validation: list[dict[str, list[int]]],
    scorer: Scorer,
    progress: Progress,
) -> Any:
    """zoo's Trainer on the answers' loss, evaluated by scoring the labels (not by the loss of
    the validation answers), with zoo's callbacks."""
    from transformers import PrinterCallback

    from zoo.engine.train import _trainer_class, zoo_callbacks

    class LabelWordsTrainer(_trainer_class()):
        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            metrics = {
                f"{metric_key_prefix}_{name}": value
                for name, value in scorer.metrics(self.model).items()
            }
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(
                self.args, self.state, self.control, metrics
            )
            return metrics

    trainer = LabelWordsTrainer(
        model=model,
        args=args,
        data_collator=AnswerCollator(tokenizer.pad_token_id),
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,
        callbacks=zoo_callbacks(job, progress),
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def saved_answers(
    model_dir: Path, labels: Sequence[str], *, label_words: bool | None = None
) -> Answers | None:
    """The prompt and label words a saved label-words model scores with (None for a model
    with a classification head); a damaged file is refused, never guessed at. `label_words`:
    what the run's run.json says it trained (None: not known), which the file must agree
    with: a causal LM read as a classifier would get a random head."""
    path = model_dir / LABEL_WORDS
    if path.exists() != (label_words if label_words is not None else path.exists()):
        said = "label words" if label_words else "a classification head"
        raise RunDirError(
            f"the run's run.json says it trained {said}, but {path} is "
            f"{'missing' if label_words else 'there'}",
            hint=RESTORE_HINT,
        )
    if not path.exists():
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        prompt, words = found["prompt"], found["words"]
        answers = Answers(Prompt(str(prompt["before"]), str(prompt["after"])), tuple(words))
        ok = all(isinstance(w, str) and w for w in words) and len(words) == len(labels)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(
            f"{path} is not the label words zoo wrote: {exc}", hint=RESTORE_HINT
        ) from None
    if not ok:
        raise RunDirError(
            f"{path} lists {len(words)} label words for the run's {len(labels)} labels",
            hint=RESTORE_HINT,
        )
    return answers


RESTORE_HINT = "zoo run writes it beside the model; restore it from a copy of the run directory"
