"""Classification metrics: what a metric is (`zoo.Metric`), zoo's built-in ones, and the scores
of a split (summary scores, per-class report, confusion matrix) with scikit-learn.

The built-in metrics register through the same `register_metrics` hook as a plugin's; the
metrics that plugins registered are collected in `zoo.registry.collect_metrics`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from zoo.hookspecs import hookimpl

if TYPE_CHECKING:  # numpy loads with the first score: `import zoo` stays cheap
    import numpy as np

# fn(references, predictions, probabilities, labels) -> float: label indices, predicted
# indices, a rows x labels probability matrix, the label names.
ComputeFn = Callable[[Sequence[int], Sequence[int], "np.ndarray", Sequence[str]], float]

# A metric's name is a JSON key, a CSV column, a `zoo compare --by` value and the Trainer's
# `eval_NAME`: a plain identifier.
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# A split's 95% bootstrap interval of each score (zoo.uncertainty): {"f1_macro": [low, high]}.
INTERVALS = "ci95"
# A multi-label split's decision threshold of each label (zoo.multilabel): {"code": 0.42}.
THRESHOLDS = "thresholds"
# The parts of a split's report that are not scores.
REPORT_TABLES = ("per_class", "confusion_matrix", INTERVALS, THRESHOLDS)
# What a metric scores: one label per text (class ids), or several (multi-hot rows x labels).
SINGLE_LABEL, MULTI_LABEL = "single-label", "multi-label"
# fn(counts) -> scores: the same score from a stack of confusion matrices (resamples x true x
# predicted label counts), one score per matrix, vectorised with numpy.
FromConfusionFn = Callable[["np.ndarray"], "np.ndarray"]
# fn(draws, references, predictions) -> scores: a multi-label score of each resample, given
# how often each row is drawn (resamples x rows) and the rows x labels 0/1 matrices.
FromDrawsFn = Callable[["np.ndarray", "np.ndarray", "np.ndarray"], "np.ndarray"]


def _name(_instance: Any, _attribute: Any, value: str) -> None:
    if not _NAME.match(value) or value in REPORT_TABLES:
        raise ValueError(
            f"a metric name is lower-case letters, digits and '_', starting with a letter, and "
            f"not {' or '.join(REPORT_TABLES)}; got {value!r}"
        )


@attrs.frozen(kw_only=True)
class Metric:
    """A score of a split's predictions, as plugins register it.

    ``compute(references, predictions, probabilities, labels)`` gets the true label indices,
    the predicted indices, the rows x labels probability matrix (numpy) and the label names,
    and returns a float. It runs in the training process: keep heavy imports inside it.

    ``from_confusion`` (optional) is a fast path for the bootstrap intervals (zoo.uncertainty):
    the same score from a stack of confusion matrices at once. A metric that depends on
    anything else (the probabilities, say) has none; the bootstrap then calls ``compute`` once
    per resample.

    ``tasks``: what the metric scores. A multi-label metric's ``compute`` gets rows x labels
    0/1 arrays as references and predictions (scikit-learn's indicator format) and each
    label's own probability; multi-label runs are scored with those metrics alone.
    """

    name: str = attrs.field(validator=_name)
    label: str  # as tables show it: "macro-F1"
    higher_is_better: bool = True
    compute: ComputeFn = attrs.field(eq=False, repr=False)
    from_confusion: FromConfusionFn | None = attrs.field(default=None, eq=False, repr=False)
    tasks: frozenset[str] = attrs.field(default=frozenset({SINGLE_LABEL}), converter=frozenset)
    # The multi-label fast path of the bootstrap, as `from_confusion` is the single-label one.
    from_draws: FromDrawsFn | None = attrs.field(default=None, eq=False, repr=False)

    @tasks.validator
    def _known_tasks(self, _attribute: Any, value: frozenset[str]) -> None:
        if not value or not value <= {SINGLE_LABEL, MULTI_LABEL}:
            raise ValueError(f"a metric's tasks are {SINGLE_LABEL!r} and/or {MULTI_LABEL!r}")


def _accuracy(references, predictions, probabilities, labels) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(references, predictions))


def _subset_accuracy(references, predictions, probabilities, labels) -> float:
    from sklearn.metrics import accuracy_score  # on indicator rows: every label right

    return float(accuracy_score(references, predictions))


def _f1(average: str) -> ComputeFn:
    def f1(references, predictions, probabilities, labels) -> float:
        from sklearn.metrics import f1_score

        return float(f1_score(references, predictions, average=average, zero_division=0))

    return f1


# The fast paths: scikit-learn's scores from confusion counts (tested to agree exactly).
def _accuracy_from_confusion(counts: np.ndarray) -> np.ndarray:
    import numpy as np

    total = counts.sum(axis=(1, 2))
    correct = np.trace(counts, axis1=1, axis2=2)
    return np.divide(correct, total, out=np.zeros(len(counts)), where=total > 0)


def _class_f1(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each class's F1 (2tp / (2tp + fp + fn)), its support, and whether it occurs among the
    references or the predictions (the classes scikit-learn averages over)."""
    import numpy as np

    tp = np.diagonal(counts, axis1=1, axis2=2).astype(float)
    support = counts.sum(axis=2)  # true label counts
    predicted = counts.sum(axis=1)
    denominator = support + predicted  # 2tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
    return f1, support, denominator > 0


def _f1_macro_from_confusion(counts: np.ndarray) -> np.ndarray:
    import numpy as np

    f1, _support, present = _class_f1(counts)
    n = present.sum(axis=1)
    return np.divide((f1 * present).sum(axis=1), n, out=np.zeros(len(counts)), where=n > 0)


def _f1_weighted_from_confusion(counts: np.ndarray) -> np.ndarray:
    import numpy as np

    f1, support, _present = _class_f1(counts)
    total = support.sum(axis=1)
    weighted = (f1 * support).sum(axis=1)
    return np.divide(weighted, total, out=np.zeros(len(counts)), where=total > 0)


# The multi-label fast paths: scikit-learn's scores from per-label counts of the drawn rows
# (tested to agree exactly).
def _label_counts(draws, references, predictions):
    """resamples x labels true positives, false positives and false negatives."""
    return (
        draws @ (references * predictions),
        draws @ ((1 - references) * predictions),
        draws @ (references * (1 - predictions)),
    )


def _f1_macro_from_draws(draws, references, predictions):
    import numpy as np

    tp, fp, fn = _label_counts(draws, references, predictions)
    denominator = 2 * tp + fp + fn  # every label counts, 0 where it is nowhere (zero_division)
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
    return f1.mean(axis=1)


def _f1_micro_from_draws(draws, references, predictions):
    import numpy as np

    tp, fp, fn = (c.sum(axis=1) for c in _label_counts(draws, references, predictions))
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)


