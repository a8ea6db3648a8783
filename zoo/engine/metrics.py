"""The registered metrics as an `evaluate.Metric`, computed offline.

evaluate's hub-hosted metric scripts cannot be fetched without a network, so zoo ships its own
`evaluate.Metric`; the Trainer uses it to pick the best checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate
import numpy as np

from zoo.metrics import BUILTIN_METRICS, Metric, summary_scores


class ClassificationMetrics(evaluate.Metric):
    """Every registered metric (zoo's built-ins unless told otherwise) over integer class ids."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="the registered zoo metrics (scikit-learn for the built-in ones)",
            citation="",
            inputs_description="predictions and references: integer class ids",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(
        self,
        predictions: Sequence[int],
        references: Sequence[int],
        probabilities: np.ndarray | None = None,
        labels: Sequence[str] | None = None,
        metrics: Sequence[Metric] = BUILTIN_METRICS,
    ) -> dict[str, float]:
        return summary_scores(references, predictions, probabilities, labels, metrics=metrics)
