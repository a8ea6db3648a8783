"""Any hub model by id (`model = "hub:ORG/NAME"`), without a plugin: the id and the name it
gives runs, its config.json from a checkpoint folder or a fake Hugging Face cache (never a
download), its family and exact parameter count, training it with `zoo run`, estimating it with
`zoo check`, and the errors: a malformed id, no config.json, one that is not JSON, a
`model_type` that no family claims."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from test_families import DISTILBERT
from tiny_models import DEMO_DATA, demo_texts

from zoo.cli import main
from zoo.errors import ModelUnavailableError, RecipeError
from zoo.hub_models import hub_label, hub_spec, repo_id
from zoo.memory.families.base import builtin_families
from zoo.plugins import get_plugin_manager
from zoo.recipe import load_recipe
from zoo.registry import collect_models

ROBERTA_LARGE = {
    "model_type": "roberta",
    "vocab_size": 32_000,
    "hidden_size": 1_024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4_096,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "pad_token_id": 1,
}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, no entry-point plugins, and an empty Hugging Face cache of the test's own."""
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ZOO_PLUGINS", "")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))


@pytest.fixture(scope="module")
def registry():
    return collect_models(get_plugin_manager(entry_points=False))


def cache_config(tmp_path: Path, repo: str, config: dict, revision: str = "0123abcd") -> Path:
    """config.json in the Hugging Face cache's own layout: a snapshot and refs/main."""
    folder = tmp_path / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
    (folder / "snapshots" / revision).mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision, encoding="utf-8")
    path = folder / "snapshots" / revision / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def write_recipe(directory: Path, *entries: str) -> Path:
    for name in ("train.csv", "test.csv"):
        shutil.copy(DEMO_DATA / name, directory / name)
    models = "".join(f"[[models]]\n{entry}\n\n" for entry in entries)
    path = directory / "recipe.toml"
    path.write_text(
        '[run]\nname = "hub"\noutput_dir = "out"\n\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = 0.25\n\n'
        f"{models}[training]\nmax_steps = 2\nbatch_size = 4\nmax_length = 48\n",
        encoding="utf-8",
    )
    return path


def checkpoint_with(directory: Path, config_text: str) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text(config_text, encoding="utf-8")
    return directory


def meta_backbone(config: dict, labels: int = 2) -> int:
    """RoBERTa for sequence classification built on the meta device, less its fresh head."""
    built = transformers.AutoConfig.for_model(**config)
    built.num_labels = labels
    with torch.device("meta"):
        model = transformers.AutoModelForSequenceClassification.from_config(built)
    h = config["hidden_size"]
    return sum(p.numel() for p in model.parameters()) - (h * h + h + h * labels + labels)


# --- the id and the name it gives runs -----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "repo", "label"),
    [
        ("hub:klue/roberta-large", "klue/roberta-large", "roberta-large"),
        ("hub:KLUE/RoBERTa-Base", "KLUE/RoBERTa-Base", "roberta-base"),  # the id as written
        ("hub:org/model_v1.5", "org/model_v1.5", "model_v1.5"),
    ],
)
def test_a_hub_id_keeps_its_repo_id_and_names_runs_by_its_name_lower_cased(model, repo, label):
    assert repo_id(model) == repo
    assert hub_label(model) == label


@pytest.mark.parametrize(
    "model",
    ["hub:", "hub:roberta-large", "hub:a/b/c", "hub:/b", "hub:a/", "hub:a b/c", "hub:a--b/c",
     "hub:a/b.", "hub:-a/b", "hub:한국/모델"],
)  # fmt: skip
def test_a_malformed_hub_id_is_a_recipe_problem_at_its_entry(tmp_path, registry, model):
    path = write_recipe(tmp_path, f'model = "{model}"')
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, model_names=registry.names())
    assert [str(p) for p in caught.value.problems] == [
        f"models[0].model: {model!r} is not a hub model id: write hub:ORG/NAME as "
        "huggingface.co spells it, e.g. 'hub:klue/roberta-large'"
    ]


