"""training.train_embeddings = false: the estimator counts the frozen word-embedding matrix as
the engine freezes it (no gradient, no optimizer state), and the planner offers it."""

from __future__ import annotations

import json

import pytest

from zoo.cli import main
from zoo.memory.estimate import estimate, parameters
from zoo.memory.plan import suggestions
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape

EXTRA = {"modernbert": {"classifier_pooling": "mean", "global_attn_every_n_layers": 3,
                        "local_attention": 128}}  # fmt: skip


def _shape(family: str) -> ModelShape:
    return ModelShape(family=family, vocab=8000, hidden=256, layers=2, heads=4, ffn=1024,
                      labels=3, extra=EXTRA.get(family, {}))  # fmt: skip


@pytest.mark.parametrize("family", ["bert", "xlm-roberta", "gpt-neox", "modernbert"])
def test_a_frozen_word_embedding_matrix_matches_a_measured_step(family):
    from zoo.memory.measure import build_model, measure_step

    shape = _shape(family)
    model = build_model(shape, attention="sdpa", dtype="fp32")
    words = model.get_input_embeddings().weight
    # The engine freezes the model's input embeddings; the family names the same tensor.
    [frozen] = [t for t in shape.tensors() if t.module == shape.family.word_embeddings]
    assert (frozen.rows, frozen.columns) == tuple(words.shape)
    words.requires_grad_(False)
    measured = measure_step(model, shape, batch=4, sequence=64)
    hidden_dropout, _ = shape.family.dropout(shape.config())
    setup = TrainingSetup(batch_size=4, sequence=64, train_embeddings=False,
                          hidden_dropout=hidden_dropout, attention_dropout=False)  # fmt: skip
    predicted = estimate(shape, setup, context=0)
    trainable = sum(p.tensor.numel * p.bytes_per for p in parameters(shape, setup) if p.trains)
    assert trainable == measured.gradients
    assert predicted.breakdown["optimizer"] == measured.optimizer
    assert predicted.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    step = max(v for phase, v in predicted.phases.items() if phase != "evaluation")
    assert step == pytest.approx(measured.peak, rel=0.10)


def test_freezing_saves_gradient_and_adamw_state_of_the_matrix_alone():
    shape = _shape("bert")
    trained = estimate(shape, TrainingSetup(batch_size=4, sequence=64), context=0)
    frozen = estimate(
        shape, TrainingSetup(batch_size=4, sequence=64, train_embeddings=False), context=0
    )
    matrix = shape.vocab * shape.hidden
    assert trained.trainable - frozen.trainable == matrix
    # fp32 AdamW: 4 bytes of gradient, 8 of state per element (the 12 bytes).
    assert (
        trained.breakdown["optimizer"] - frozen.breakdown["optimizer"] == 8 * matrix + 4
    )  # and its step count
    assert trained.phases["optimizer step"] - frozen.phases["optimizer step"] == 12 * matrix + 4
    assert frozen.breakdown["weights"] == trained.breakdown["weights"]


def test_lora_never_trains_the_embeddings_whatever_the_setting():
    shape = _shape("bert")
    lora = TrainingSetup(method="lora", lora_targets=("query", "value"))
    assert estimate(shape, lora) == estimate(shape, TrainingSetup(
        method="lora", lora_targets=("query", "value"), train_embeddings=False))  # fmt: skip


def test_the_planner_offers_freezing_for_full_fine_tuning_only():
    # e5-small's shape: 96M of its 118M parameters are the word embeddings.
    shape = ModelShape(family="bert", vocab=250_037, hidden=384, layers=12, heads=12,
                       ffn=1536, labels=5)  # fmt: skip
    setup = TrainingSetup(batch_size=16, sequence=128)
    full = estimate(shape, setup)
    singles, best = suggestions(
        shape, setup, full.total - 1, methods=("full", "lora"), cuda=True, context=2**30
    )
    [frozen] = [p for p in singles if p.settings == {"train_embeddings": False}]
    assert frozen.change == "frozen word embeddings"
    # At least its AdamW state (the peak may come before its gradient exists).
    assert frozen.estimate.total < full.total - 8 * 250_037 * 384
    assert best is not None and best.settings == {"train_embeddings": False}
    lora = TrainingSetup(method="lora", lora_targets=("query", "value"), batch_size=16)
    singles, _ = suggestions(shape, lora, 1, methods=("full", "lora"), cuda=True, context=0)
    assert all("train_embeddings" not in p.settings for p in singles)
    already = TrainingSetup(batch_size=16, train_embeddings=False)
    singles, _ = suggestions(shape, already, 1, methods=("full", "lora"), cuda=True, context=0)
    assert all("train_embeddings" not in p.settings for p in singles)


def test_zoo_check_counts_the_setting(capsys):
    def checked(*extra):
        code = main(["check", "recipes/demo.toml", "--gpu", "t4", "--json", *extra])
        assert code == 0
        models = json.loads(capsys.readouterr().out)["models"]
        [e5] = [m for m in models if m["model"] == "e5-small"]
        return e5["estimate_bytes"]

    # The demo's e5-small entry sets train_embeddings itself, which beats [training].
    trained = checked("--set", "models[0].train_embeddings=true")
    frozen = checked("--set", "models[0].train_embeddings=false")
    sparse = checked("--set", "models[0].train_embeddings=sparse")  # a bare word is a string
    assert sparse["optimizer"] == trained["optimizer"]  # the AdamW state stays
    assert trained["optimizer"] - frozen["optimizer"] == 8 * 250_037 * 384 + 4  # + its step
