"""The scores zoo reports, checked against numbers worked out by hand.

The example is unbalanced on purpose, so that accuracy, macro-F1 and weighted F1 all differ: a
metric computed the wrong way (weighted for macro, predictions and references swapped, the
matrix transposed, a class's row under another class's name) changes a number below.

    labels, in this order: code, web, theory     (not alphabetical: "label order" is theirs)

    confusion matrix (rows: true label, columns: predicted label)
                 code  web  theory   support
        code        5    1       0         6
        web         1    2       0         3
        theory      0    1       1         2
    predicted       6    4       1        11

    code:   precision 5/6, recall 5/6, F1 5/6
    web:    precision 2/4, recall 2/3, F1 2 * (1/2 * 2/3) / (1/2 + 2/3) = 4/7
    theory: precision 1/1, recall 1/2, F1 2 * (1 * 1/2) / (1 + 1/2)     = 2/3

    accuracy    = (5 + 2 + 1) / 11                      = 8/11    = 0.7273
    macro-F1    = (5/6 + 4/7 + 2/3) / 3                 = 29/42   = 0.6905
    weighted F1 = (6 * 5/6 + 3 * 4/7 + 2 * 2/3) / 11    = 169/231 = 0.7316
"""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from zoo.metrics import full_report, summary_scores

LABELS = ("code", "web", "theory")
MATRIX = [[5, 1, 0], [1, 2, 0], [0, 1, 1]]
PER_CLASS = {
    "code": {"precision": F(5, 6), "recall": F(5, 6), "f1": F(5, 6), "support": 6},
    "web": {"precision": F(1, 2), "recall": F(2, 3), "f1": F(4, 7), "support": 3},
    "theory": {"precision": F(1), "recall": F(1, 2), "f1": F(2, 3), "support": 2},
}
ACCURACY, F1_MACRO, F1_WEIGHTED = F(8, 11), F(29, 42), F(169, 231)


def pairs_from_matrix(matrix: list[list[int]]) -> tuple[list[int], list[int]]:
    """References and predictions (class ids) that make exactly this confusion matrix, in an
    order that is neither sorted by reference nor by prediction."""
    pairs = [(t, p) for t, row in enumerate(matrix) for p, n in enumerate(row) for _ in range(n)]
    pairs = pairs[::2] + pairs[1::2]
    return [t for t, _ in pairs], [p for _, p in pairs]


REFERENCES, PREDICTIONS = pairs_from_matrix(MATRIX)


def test_the_worked_example_is_unbalanced_enough_to_tell_the_averages_apart():
    assert len({ACCURACY, F1_MACRO, F1_WEIGHTED}) == 3
    assert sum(c["support"] for c in PER_CLASS.values()) == len(REFERENCES) == 11
    # Swapping references and predictions would keep macro-F1 but weight by predicted counts.
    assert F(6 * 5, 6) + F(4 * 4, 7) + F(1 * 2, 3) != 11 * F1_WEIGHTED


def test_summary_scores_are_accuracy_macro_and_weighted_f1_worked_out_by_hand():
    scores = summary_scores(REFERENCES, PREDICTIONS)
    assert scores == {
        "accuracy": pytest.approx(float(ACCURACY)),
        "f1_macro": pytest.approx(float(F1_MACRO)),
        "f1_weighted": pytest.approx(float(F1_WEIGHTED)),
    }


def test_the_full_report_has_each_class_under_its_own_name():
    report = full_report(REFERENCES, PREDICTIONS, LABELS)
    assert list(report["per_class"]) == list(LABELS)
    for name, expected in PER_CLASS.items():
        got = report["per_class"][name]
        assert got == {
            "precision": pytest.approx(float(expected["precision"])),
            "recall": pytest.approx(float(expected["recall"])),
            "f1": pytest.approx(float(expected["f1"])),
            "support": expected["support"],
        }, name
    assert report["accuracy"] == pytest.approx(float(ACCURACY))
    assert report["f1_macro"] == pytest.approx(float(F1_MACRO))
    assert report["f1_weighted"] == pytest.approx(float(F1_WEIGHTED))