def _f1_samples_from_draws(draws, references, predictions):
    import numpy as np

    both = (references * predictions).sum(axis=1)
    sizes = references.sum(axis=1) + predictions.sum(axis=1)
    row_f1 = np.divide(2 * both, sizes, out=np.zeros(len(sizes)), where=sizes > 0)
    return draws @ row_f1 / draws.sum(axis=1)


def _subset_accuracy_from_draws(draws, references, predictions):
    exact = (references == predictions).all(axis=1).astype(float)
    return draws @ exact / draws.sum(axis=1)


F1_MACRO = Metric(
    name="f1_macro",
    label="macro-F1",
    compute=_f1("macro"),
    from_confusion=_f1_macro_from_confusion,
    tasks={SINGLE_LABEL, MULTI_LABEL},  # the mean of the classes' (the labels') F1
    from_draws=_f1_macro_from_draws,
)
ACCURACY = Metric(
    name="accuracy", label="accuracy", compute=_accuracy, from_confusion=_accuracy_from_confusion
)
F1_WEIGHTED = Metric(
    name="f1_weighted",
    label="weighted F1",
    compute=_f1("weighted"),
    from_confusion=_f1_weighted_from_confusion,
)
F1_MICRO = Metric(
    name="f1_micro",
    label="micro-F1",
    compute=_f1("micro"),
    tasks={MULTI_LABEL},
    from_draws=_f1_micro_from_draws,
)
F1_SAMPLES = Metric(
    name="f1_samples",
    label="samples-F1",
    compute=_f1("samples"),
    tasks={MULTI_LABEL},
    from_draws=_f1_samples_from_draws,
)
SUBSET_ACCURACY = Metric(
    name="subset_accuracy",
    label="subset accuracy",
    compute=_subset_accuracy,
    tasks={MULTI_LABEL},
    from_draws=_subset_accuracy_from_draws,
)
# In the order the tables show them; every single-label run's metrics.json holds these.
BUILTIN_METRICS = (F1_MACRO, ACCURACY, F1_WEIGHTED)
# Every multi-label run's (data.label_separator) metrics.json holds these.
MULTI_LABEL_METRICS = (F1_MACRO, F1_MICRO, F1_SAMPLES, SUBSET_ACCURACY)
# What picks the best checkpoint unless a recipe says otherwise, and what `zoo compare` sorts by.
DEFAULT_METRIC = F1_MACRO.name


