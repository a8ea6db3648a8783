"""Model families of the memory estimator: the `register_model_families` hook, the built-in
families' parameter counts against models built on the meta device, the refusal of an
architecture that no family claims (and `--rough`), and the three models on the new families
(mmBERT, KoELECTRA, KLUE RoBERTa) through their plugins."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from tiny_models import DEMO_DATA, demo_texts

import zoo
from zoo.cli import main
from zoo.errors import PluginError, UnknownArchitecture
from zoo.memory.check import check_entry
from zoo.memory.families.bert import encoder_activations
from zoo.memory.probe import named_gpu
from zoo.memory.shapes import ModelShape, Tensor, linear, norm, shape_from_config
from zoo.plugins import get_plugin_manager
from zoo.recipe import load_recipe
from zoo.registry import collect_models

# --- a third-party family, as the README shows it ------------------------------------------------


class DistilBertFamily(zoo.ModelFamily):
    """DistilBERT: BERT's layers without token types; a fresh pre_classifier and classifier."""

    name = "distilbert"
    model_types = ("distilbert",)

    def shape(self, config, labels):
        # DistilBERT names its numbers its own way.
        return super().shape(
            {
                "hidden_size": config["dim"],
                "num_hidden_layers": config["n_layers"],
                "num_attention_heads": config["n_heads"],
                "intermediate_size": config["hidden_dim"],
                "vocab_size": config["vocab_size"],
                "max_position_embeddings": config.get("max_position_embeddings", 512),
            },
            labels,
        )

    def tensors(self, shape, layers):
        h, f = shape.hidden, shape.ffn
        layer = [
            *linear("q_lin", h, h, "attention"),
            *linear("k_lin", h, h, "attention"),
            *linear("v_lin", h, h, "attention"),
            *linear("out_lin", h, h, "attention"),
            *norm("sa_layer_norm", h, "attention"),
            *linear("lin1", h, f, "ffn"),
            *linear("lin2", f, h, "ffn"),
            *norm("output_layer_norm", h, "ffn"),
        ]
        embeddings = [
            Tensor("word_embeddings", "embedding", shape.vocab, h),
            Tensor("position_embeddings", "embedding", shape.positions, h),
            *norm("LayerNorm", h),
        ]
        head = [*linear("pre_classifier", h, h), *linear("classifier", h, shape.labels)]
        return embeddings + layer * layers + head

    def activations(self, shape, setup):
        # BERT's layer rules; the head reads hidden[:, 0], a view, as BERT's pooler does.
        return encoder_activations(shape, setup, head="pooler")

    def dropout(self, config):
        return bool(config.get("dropout", 0.1)), bool(config.get("attention_dropout", 0.1))


class DistilBertPlugin:
    @zoo.hookimpl
    def register_model_families(self, register):
        register(DistilBertFamily())

    @zoo.hookimpl
    def register_models(self, register):
        register(
            zoo.ModelSpec(
                name="distilbert-ml",
                description="DistilBERT multilingual",
                source=zoo.HubSource(repo_id="distilbert/distilbert-base-multilingual-cased"),
                family="distilbert",
                resources=zoo.Resources(architecture=DISTILBERT),
            )
        )


DISTILBERT = {"model_type": "distilbert", "vocab_size": 119_547, "dim": 768, "n_layers": 6,
              "n_heads": 12, "hidden_dim": 3_072, "max_position_embeddings": 512}  # fmt: skip

RECIPE = """\
[run]
name = "families"

[data]
train = "train.csv"
test = "test.csv"

[[models]]
model = "{model}"

[training]
batch_size = 8
max_length = 128
"""


def _recipe(tmp_path: Path, registry, model: str):
    for name in ("train.csv", "test.csv"):
        shutil.copy(DEMO_DATA / name, tmp_path / name)
    path = tmp_path / "recipe.toml"
    path.write_text(RECIPE.format(model=model), encoding="utf-8")
    return load_recipe(path, model_names=registry.names(), model_methods=registry.methods())


def meta_count(architecture, labels: int = 3) -> int:
    config = transformers.AutoConfig.for_model(**dict(architecture))
    config.num_labels = labels
    with torch.device("meta"):
        model = transformers.AutoModelForSequenceClassification.from_config(config)
    return sum(p.numel() for p in model.parameters())


def test_hook_register_model_families(pm, tmp_path):
    pm.register(DistilBertPlugin(), name="distilbert-plugin")
    registry = collect_models(pm)
    assert registry.families.claim("distilbert") == DistilBertFamily()
    spec = registry.get("distilbert-ml")
    # The family counts the spec's parameters, exactly as transformers builds the model.
    assert spec.resources.parameters == meta_count(DISTILBERT) - (768 * 768 + 768 + 768 * 3 + 3)
    recipe = _recipe(tmp_path, registry, "distilbert-ml")
    check = check_entry(recipe, recipe.models[0], registry, named_gpu("40GiB"))
    assert check.estimate is not None and not check.estimate.approximate
    assert check.estimate.parameters == meta_count(DISTILBERT, labels=2)
    assert check.fits


