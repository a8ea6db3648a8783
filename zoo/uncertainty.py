"""How sure a score is: bootstrap intervals over test rows, and the paired bootstrap of the
difference between two models scored on the same rows.

One resample is a draw of the test rows with replacement; every metric is computed on the same
draws. The index matrix (resamples x rows) is drawn once; a metric with a fast path
(`zoo.Metric.from_confusion`) scores all resamples at once from their confusion counts, any
other metric calls its own `compute` once per resample. Intervals are percentile intervals.

With several seeds of one model (each seed's predictions on the same test rows), a resample
draws the seeds with replacement too and averages their scores: the interval then holds both
where the rows and where the seed could have fallen.

The seed of the draws comes from the run's seed (`draws_seed`): the same run gets the same
interval every time, another seed other draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from zoo.metrics import Metric, certain

RESAMPLES = 1000
LEVEL = 0.95
# Mixed into every bootstrap seed, so that the draws are not the run's training draws.
_SALT = 0x5EED_C195


def draws_seed(*seeds: int) -> np.random.SeedSequence:
    """The seed of the bootstrap draws for the run(s) trained with these seeds: stable across
    processes and versions of Python (numpy's SeedSequence of non-negative integers)."""
    return np.random.SeedSequence([_SALT, *(s % 2**63 for s in seeds)])


def resample_indices(rows: int, resamples: int, seed: Any) -> np.ndarray:
    """resamples x rows row indices, each row drawn with replacement (`seed`: a seed or a
    numpy Generator, which then goes on drawing)."""
    return np.random.default_rng(seed).integers(0, rows, size=(resamples, rows))


def confusion_counts(
    references: np.ndarray, predictions: np.ndarray, indices: np.ndarray, classes: int
) -> np.ndarray:
    """resamples x true x predicted counts: one confusion matrix per row of `indices`."""
    codes = references * classes + predictions  # one number per (true, predicted) pair
    cells = classes * classes
    flat = (codes[indices] + cells * np.arange(len(indices))[:, None]).ravel()
    counts = np.bincount(flat, minlength=len(indices) * cells)
    return counts.reshape(len(indices), classes, classes)


def row_draws(indices: np.ndarray, rows: int) -> np.ndarray:
    """resamples x rows: how often each row is drawn in each resample."""
    flat = (indices + rows * np.arange(len(indices))[:, None]).ravel()
    return (
        np.bincount(flat, minlength=len(indices) * rows).reshape(len(indices), rows).astype(float)
    )


def resampled_scores(
    metric: Metric,
    references: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[str],
    indices: np.ndarray,
) -> np.ndarray:
    """The metric on each resample (one score per row of `indices`). Multi-label references
    (rows x labels) have no confusion matrix: their metrics compute each resample."""
    if metric.from_confusion is not None and references.ndim == 1:
        counts = confusion_counts(references, predictions, indices, len(labels))
        return np.asarray(metric.from_confusion(counts), dtype=float)
    if metric.from_draws is not None and references.ndim == 2:
        draws = row_draws(indices, len(references))
        return np.asarray(metric.from_draws(draws, references, predictions), dtype=float)
    labels = list(labels)
    return np.array(
        [
            metric.compute(
                references[draw].tolist(), predictions[draw].tolist(), probabilities[draw], labels
            )
            for draw in indices
        ],
        dtype=float,
    )


def percentile_interval(scores: np.ndarray, level: float = LEVEL) -> list[float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return [float(low), float(high)]


def intervals(
    references: Sequence[int],
    predictions: Sequence[int],
    probabilities: np.ndarray | None,
    labels: Sequence[str],
    metrics: Sequence[Metric],
    *,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> dict[str, list[float]]:
    """Each metric's bootstrap percentile interval over these rows, `{"f1_macro": [low,
    high], ...}` in alphabetical order as metrics.json's scores; {} without rows."""
    refs = np.asarray(references, dtype=int)
    preds = np.asarray(predictions, dtype=int)
    if len(refs) == 0:
        return {}
    if probabilities is None:  # each prediction counts as certain, as summary_scores does
        probabilities = certain(preds, len(labels))
    indices = resample_indices(len(refs), resamples, draws_seed(seed))
    found = {
        m.name: percentile_interval(
            resampled_scores(m, refs, preds, np.asarray(probabilities), labels, indices), level
        )
        for m in metrics
    }
    return dict(sorted(found.items()))


# ---------------------------------------------------------------------------------------------
# Several seeds, and two models on the same rows


@attrs.frozen(kw_only=True)
class Scored:
    """One model's predicted class ids on the test rows, one array per seed (seeds x rows)."""

    predictions: np.ndarray

    @classmethod
    def of(cls, per_seed: Sequence[Sequence[int]]) -> Scored:
        return cls(predictions=np.asarray(per_seed, dtype=int).reshape(len(per_seed), -1))


def _seed_means(
    model: Scored,
    metric: Metric,
    references: np.ndarray,
    labels: Sequence[str],
    rows: np.ndarray,
    seeds: np.ndarray,
) -> np.ndarray:
    """The metric on each resample: its rows drawn by `rows`, the seeds averaged drawn by
    `seeds` (resamples x drawn seeds, indices into the model's seeds)."""
    per_seed = np.stack(
        [
            resampled_scores(metric, references, p, certain(p, len(labels)), labels, rows)
            for p in model.predictions
        ]
    )  # seeds x resamples
    return per_seed[seeds, np.arange(len(rows))[:, None]].mean(axis=1)


def _seed_draws(rng: np.random.Generator, seeds: int, resamples: int) -> np.ndarray:
    if seeds == 1:
        return np.zeros((resamples, 1), dtype=int)
    return rng.integers(0, seeds, size=(resamples, seeds))


def _draws(seed: Any, rows: int, resamples: int, *seeds: int) -> tuple[np.ndarray, list]:
    """Resampled rows, then for each model (with that many seeds) its resampled seeds, all
    from one generator in that order."""
    rng = np.random.default_rng(seed)
    drawn = resample_indices(rows, resamples, rng)
    return drawn, [_seed_draws(rng, count, resamples) for count in seeds]


def seeds_interval(
    model: Scored,
    references: Sequence[int],
    labels: Sequence[str],
    metric: Metric,
    *,
    seed: Any,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> list[float]:
    """The interval of the mean over seeds: rows and seeds both resampled."""
    refs = np.asarray(references, dtype=int)
    rows, (seeds,) = _draws(seed, len(refs), resamples, len(model.predictions))
    return percentile_interval(_seed_means(model, metric, refs, labels, rows, seeds), level)


@attrs.frozen(kw_only=True)
class Paired:
    """A model against the best on the same rows: the difference of the metric (model minus
    best), its bootstrap interval, the two-sided bootstrap p-value of "no difference", and
    whether the interval holds 0 (the data cannot tell the two apart)."""

    diff: float
    ci95: tuple[float, float]
    p_value: float

    @property
    def tied(self) -> bool:
        return self.ci95[0] <= 0 <= self.ci95[1]


def paired_difference(
    model: Scored,
    best: Scored,
    references: Sequence[int],
    labels: Sequence[str],
    metric: Metric,
    *,
    seed: Any,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Paired:
    """The paired bootstrap of metric(model) - metric(best): each resample applies the same
    drawn rows to both models (and draws each model's seeds with replacement); p is twice the
    share of resampled differences on the far side of 0 ((count + 1) / (resamples + 1), so
    never 0), at most 1."""
    refs = np.asarray(references, dtype=int)
    rows, (model_seeds, best_seeds) = _draws(
        seed, len(refs), resamples, len(model.predictions), len(best.predictions)
    )
    diffs = _seed_means(model, metric, refs, labels, rows, model_seeds) - _seed_means(
        best, metric, refs, labels, rows, best_seeds
    )
    everything = np.arange(len(refs))[None, :]
    observed = float(
        _seed_means(model, metric, refs, labels, everything, _all_seeds(model))[0]
        - _seed_means(best, metric, refs, labels, everything, _all_seeds(best))[0]
    )
    low, high = percentile_interval(diffs, level)
    far_side = min(int((diffs <= 0).sum()), int((diffs >= 0).sum()))
    p_value = min(1.0, 2 * (far_side + 1) / (resamples + 1))
    return Paired(diff=observed, ci95=(low, high), p_value=p_value)


def _all_seeds(model: Scored) -> np.ndarray:
    return np.arange(len(model.predictions))[None, :]
