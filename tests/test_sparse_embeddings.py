"""training.train_embeddings = "sparse": the word embedding gives sparse gradients, LazyAdamW
updates only the rows a batch used, the gradient norm is torch's over them, the recipe and the
preflight say what it takes, and the estimator counts it (the engine's runs with it:
test_training_options.py)."""

from __future__ import annotations

import pytest
import torch

from zoo.engine.sparse_embeddings import LazyAdamW, clip_grad_norm, make_sparse
from zoo.memory.estimate import estimate
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape


def _pair(sparse: bool):
    torch.manual_seed(0)
    return torch.nn.Embedding(10, 4, sparse=sparse), torch.nn.Linear(4, 1)


def _backward(embedding, linear, ids):
    (linear(embedding(torch.tensor([ids]))) ** 2).sum().backward()


def test_every_row_used_at_every_step_is_exactly_adamw_with_clipping():
    dense, sparse = _pair(False), _pair(True)
    params = [list(dense[0].parameters()) + list(dense[1].parameters()),
              list(sparse[0].parameters()) + list(sparse[1].parameters())]  # fmt: skip
    adamw = torch.optim.AdamW(params[0], lr=0.1, weight_decay=0.01)
    lazy = LazyAdamW(params[1], lr=0.1, weight_decay=0.01)
    ids = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 3]  # repeated rows: summed once coalesced
    for _ in range(5):
        for (embedding, linear), optimizer in ((dense, adamw), (sparse, lazy)):
            optimizer.zero_grad()
            _backward(embedding, linear, ids)
        assert sparse[0].weight.grad.is_sparse
        expected = torch.nn.utils.clip_grad_norm_(params[0], 0.5)
        assert clip_grad_norm(params[1], 0.5) == pytest.approx(float(expected), rel=1e-6)
        adamw.step()
        lazy.step()
        torch.testing.assert_close(sparse[0].weight, dense[0].weight)
        torch.testing.assert_close(sparse[1].weight, dense[1].weight)


def test_rows_a_batch_does_not_use_keep_their_values_and_moments():
    embedding, linear = _pair(True)
    lazy = LazyAdamW([*embedding.parameters(), *linear.parameters()], lr=0.1, weight_decay=0.1)
    for ids in ([0, 1, 2], [1, 2]):
        before = embedding.weight.detach().clone()
        state = {k: v.clone() for k, v in lazy.state[embedding.weight].items()}
        lazy.zero_grad()
        _backward(embedding, linear, ids)
        lazy.step()
        moved = (embedding.weight != before).any(dim=1).nonzero().flatten().tolist()
        assert moved == ids
        if state:  # the second step: row 0's moments are as the first step left them
            for key in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(lazy.state[embedding.weight][key][0], state[key][0])
    # Dense parameters take AdamW's own step (the Linear moved), and the state saves and loads.
    copy = LazyAdamW([*embedding.parameters(), *linear.parameters()], lr=0.1)
    copy.load_state_dict(lazy.state_dict())
    assert float(copy.state[embedding.weight]["step"]) == 2


def test_the_norm_without_clipping_leaves_the_gradients_alone():
    embedding, linear = _pair(True)
    _backward(embedding, linear, [4, 4, 5])
    params = [*embedding.parameters(), *linear.parameters()]
    before = [p.grad.to_dense().clone() for p in params]
    norm = clip_grad_norm(params, float("inf"))
    dense = torch.cat([g.flatten() for g in before])
    assert float(norm) == pytest.approx(float(torch.linalg.vector_norm(dense)), rel=1e-6)
    for p, g in zip(params, before, strict=True):
        torch.testing.assert_close(p.grad.to_dense(), g)


def test_make_sparse_refuses_an_input_embedding_that_is_not_an_embedding():
    class Odd(torch.nn.Module):
        def get_input_embeddings(self):
            return torch.nn.Linear(2, 2)

    from zoo.errors import ZooError

    with pytest.raises(ZooError, match="needs the model's word embedding to be a torch"):
        make_sparse(Odd())


