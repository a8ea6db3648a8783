"""What a training routine receives and returns: plain data, no torch.

zoo's own engine (zoo.engine.train) and a plugin's custom engine (`zoo.CustomEngine`, e.g. the
TF-IDF baseline) take a `TrainJob` and return a `TrainResult`; `score_split` turns a split's
class probabilities into the report that `metrics.json` holds. All of them are public:
``zoo.TrainJob``, ``zoo.TrainResult``, ``zoo.score_split``, ``zoo.NOT_SCORED``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np

from zoo.data import Splits
from zoo.engine.device import DeviceInfo
from zoo.errors import ZooError
from zoo.events import RunEvents
from zoo.metrics import BUILTIN_METRICS, Metric, full_report
from zoo.prompts import DEFAULT_PROMPT, DEFAULT_SHOTS, Prompt, answer_words
from zoo.recipe import DistributedSection, LoraSettings, TrainingConfig
from zoo.spec import ModelSpec


class Progress(Protocol):
    """Where the engine reports progress; zoo.report.RichProgress draws it."""

    def start(self, description: str, total: int) -> None: ...
    def advance(self, steps: int = 1) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


@attrs.frozen(kw_only=True)
class TrainJob:
    """One model to train: its spec and weights, the resolved settings, the data, the seed."""

    spec: ModelSpec
    location: str
    revision: str | None
    settings: TrainingConfig  # resolved: every key set (max_steps may be None)
    splits: Splits
    seed: int
    method: str = "full"  # zoo.spec.METHODS
    lora: LoraSettings | None = None
    head: str = "classifier"  # zoo.spec.HEADS
    # A decoder's prompt template ({text} once; zoo.prompts), the recipe's or its plugin's, and
    # the recipe's label_words: read by head = "label-words", zero-shot and few-shot.
    prompt: str = DEFAULT_PROMPT
    label_words: Mapping[str, str] | None = None
    shots: int = DEFAULT_SHOTS  # few-shot: training examples per class in the prompt
    # A Trainer checkpoint to continue from (`zoo run --resume`).
    resume_from: Path | None = None
    allow_pickle: bool = False
    trust_remote_code: bool = False
    distributed: DistributedSection = DistributedSection()
    # The device the device probes found (hook register_device_probes); None: probe it.
    device: DeviceInfo | None = None
    # Report each evaluation during training here: events.evaluated(step=, epoch=, metrics=).
    events: RunEvents = RunEvents()

    def class_weights(self) -> np.ndarray | None:
        """The loss weight of each class id from training.class_weights (None without it);
        a list of weights that does not match the labels is an error. Multi-label: each
        label's weight of its positive rows (binary cross-entropy's pos_weight)."""
        splits = self.splits
        if splits.separator is not None:
            return positive_weight_vector(
                self.settings.class_weights, splits.labels, splits.multi_hot(splits.train)
            )
        return class_weight_vector(self.settings.class_weights, splits.labels, splits.train.labels)

    @property
    def multi_label(self) -> bool:
        return self.splits.separator is not None

    def answer_words(self) -> list[str]:
        """Each label's words, in label order (label_words, else the label's name)."""
        return answer_words(self.splits.labels, self.label_words)

    def prompt_for_labels(self) -> Prompt:
        """The prompt, `{labels}` filled in with the label words."""
        return Prompt.from_template(self.prompt, self.answer_words())

    def thresholds(self, validation_probabilities: np.ndarray) -> tuple[float, ...] | None:
        """Multi-label: each label's decision threshold, tuned on the validation split's
        probabilities (rows in file order) or as training.threshold fixes it; None for
        single-label data."""
        from zoo.multilabel import fixed_threshold, tune_thresholds

        if not self.multi_label:
            return None
        fixed = fixed_threshold(self.settings.threshold)
        if fixed is not None:
            return (fixed,) * len(self.splits.labels)
        references = self.splits.multi_hot(self.splits.validation)
        return tune_thresholds(np.asarray(validation_probabilities), references)

    # The registered metrics: each split is scored with all of them; settings.metric is one.
    metrics: tuple[Metric, ...] = BUILTIN_METRICS


@attrs.frozen(kw_only=True)
class TrainResult:
    """What a training routine produced; the runner writes metrics.json, predictions.csv and
    run.json from it. Build it with `TrainResult.scored`."""

    validation: dict[str, Any]
    test: dict[str, Any] | None
    test_predictions: tuple[int, ...] | None
    test_probabilities: np.ndarray | None
    log_history: list[dict[str, Any]]
    parameters: int
    trainable_parameters: int
    train_seconds: float
    peak_memory_bytes: int
    peak_memory_kind: str
    device: str
    precision: str
    # How long each split's texts were in tokens ("train", "validation", "test": texts, median,
    # p95, longest, cut, max_length), where the engine tokenizes; run.json keeps it.
    text_tokens: Mapping[str, Any] = attrs.field(factory=dict)
    # Multi-label: each label's decision threshold (label order), which zoo predict applies.
    thresholds: tuple[float, ...] | None = None
    # few-shot: the examples per class asked for and those its prompt holds (run.json keeps it).
    shots: Mapping[str, Any] | None = None

    @classmethod
    def scored(cls, validation: Scored, test: Scored | tuple[None, None, None], **facts: Any):
        """A result from the scored validation and test splits and the run's facts."""
        return cls(
            validation=validation[0],
            test=test[0],
            test_predictions=test[1],
            test_probabilities=test[2],
            **facts,
        )


