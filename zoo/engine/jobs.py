"""What a training routine receives and returns: plain data, no torch.

zoo's own engine (zoo.engine.train) and a plugin's custom engine (`zoo.CustomEngine`, e.g. the
TF-IDF baseline) take a `TrainJob` and return a `TrainResult`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np

from zoo.data import Splits
from zoo.metrics import BUILTIN_METRICS, Metric, full_report
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
    spec: ModelSpec
    location: str
    revision: str | None
    settings: TrainingConfig  # resolved: every key set (max_steps may be None)
    splits: Splits
    seed: int
    method: str = "full"  # "full", "lora", "qlora" or "zero-shot"
    lora: LoraSettings | None = None
    # A Trainer checkpoint to continue from (`zoo run --resume`).
    resume_from: Path | None = None
    allow_pickle: bool = False
    trust_remote_code: bool = False
    distributed: DistributedSection = DistributedSection()
    # The registered metrics: each split is scored with all of them; settings.metric is one.
    metrics: tuple[Metric, ...] = BUILTIN_METRICS


@attrs.frozen(kw_only=True)
class TrainResult:
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


# What an evaluated split yields: its report, the predicted class ids, the probabilities.
Scored = tuple[dict[str, Any], tuple[int, ...], np.ndarray]
NOT_SCORED: tuple[None, None, None] = (None, None, None)


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def score_split(
    probabilities: np.ndarray,
    gold: tuple[str, ...],
    labels: tuple[str, ...],
    metrics: tuple[Metric, ...] = BUILTIN_METRICS,
) -> Scored:
    """The metrics of one split from the model's class probabilities (rows in file order)."""
    predicted = probabilities.argmax(axis=-1)
    references = [labels.index(label) for label in gold]
    report = full_report(references, predicted.tolist(), labels, probabilities, metrics=metrics)
    return report, tuple(int(p) for p in predicted), probabilities