def test_two_hub_models_with_one_name_are_refused_like_a_model_listed_twice(tmp_path, registry):
    path = write_recipe(
        tmp_path,
        'model = "hub:klue/roberta-large"',
        'model = "hub:other/RoBERTa-Large"',
        'model = "minilm"',
        'model = "hub:someone/minilm"',
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, model_names=registry.names())
    assert [str(p) for p in caught.value.problems] == [
        "models[1]: 'roberta-large' appears twice (first at models[0]); "
        'give each entry its own name = "..."',
        "models[3]: 'minilm' appears twice (first at models[2]); "
        'give each entry its own name = "..."',
    ]


def test_a_hub_model_with_a_name_of_its_own_is_labelled_by_it(tmp_path, registry):
    path = write_recipe(
        tmp_path,
        'model = "hub:klue/roberta-large"',
        'model = "hub:other/roberta-large"\nname = "other-large"',
    )
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    assert [entry.label for entry in recipe.models] == ["roberta-large", "other-large"]
    assert recipe.models[0].model == "hub:klue/roberta-large"


# --- the spec, from config.json ------------------------------------------------------------------


def test_the_config_is_found_in_the_hugging_face_cache(tmp_path):
    cache_config(tmp_path, "KLUE/RoBERTa-Large", ROBERTA_LARGE)
    spec = hub_spec("hub:KLUE/RoBERTa-Large", None, builtin_families())
    assert spec.name == "roberta-large"
    assert spec.source.repo_id == "KLUE/RoBERTa-Large" and spec.source.revision == "main"
    assert spec.family == "xlm-roberta"
    assert spec.resources.architecture == ROBERTA_LARGE
    # 514 positions, offset by RoBERTa's padding index: 512 tokens.
    assert spec.tokenizer.max_length == 512
    assert spec.resources.parameters == meta_backbone(ROBERTA_LARGE)
    assert spec.loader is None  # the standard loader


@pytest.mark.parametrize(
    ("config", "max_length"),
    [
        ({"model_type": "bert", "max_position_embeddings": 2_048}, 512),  # capped
        ({"model_type": "bert", "max_position_embeddings": 128}, 128),
        ({"model_type": "roberta", "max_position_embeddings": 258, "pad_token_id": 1}, 256),
        ({"model_type": "gpt_neox", "max_position_embeddings": 4_096, "rotary_pct": 0.25}, 512),
    ],
)
def test_max_length_is_what_the_positions_hold_at_most_512(tmp_path, config, max_length):
    config = {"hidden_size": 32, "num_hidden_layers": 2, "vocab_size": 100, **config}
    checkpoint = checkpoint_with(tmp_path / "ckpt", json.dumps(config))
    spec = hub_spec("hub:org/model", checkpoint, builtin_families())
    assert spec.tokenizer.max_length == max_length


def test_the_checkpoint_folder_wins_over_the_cache(tmp_path):
    cache_config(tmp_path, "klue/roberta-large", ROBERTA_LARGE)
    small = {**ROBERTA_LARGE, "num_hidden_layers": 2}
    checkpoint = checkpoint_with(tmp_path / "ckpt", json.dumps(small))
    spec = hub_spec("hub:klue/roberta-large", checkpoint, builtin_families())
    assert spec.resources.parameters == meta_backbone(small)


def test_nothing_in_the_cache_and_no_checkpoint_says_where_zoo_looked(tmp_path):
    with pytest.raises(ModelUnavailableError) as caught:
        hub_spec("hub:klue/roberta-large", None, builtin_families(), where="r.toml")
    assert str(caught.value) == (
        "r.toml: model 'hub:klue/roberta-large' has no config.json on this machine (looked in "
        f"the Hugging Face cache ({tmp_path / 'hf' / 'hub'})); zoo never downloads a hub model "
        "by id\n"
        '  hint: set checkpoint = "DIR" in its [[models]] entry to a folder with its config.json '
        "and weights, or download it first on a machine with internet ('hf download "
        "klue/roberta-large') and copy that machine's Hugging Face cache into HF_HOME"
    )


