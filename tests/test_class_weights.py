"""Class weights for unbalanced data: weighted cross-entropy, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoo.engine.jobs import class_weight_vector  # noqa: E402
from zoo.engine.train import weighted_loss  # noqa: E402
from zoo.errors import ZooError


def test_balanced_weights_are_inverse_to_class_frequency_as_in_scikit_learn():
    from sklearn.utils.class_weight import compute_class_weight

    train = ("a",) * 6 + ("b",) * 3 + ("c",)
    weights = class_weight_vector("balanced", ("a", "b", "c"), train)
    expected = compute_class_weight("balanced", classes=np.array(["a", "b", "c"]), y=list(train))
    np.testing.assert_allclose(weights, expected)
    np.testing.assert_allclose(weights, [10 / 18, 10 / 9, 10 / 3])


def test_a_list_gives_one_weight_per_label_in_label_order():
    np.testing.assert_allclose(class_weight_vector((1, 2.5), ("x", "y"), ("x", "y")), [1, 2.5])
    assert class_weight_vector(None, ("x", "y"), ("x", "y")) is None


def test_a_list_of_the_wrong_length_names_the_labels():
    with pytest.raises(ZooError) as error:
        class_weight_vector((1.0, 2.0), ("code", "web", "remote"), ("code",))
    assert str(error.value) == (
        "training.class_weights has 2 numbers, but the data has 3 labels (code, web, remote)\n"
        "  hint: give one weight per label, in that order, or use 'balanced'"
    )


def test_the_weighted_loss_matches_a_hand_computation():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    weights = np.array([1.0, 3.0])

    def nll(row, label):
        values = logits[row].tolist()
        return -(values[label] - math.log(sum(math.exp(v) for v in values)))

    by_hand = (1 * nll(0, 0) + 3 * nll(1, 1) + 3 * nll(2, 1)) / (1 + 3 + 3)
    loss = weighted_loss(weights)({"logits": logits}, labels)
    assert float(loss) == pytest.approx(by_hand, rel=1e-6)
    unweighted = torch.nn.functional.cross_entropy(logits, labels)
    assert float(loss) != pytest.approx(float(unweighted))
    # Equal weights give back the plain mean cross-entropy.
    same = weighted_loss(np.array([2.0, 2.0]))({"logits": logits}, labels)
    assert float(same) == pytest.approx(float(unweighted), rel=1e-6)
