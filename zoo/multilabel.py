"""Several labels per text (`data.label_separator`): label sets, their multi-hot matrices, the
decision thresholds, and a split's report.

A multi-label row's label cell names its labels joined by the separator (`code;web`). The
model gives each label a probability of its own (sigmoid outputs, not a softmax over labels),
and a text gets every label whose probability reaches that label's threshold, or, when none
does, its most probable one (every training row has a label, so no text is left without one).
Thresholds are tuned per label on the validation split (the one that maximises the label's
F1 there) unless the recipe fixes one (`training.threshold`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# training.threshold unset: each label's threshold tuned on the validation split.
TUNED = "tuned"
# Where a label's threshold starts, and what a label without validation rows keeps.
DEFAULT_THRESHOLD = 0.5


def fixed_threshold(setting: str | float | None) -> float | None:
    """training.threshold as one probability for every label; None when it is tuned."""
    return None if setting is None or setting == TUNED else float(setting)


def split_labels(cell: str, separator: str) -> list[str]:
    """A label cell's labels, each without surrounding whitespace, in the cell's order (empty
    parts and repeats left in, for the reader to refuse with their line)."""
    return [part.strip() for part in cell.split(separator)]


def multi_hot(cells: Sequence[str], labels: Sequence[str], separator: str) -> np.ndarray:
    """rows x labels 0/1: which of `labels` each cell names."""
    index = {name: i for i, name in enumerate(labels)}
    matrix = np.zeros((len(cells), len(labels)), dtype=np.int64)
    for row, cell in enumerate(cells):
        for name in split_labels(cell, separator):
            matrix[row, index[name]] = 1
    return matrix


def multi_hot_ids(rows: Sequence[Sequence[int]], width: int) -> np.ndarray:
    """rows x width 0/1 from each row's label ids (what `score_split` predicts)."""
    matrix = np.zeros((len(rows), width), dtype=np.int64)
    for row, ids in enumerate(rows):
        matrix[row, list(ids)] = 1
    return matrix


def sigmoid(scores: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float64)))


def decide(probabilities: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """rows x labels 0/1: the labels whose probability reaches their threshold; a row where
    none does gets its most probable label."""
    chosen = (probabilities >= np.asarray(thresholds)[None, :]).astype(np.int64)
    empty = chosen.sum(axis=1) == 0
    chosen[np.flatnonzero(empty), probabilities[empty].argmax(axis=1)] = 1
    return chosen


def tune_thresholds(probabilities: np.ndarray, references: np.ndarray) -> tuple[float, ...]:
    """Each label's threshold that maximises its F1 on these rows: one of the probabilities
    they have, the highest of equally good ones; DEFAULT_THRESHOLD for a label without
    positive rows."""
    found = []
    for column in range(references.shape[1]):
        truth, scores = references[:, column], probabilities[:, column]
        positives = int(truth.sum())
        if positives == 0:
            found.append(DEFAULT_THRESHOLD)
            continue
        order = np.argsort(-scores, kind="stable")
        ranked, hits = scores[order], truth[order]
        tp = np.cumsum(hits)  # predicting the top k rows of this label
        k = np.arange(1, len(ranked) + 1)
        f1 = 2 * tp / (k + positives)
        # A threshold at ranked[k-1] takes every row with an equal score: only the last of a run
        # of equal scores is a threshold one can choose.
        last = np.append(ranked[1:] != ranked[:-1], True)
        best = int(np.flatnonzero(last)[np.argmax(f1[last])])
        found.append(float(ranked[best]))
    return tuple(found)


def joined(row: np.ndarray, labels: Sequence[str], separator: str) -> str:
    """One row's decided labels as a label cell, in label order."""
    return separator.join(labels[i] for i in np.flatnonzero(row))


def report(
    references: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[str],
    thresholds: Sequence[float],
    metrics: Sequence[Any],
) -> dict[str, Any]:
    """A multi-label split's report: the metrics' scores, the per-label table and the
    thresholds it was decided with (no confusion matrix: a row may have several labels)."""
    from zoo.metrics import THRESHOLDS, per_class_scores

    scores = {
        m.name: float(m.compute(references, predictions, probabilities, list(labels)))
        for m in metrics
    }
    return {
        **dict(sorted(scores.items())),
        "per_class": per_class_scores(references, predictions, labels),
        THRESHOLDS: dict(zip(labels, map(float, thresholds), strict=True)),
    }