@hookimpl
def register_metrics(register: Callable[..., None]) -> None:
    for metric in dict.fromkeys((*BUILTIN_METRICS, *MULTI_LABEL_METRICS)):
        register(metric)


def for_task(metrics: Sequence[Metric], multi_label: bool) -> tuple[Metric, ...]:
    """The metrics that score a single-label or a multi-label run."""
    task = MULTI_LABEL if multi_label else SINGLE_LABEL
    return tuple(m for m in metrics if task in m.tasks)


def shown(metrics: Sequence[Metric], scores: Sequence[Mapping[str, Any]]) -> tuple[Metric, ...]:
    """The metrics a table of these runs' scores shows: those that any of them has (a
    multi-label run has no accuracy, a single-label one no micro-F1); the single-label ones
    when none has a score."""
    found = tuple(m for m in metrics if any(s.get(m.name) is not None for s in scores))
    return found or for_task(metrics, multi_label=False)


def named(metrics: Sequence[Metric], name: str) -> Metric:
    """The metric called `name` among `metrics` (a recipe's metric was checked already)."""
    for metric in metrics:
        if metric.name == name:
            return metric
    raise KeyError(f"no metric {name!r} among {', '.join(m.name for m in metrics)}")


def label_of(name: str, metrics: Sequence[Metric] = BUILTIN_METRICS) -> str:
    """How a table shows a metric; its name when no registered metric has it."""
    return next((m.label for m in metrics if m.name == name), name)


def unknown_metric_hint(name: str, known: Sequence[str]) -> str:
    """What to say about a metric name that no plugin registered."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    guess = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(repr(k) for k in known)
    return f"{guess}registered metrics: {listed}; plugins add more with register_metrics"


def certain(predictions: Sequence[int], width: int) -> np.ndarray:
    """Probabilities that say each prediction is certain (rows x width, one-hot): what a
    score reads where no probabilities were kept."""
    import numpy as np

    matrix = np.zeros((len(predictions), width))
    matrix[np.arange(len(predictions)), np.asarray(predictions, dtype=int)] = 1.0
    return matrix


def summary_scores(
    references: Sequence[int],
    predictions: Sequence[int],
    probabilities: np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    *,
    metrics: Sequence[Metric] = BUILTIN_METRICS,
) -> dict[str, float]:
    """Each metric's score, keyed by name in alphabetical order (metrics.json's order).

    Without probabilities, each prediction counts as certain; without label names, the labels
    are the class ids.
    """
    if labels is None:
        labels = [str(i) for i in range(max([*references, *predictions], default=-1) + 1)]
    if probabilities is None:
        probabilities = certain(predictions, len(labels))
    references, predictions, labels = list(references), list(predictions), list(labels)
    scores = {
        m.name: float(m.compute(references, predictions, probabilities, labels)) for m in metrics
    }
    return dict(sorted(scores.items()))


def scores_of(report: dict[str, Any]) -> dict[str, float]:
    """A split report's scores, without its per-class table, confusion matrix and intervals."""
    return {key: value for key, value in report.items() if key not in REPORT_TABLES}


def per_class_scores(references: Any, predictions: Any, labels: Sequence[str]) -> dict:
    """Each class's precision, recall, F1 and support, by label name: from class ids, or from
    multi-label rows x labels 0/1 (support: the rows that carry the label)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        references, predictions, labels=list(range(len(labels))), average=None, zero_division=0
    )
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(labels)
    }


def full_report(
    references: Sequence[int],
    predictions: Sequence[int],
    labels: Sequence[str],
    probabilities: np.ndarray | None = None,
    *,
    metrics: Sequence[Metric] = BUILTIN_METRICS,
) -> dict[str, Any]:
    """Summary scores, per-class precision/recall/F1/support and the confusion matrix.

    Every label of the training set gets a row, also one missing from this split (support 0).
    """
    import numpy as np
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(references, predictions, labels=list(range(len(labels))))
    return {
        **summary_scores(references, predictions, probabilities, labels, metrics=metrics),
        "per_class": per_class_scores(references, predictions, labels),
        # rows: true label, columns: predicted label, both in `labels` order
        "confusion_matrix": {"labels": list(labels), "matrix": np.asarray(matrix).tolist()},
    }
