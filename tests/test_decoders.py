"""Today's decoders on the Llama memory family: Qwen3 (0.6B, 1.7B) and Llama 3.2 1B.

Exact parameter counts against models built on the meta device and the model cards' figures,
`zoo models` and `zoo check` on them, and each plugin's loader on a tiny random-init model of
its architecture (full fine-tuning and LoRA, and a right-padded batch classified row by row as
each row alone).
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from test_seed_models import meta_count, run, write_recipe
from tiny_models import DEMO_DATA, demo_texts

from zoo.cli import main
from zoo.memory.check import check_entry
from zoo.memory.probe import named_gpu
from zoo.memory.shapes import shape_from_config
from zoo.plugins import get_plugin_manager
from zoo.registry import collect_models

# name: (backbone: what `zoo models` lists, the causal LM's total, the card's total in billions)
# The LM heads are tied to the word embeddings: the causal LM has no more parameters.
COUNTS = {
    "qwen3-0.6b": (596_049_920, 596_049_920, 0.6),
    "qwen3-1.7b": (1_720_574_976, 1_720_574_976, 1.7),
    "llama-3.2-1b": (1_235_814_400, 1_235_814_400, 1.23),
}
ARCHITECTURES = {"qwen3-0.6b": "qwen3", "qwen3-1.7b": "qwen3", "llama-3.2-1b": "llama"}


@pytest.fixture(scope="module")
def registry():
    return collect_models(get_plugin_manager(entry_points=False))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_decoder_sizes_match_the_meta_device_and_the_cards(registry, name):
    backbone, causal, card = COUNTS[name]
    spec = registry.get(name)
    architecture = spec.resources.architecture
    hidden = architecture["hidden_size"]
    assert spec.resources.parameters == backbone == meta_count(architecture, "AutoModel")
    assert meta_count(architecture, "AutoModelForCausalLM") == causal
    with_head = meta_count(architecture, "AutoModelForSequenceClassification", 3)
    assert with_head == backbone + 3 * hidden  # the score layer has no bias
    assert shape_from_config(architecture, 3).parameters() == with_head
    assert causal / 1e9 == pytest.approx(card, rel=0.02)  # the cards round: 0.6B, 1.7B, 1.23B
    shape = shape_from_config(architecture, 3)
    assert shape.tied_embeddings and shape.family.lm_head(shape) == []


def test_qwen3_non_embedding_counts_match_the_cards(registry):
    # The cards: 0.44B and 1.4B parameters without the embeddings.
    for name, expected in (("qwen3-0.6b", 0.44), ("qwen3-1.7b", 1.4)):
        architecture = registry.get(name).resources.architecture
        rest = COUNTS[name][0] - architecture["vocab_size"] * architecture["hidden_size"]
        assert rest / 1e9 == pytest.approx(expected, rel=0.02)


def test_zoo_models_lists_the_decoders_with_exact_counts(capsys, monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "")
    assert main(["models", "--json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    for name, (backbone, _, _) in COUNTS.items():
        assert models[name]["parameters"] == backbone
        assert models[name]["family"] == "llama"
        assert models[name]["methods"] == ["full", "lora", "qlora", "zero-shot", "few-shot"]


RECIPE = """\
[run]
name = "decoders"

[data]
train = "train.csv"
test = "test.csv"

[[models]]
model = "{model}"
method = "{method}"

[training]
batch_size = 4
max_length = 128
"""


@pytest.mark.parametrize("method", ["full", "lora"])
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_zoo_check_estimates_the_decoders_tensor_by_tensor(registry, tmp_path, name, method):
    from zoo.recipe import load_recipe

    for part in ("train.csv", "test.csv"):
        shutil.copy(DEMO_DATA / part, tmp_path / part)
    path = tmp_path / "recipe.toml"
    path.write_text(RECIPE.format(model=name, method=method), encoding="utf-8")
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    check = check_entry(recipe, recipe.models[0], registry, named_gpu("40GiB"))
    assert not check.estimate.approximate and check.fits
    assert check.estimate.family == "llama"
    architecture = registry.get(name).resources.architecture
    assert check.estimate.parameters == COUNTS[name][0] + 2 * architecture["hidden_size"]


# --- loaders on tiny stand-ins --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tiny_models import save_tiny_decoder

    texts = demo_texts()
    return {kind: save_tiny_decoder(tmp_path_factory.mktemp(kind), texts, kind)
            for kind in ("llama", "qwen3")}  # fmt: skip


@pytest.mark.parametrize("method", ["full", "lora"])
@pytest.mark.parametrize("name", ["qwen3-0.6b", "llama-3.2-1b"])
def test_each_decoder_plugin_trains_through_its_checkpoint_override(
    registry, tiny, tmp_path, name, method
):
    for part in ("train.csv", "test.csv"):
        shutil.copy(DEMO_DATA / part, tmp_path / part)
    entry = f'model = "{name}"\nmethod = "{method}"\ncheckpoint = "{tiny[ARCHITECTURES[name]]}"'
    [result], failures = run(write_recipe(tmp_path, entry, max_steps=2), registry)
    assert failures == []
    assert result.status == "ok"
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["registered_model"] == name and record["method"] == method


@pytest.mark.parametrize("name", ["qwen3-0.6b", "llama-3.2-1b"])
def test_a_right_padded_batch_classifies_each_row_as_alone(registry, tiny, name):
    """The loader pads with the end-of-sequence token on the right and tells the model which
    token pads: the score of each row is read at its last real token."""
    from zoo.engine.loading import LoadRequest, load_for_classification

    spec = registry.get(name)
    request = LoadRequest(spec=spec, location=str(tiny[ARCHITECTURES[name]]), revision=None,
                          labels=("a", "b", "c"), tokenizer=spec.tokenizer)  # fmt: skip
    model, tokenizer = load_for_classification(request)
    model.eval()
    assert tokenizer.padding_side == "right"
    assert model.config.pad_token_id == tokenizer.eos_token_id is not None
    texts = demo_texts()[:6]
    one_by_one = []
    for text in texts:
        encoded = tokenizer(text, truncation=True, max_length=48, return_tensors="pt")
        with torch.no_grad():
            one_by_one.append(model(**encoded).logits[0])
    batch = tokenizer(texts, truncation=True, max_length=48, padding=True, return_tensors="pt")
    assert int((batch["attention_mask"] == 0).sum()) > 0, "the batch needs padding"
    with torch.no_grad():
        batched = model(**batch).logits
    torch.testing.assert_close(batched, torch.stack(one_by_one), atol=1e-5, rtol=1e-4)