# --- through the command line --------------------------------------------------------------------


def test_zoo_run_trains_a_hub_model_from_its_checkpoint_and_zoo_check_estimates_it(
    tmp_path, capsys
):
    from tiny_models import save_tiny_encoder

    tiny = save_tiny_encoder(tmp_path / "tiny", demo_texts(), "roberta")
    path = write_recipe(tmp_path, f'model = "hub:klue/roberta-large"\ncheckpoint = "{tiny}"')

    assert main(["check", str(path), "--gpu-memory", "40GiB", "--json"]) == 0
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["model"] == "roberta-large" and model["approximate"] is False
    assert model["family"] == "xlm-roberta"
    assert main(["check", str(path), "--gpu-memory", "40GiB"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the caption wraps
    assert "approximate" not in out and "model family xlm-roberta" in out

    assert main(["run", str(path)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [run_dir] = (tmp_path / "out" / "hub").glob("roberta-large-seed42-*")
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "ok"
    assert record["registered_model"] == "roberta-large"
    assert record["plugin"] == "zoo.hub_models"  # no plugin registered it
    config = json.loads((tiny / "config.json").read_text(encoding="utf-8"))
    assert record["parameters"] >= meta_backbone(config)  # the backbone and the fresh head


def test_zoo_check_estimates_a_cached_hub_model_through_its_family(tmp_path, capsys):
    cache_config(tmp_path, "klue/roberta-large", ROBERTA_LARGE)
    path = write_recipe(tmp_path, 'model = "hub:klue/roberta-large"')
    assert main(["check", str(path), "--gpu-memory", "80GiB", "--json"]) == 0
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["approximate"] is False and model["family"] == "xlm-roberta"
    assert main(["validate", str(path)]) == 0
    assert "models: roberta-large" in capsys.readouterr().out


def test_a_hub_model_nowhere_on_this_machine_is_refused_before_training(tmp_path, capsys):
    path = write_recipe(tmp_path, 'model = "hub:klue/roberta-large"')
    for command in (["check", str(path)], ["run", str(path)], ["validate", str(path)]):
        assert main(command) == 4  # a model's files are not on this machine
        err = capsys.readouterr().err
        assert err.startswith(
            f"error: {path}: model 'hub:klue/roberta-large' has no config.json on this machine"
        )
        assert "hf download klue/roberta-large" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_without_config_json_names_the_file_it_looked_for(tmp_path, capsys):
    (tmp_path / "ckpt").mkdir()
    path = write_recipe(tmp_path, 'model = "hub:klue/roberta-large"\ncheckpoint = "ckpt"')
    assert main(["check", str(path)]) == 4
    err = capsys.readouterr().err
    assert f"(looked in {tmp_path / 'ckpt' / 'config.json'})" in err


def test_a_config_json_that_is_not_json_is_refused_with_its_path(tmp_path, capsys):
    checkpoint_with(tmp_path / "ckpt", '{"model_type": "roberta",')
    path = write_recipe(tmp_path, 'model = "hub:klue/roberta-large"\ncheckpoint = "ckpt"')
    for command in (["check", str(path)], ["run", str(path)]):
        assert main(command) == 4
        err = capsys.readouterr().err
        assert err.startswith(
            f"error: {tmp_path / 'ckpt' / 'config.json'} cannot be read as a model configuration"
        )
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_model_type_no_family_claims_is_refused_unless_rough(tmp_path, capsys):
    checkpoint_with(tmp_path / "ckpt", json.dumps(DISTILBERT))
    path = write_recipe(tmp_path, 'model = "hub:distilbert/distilbert-base"\ncheckpoint = "ckpt"')
    for command in (["check", str(path)], ["run", str(path)]):
        assert main(command) == 6
        err = capsys.readouterr().err
        assert err.startswith(
            "error: 'distilbert-base': the memory estimator has no model family for model_type "
            "'distilbert'"
        )
        assert "register_model_families" in err and "--rough" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert main(["check", str(path), "--rough", "--json", "--gpu-memory", "40GiB"]) == 0
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["approximate"] is True