# What an evaluated split yields: its report, the predicted class ids (multi-label: each row's
# tuple of label ids), the probabilities.
Scored = tuple[dict[str, Any], tuple[Any, ...], np.ndarray]
NOT_SCORED: tuple[None, None, None] = (None, None, None)


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def score_split(
    probabilities: np.ndarray,
    gold: tuple[str, ...],
    labels: tuple[str, ...],
    metrics: tuple[Metric, ...] = BUILTIN_METRICS,
    *,
    separator: str | None = None,
    thresholds: tuple[float, ...] | None = None,
) -> Scored:
    """The metrics of one split from the model's class probabilities (rows in file order).

    Multi-label (`separator`, the data's label separator): `probabilities` are each label's
    own, `gold` the label cells, and a row gets the labels whose probability reaches their
    `thresholds` (`TrainJob.thresholds`; zoo.multilabel.decide)."""
    if separator is not None:
        from zoo import multilabel

        assert thresholds is not None, "multi-label scores need the labels' thresholds"
        references = multilabel.multi_hot(gold, labels, separator)
        decided = multilabel.decide(probabilities, thresholds)
        report = multilabel.report(references, decided, probabilities, labels, thresholds, metrics)
        return report, tuple(tuple(np.flatnonzero(row).tolist()) for row in decided), probabilities
    predicted = probabilities.argmax(axis=-1)
    references = [labels.index(label) for label in gold]
    report = full_report(references, predicted.tolist(), labels, probabilities, metrics=metrics)
    return report, tuple(int(p) for p in predicted), probabilities


def positive_weight_vector(
    setting: str | tuple[float, ...] | None, labels: tuple[str, ...], targets: np.ndarray
) -> np.ndarray | None:
    """Multi-label: the weight of each label's positive rows in its binary cross-entropy.
    'balanced' gives negatives / positives (a rare label's rows count as much as the rest); a
    list gives one weight per label in label order."""
    if setting is None:
        return None
    if setting == "balanced":
        positives = targets.sum(axis=0).astype(float)
        return (len(targets) - positives) / np.maximum(positives, 1)
    return class_weight_vector(setting, labels, ())


def class_weight_vector(
    setting: str | tuple[float, ...] | None, labels: tuple[str, ...], train_labels: tuple[str, ...]
) -> np.ndarray | None:
    """The loss weight of each class id: 'balanced' gives n_rows / (n_classes * rows_of_class),
    as scikit-learn does; a list gives one weight per label in label order."""
    if setting is None:
        return None
    if setting == "balanced":
        counts = np.array([train_labels.count(label) for label in labels], dtype=float)
        return len(train_labels) / (len(labels) * np.maximum(counts, 1))
    if len(setting) != len(labels):
        raise ZooError(
            f"training.class_weights has {len(setting)} numbers, but the data has "
            f"{len(labels)} labels ({', '.join(labels)})",
            hint="give one weight per label, in that order, or use 'balanced'",
        )
    return np.asarray(setting, dtype=float)
