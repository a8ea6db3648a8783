"""Classification metrics with scikit-learn: summary scores, per-class report, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def summary_scores(references: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(references, predictions)),
        "f1_macro": float(f1_score(references, predictions, average="macro", zero_division=0)),
        "f1_weighted": float(
            f1_score(references, predictions, average="weighted", zero_division=0)
        ),
    }


def full_report(
    references: Sequence[int], predictions: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """Summary scores, per-class precision/recall/F1/support and the confusion matrix.

    Every label of the training set gets a row, also one missing from this split (support 0).
    """
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        references, predictions, labels=ids, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(labels)
    }
    matrix = confusion_matrix(references, predictions, labels=ids)
    return {
        **summary_scores(references, predictions),
        "per_class": per_class,
        # rows: true label, columns: predicted label, both in `labels` order
        "confusion_matrix": {"labels": list(labels), "matrix": np.asarray(matrix).tolist()},
    }