# --- the recipe and the preflight --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"Sparse"', "got string 'Sparse' (did you mean 'sparse'?)"),
        ("1", "got integer 1"),
    ],
)
def test_the_recipe_takes_true_false_or_sparse(tmp_path, capsys, value, problem):
    from zoo.cli import main

    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[run]\nname = "r"\n[data]\ntrain = "train.csv"\n[[models]]\nmodel = "minilm"\n'
        f"[training]\ntrain_embeddings = {value}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(recipe)]) == 2
    message = "training.train_embeddings: must be true, false or 'sparse', "
    assert message + problem in capsys.readouterr().err


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"optimizer": "adafactor"}, "needs optimizer = 'adamw', not 'adafactor'"),
        ({"torch_compile": True}, "is not combined with torch_compile"),
        ({"world_size": 2}, "trains in one process"),
    ],
)
def test_preflight_refuses_what_sparse_cannot_train_with(tmp_path, settings, says, monkeypatch):
    from zoo.plugins import get_plugin_manager
    from zoo.preflight import sparse_embedding_problems
    from zoo.recipe import ModelEntry, recipe_from_raw, settings_for
    from zoo.registry import collect_models

    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    if "world_size" in settings:  # a process of `zoo run --nproc 2`, as torchrun sets it
        monkeypatch.setenv("WORLD_SIZE", str(settings["world_size"]))
        settings = {}
    registry = collect_models(get_plugin_manager())
    raw = {
        "run": {"name": "r"},
        "data": {"train": "train.csv"},
        "models": [{"model": "e5-small"}],
        "training": {"train_embeddings": "sparse", **settings},
    }
    recipe = recipe_from_raw(raw, "test", tmp_path, model_names=registry.names())
    [entry] = recipe.models
    spec = registry.spec_for(recipe, entry)
    [problem] = sparse_embedding_problems(recipe, 0, entry, settings_for(recipe, entry, spec))
    assert problem.path == "training.train_embeddings"
    assert says in problem.message
    lora = ModelEntry(model="e5-small", method="lora")
    assert sparse_embedding_problems(recipe, 0, lora, settings_for(recipe, lora, spec)) == []


# --- the estimator ----------------------------------------------------------------------------


def test_the_estimate_keeps_adamw_state_and_drops_the_dense_gradient():
    shape = ModelShape(family="bert", vocab=8000, hidden=256, layers=2, heads=4, ffn=1024,
                       labels=3)  # fmt: skip
    trained, sparse = (
        estimate(
            shape, TrainingSetup(batch_size=4, sequence=64, train_embeddings=value), context=0
        )  # fmt: skip
        for value in (True, "sparse")
    )
    assert sparse.trainable == trained.trainable
    assert sparse.breakdown["optimizer"] == trained.breakdown["optimizer"]
    matrix, tokens = 8000 * 256, 4 * 64
    step = trained.phases["optimizer step"] - sparse.phases["optimizer step"]
    # No dense gradient; a row and an index per token, then its coalesced copy and the step's
    # five row-sized temporaries.
    assert step == 4 * matrix - 2 * tokens * (4 * 256 + 8) - 5 * tokens * 256 * 4


def test_the_estimate_counts_what_a_measured_sparse_step_holds():
    from zoo.memory.estimate import parameters, sparse_gradients
    from zoo.memory.measure import build_model

    shape = ModelShape(family="bert", vocab=8000, hidden=256, layers=2, heads=4, ffn=1024,
                       labels=3)  # fmt: skip
    model = build_model(shape, attention="sdpa", dtype="fp32")
    make_sparse(model)
    optimizer = LazyAdamW(model.parameters(), lr=1e-3)
    torch.manual_seed(0)
    batch = {"input_ids": torch.randint(0, 8000, (4, 64)), "labels": torch.tensor([0, 1, 2, 0])}
    model(**batch).loss.backward()
    words = model.get_input_embeddings().weight
    dense = sum(p.grad.nbytes for p in model.parameters() if p is not words)
    held = words.grad._indices().nbytes + words.grad._values().nbytes  # uncoalesced
    optimizer.step()
    state = sum(t.nbytes for s in optimizer.state.values() for t in s.values())

    setup = TrainingSetup(batch_size=4, sequence=64, train_embeddings="sparse")
    trainable = [p for p in parameters(shape, setup) if p.trains]
    assert sum(p.tensor.numel * p.bytes_per for p in trainable if not p.sparse) == dense
    assert sparse_gradients(setup, trainable)[0] == held  # a row and an index per token
    assert estimate(shape, setup, context=0).breakdown["optimizer"] == state
