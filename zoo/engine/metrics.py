"""Classification metrics computed offline with scikit-learn.

evaluate's hub-hosted metric scripts cannot be fetched without a network, so zoo ships its own
`evaluate.Metric`; the Trainer uses it to pick the best checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate

from zoo.metrics import summary_scores


class ClassificationMetrics(evaluate.Metric):
    """Accuracy, macro-F1 and weighted F1 over integer class ids."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="accuracy, macro-averaged F1 and support-weighted F1 (scikit-learn)",
            citation="",
            inputs_description="predictions and references: integer class ids",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions: Sequence[int], references: Sequence[int]) -> dict[str, float]:
        return summary_scores(references, predictions)