def test_the_confusion_matrix_has_true_labels_as_rows_and_predictions_as_columns():
    report = full_report(REFERENCES, PREDICTIONS, LABELS)
    assert report["confusion_matrix"] == {"labels": list(LABELS), "matrix": MATRIX}
    # The one asymmetric cell: a theory question taken for web, never the other way round.
    theory, web = LABELS.index("theory"), LABELS.index("web")
    assert report["confusion_matrix"]["matrix"][theory][web] == 1
    assert report["confusion_matrix"]["matrix"][web][theory] == 0


def test_a_label_missing_from_the_split_keeps_its_row_and_column_of_zeros():
    labels = (*LABELS, "remote")  # a training label that neither this split nor the model has
    report = full_report(REFERENCES, PREDICTIONS, labels)
    assert report["per_class"]["remote"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert report["confusion_matrix"]["matrix"] == [[*row, 0] for row in MATRIX] + [[0, 0, 0, 0]]
    # scikit-learn's macro average covers the labels that occur (as truth or as prediction):
    # a label that does neither does not pull it down.
    assert report["f1_macro"] == pytest.approx(float(F1_MACRO))


def test_a_class_that_is_never_predicted_scores_zero_and_counts_in_macro_f1():
    # Every theory row predicted as code: theory's F1 is 0 and still one third of macro-F1.
    references = [0, 0, 1, 1, 2, 2]
    predictions = [0, 0, 1, 1, 0, 0]
    report = full_report(references, predictions, LABELS)
    assert report["per_class"]["theory"]["f1"] == 0.0
    # code: precision 2/4, recall 1, F1 2/3; web: 1; theory: 0.
    assert report["f1_macro"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert report["f1_weighted"] == pytest.approx((2 * 2 / 3 + 2 * 1 + 2 * 0) / 6)
    assert report["accuracy"] == pytest.approx(4 / 6)


def test_perfect_and_all_wrong_predictions_score_one_and_zero():
    assert summary_scores([0, 1, 2], [0, 1, 2]) == {
        "accuracy": 1.0,
        "f1_macro": 1.0,
        "f1_weighted": 1.0,
    }
    assert summary_scores([0, 1, 2], [1, 2, 0]) == {
        "accuracy": 0.0,
        "f1_macro": 0.0,
        "f1_weighted": 0.0,
    }


def test_a_split_is_scored_from_probabilities_against_its_gold_label_names():
    from zoo.engine.jobs import score_split

    probabilities = np.full((len(PREDICTIONS), len(LABELS)), 0.1)
    probabilities[np.arange(len(PREDICTIONS)), PREDICTIONS] = 0.8
    gold = tuple(LABELS[t] for t in REFERENCES)
    report, predicted, returned = score_split(probabilities, gold, LABELS)
    assert predicted == tuple(PREDICTIONS)
    assert returned is probabilities
    assert report["confusion_matrix"]["matrix"] == MATRIX
    assert report["f1_macro"] == pytest.approx(float(F1_MACRO))


def test_the_metric_that_picks_the_best_checkpoint_gives_the_same_numbers():
    from zoo.engine.metrics import ClassificationMetrics

    scores = ClassificationMetrics().compute(predictions=PREDICTIONS, references=REFERENCES)
    assert scores == {
        "accuracy": pytest.approx(float(ACCURACY)),
        "f1_macro": pytest.approx(float(F1_MACRO)),
        "f1_weighted": pytest.approx(float(F1_WEIGHTED)),
    }


def test_a_class_without_predictions_scores_zero_without_a_warning(recwarn):
    """scikit-learn warns about the undefined precision of a class that nobody predicted (in
    the middle of zoo's progress display) unless it is told what to put there: 0."""
    full_report([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 0, 0], (*LABELS, "remote"))
    assert [str(w.message) for w in recwarn] == []