def test_an_architecture_no_family_claims_is_refused_and_names_the_hook(pm, tmp_path):
    class OnlyTheModel(DistilBertPlugin):
        register_model_families = None  # the model, without its family

    pm.register(OnlyTheModel(), name="no-family")
    registry = collect_models(pm)
    recipe = _recipe(tmp_path, registry, "distilbert-ml")
    with pytest.raises(UnknownArchitecture) as caught:
        check_entry(recipe, recipe.models[0], registry, named_gpu("40GiB"))
    assert caught.value.exit_code == 6
    assert str(caught.value).startswith(
        "'distilbert-ml': the memory estimator has no model family for model_type 'distilbert'"
    )
    assert "register_model_families" in caught.value.hint and "--rough" in caught.value.hint
    rough = check_entry(recipe, recipe.models[0], registry, named_gpu("40GiB"), rough=True)
    assert rough.estimate.approximate


def test_zoo_check_refuses_an_unknown_architecture_unless_rough(tmp_path, capsys):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(DISTILBERT), encoding="utf-8")
    recipe = tmp_path / "recipe.toml"
    _recipe(tmp_path, collect_models(get_plugin_manager(entry_points=False)), "minilm")
    recipe.write_text(
        RECIPE.format(model="minilm").replace('"minilm"', '"minilm"\ncheckpoint = "ckpt"'),
        encoding="utf-8",
    )
    assert main(["check", str(recipe), "--gpu-memory", "40GiB"]) == 6
    err = capsys.readouterr().err
    assert "no model family for model_type 'distilbert'" in err
    assert "register_model_families" in err and "Traceback" not in err
    assert main(["check", str(recipe), "--gpu-memory", "40GiB", "--rough", "--json"]) == 0
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["approximate"] is True


def test_a_family_claiming_a_claimed_model_type_is_a_plugin_error(pm):
    class Again:
        @zoo.hookimpl
        def register_model_families(self, register):
            register(DistilBertFamily())

    pm.register(DistilBertPlugin(), name="first")
    pm.register(Again(), name="second")
    with pytest.raises(PluginError) as caught:
        collect_models(pm)
    assert str(caught.value).startswith(
        "model_type 'distilbert' is claimed twice: by family 'distilbert' of plugin 'first' "
        "and by family 'distilbert' of plugin 'second'"
    )


# --- the built-in families and the three new models ----------------------------------------------


@pytest.fixture(scope="module")
def registry():
    return collect_models(get_plugin_manager(entry_points=False))


@pytest.mark.parametrize(
    ("name", "with_3_labels", "backbone"),
    [
        # mmBERT-base: the card's 306,939,648 encoder + the pretrained head (dense, LayerNorm).
        ("mmbert-base", 307_532_547, 306_939_648 + 768 * 768 + 768),
        ("koelectra-base", 112_923_651, 112_330_752),
        ("klue-roberta-base", 110_620_419, 110_027_520),
    ],
)
def test_new_models_have_exact_parameter_counts(registry, name, with_3_labels, backbone):
    spec = registry.get(name)
    assert meta_count(spec.resources.architecture) == with_3_labels
    assert spec.resources.parameters == backbone
    assert shape_from_config(spec.resources.architecture, 3).parameters() == with_3_labels


def test_electra_with_a_narrow_embedding_counts_its_projection():
    small = {"model_type": "electra", "vocab_size": 35_000, "embedding_size": 128,
             "hidden_size": 256, "num_hidden_layers": 12, "num_attention_heads": 4,
             "intermediate_size": 1_024, "max_position_embeddings": 512}  # fmt: skip
    assert shape_from_config(small, 3).parameters() == meta_count(small)


def test_zoo_models_lists_the_new_models_with_exact_counts(capsys, monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "")
    assert main(["models", "--json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert models["mmbert-base"]["parameters"] == 307_530_240
    assert models["koelectra-base"]["parameters"] == 112_330_752
    assert models["klue-roberta-base"]["parameters"] == 110_027_520
    assert models["mmbert-base"]["family"] == "modernbert"


@pytest.mark.parametrize("name", ["mmbert-base", "koelectra-base", "klue-roberta-base"])
def test_zoo_check_estimates_the_new_models_tensor_by_tensor(registry, tmp_path, name):
    recipe = _recipe(tmp_path, registry, name)
    check = check_entry(recipe, recipe.models[0], registry, named_gpu("40GiB"))
    assert not check.estimate.approximate and check.fits
    assert check.estimate.parameters == meta_count(registry.get(name).resources.architecture, 2)


def test_a_shape_reads_its_family_by_name():
    shape = ModelShape(family="modernbert", vocab=100, hidden=32, layers=2, heads=2, ffn=48)
    assert shape.family.name == "modernbert"
    with pytest.raises(ValueError, match="no model family is named 'nope'"):
        ModelShape(family="nope", vocab=100, hidden=32, layers=2, heads=2, ffn=48)


# --- loaders on tiny stand-ins --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "model_type"),
    [("mmbert-base", "modernbert"), ("koelectra-base", "electra"),
     ("klue-roberta-base", "roberta")],
)  # fmt: skip
def test_each_new_plugin_trains_through_its_checkpoint_override(
    registry, tmp_path, model, model_type
):
    from test_seed_models import run, write_recipe
    from tiny_models import save_tiny_encoder

    tiny = save_tiny_encoder(tmp_path / "tiny", demo_texts(), model_type)
    for name in ("train.csv", "test.csv"):
        shutil.copy(DEMO_DATA / name, tmp_path / name)
    entry = f'model = "{model}"\ncheckpoint = "{tiny}"'
    [result], failures = run(write_recipe(tmp_path, entry, max_steps=2), registry)
    assert failures == []
    assert result.status == "ok"
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["registered_model"] == model
