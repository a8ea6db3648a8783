"""The three seed models (KR-FinBert-SC, XLM-R, KoAlpaca) through their real plugins.

Their weights are not on this machine, so each loader runs on a tiny random-init model of the
same architecture, through the `checkpoint` override: the code path real weights take.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from tiny_models import DEMO_DATA, demo_texts

from zoo.cli import main
from zoo.plugins import get_plugin_manager
from zoo.recipe import load_recipe
from zoo.registry import collect_models
from zoo.runner import run_recipe

ROOT = Path(__file__).parent.parent


class Silent:
    def start(self, description, total):
        pass

    def advance(self, steps=1):
        pass

    def message(self, text):
        pass

    def stop(self):
        pass


@pytest.fixture(scope="module")
def registry():
    return collect_models(get_plugin_manager(entry_points=False))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_bert):
    """Tiny random-init stand-ins, one per seed architecture."""
    from tiny_models import save_tiny_gpt_neox, save_tiny_xlmr

    texts = demo_texts()
    return {
        "bert": tiny_bert,
        "xlmr": save_tiny_xlmr(tmp_path_factory.mktemp("xlmr")),
        "gpt-neox": save_tiny_gpt_neox(tmp_path_factory.mktemp("neox"), texts),
    }


@pytest.fixture
def data(tmp_path) -> Path:
    """60 training rows with every class (12 of each), 15 test rows."""
    with (DEMO_DATA / "train.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    picked: dict[str, list] = {}
    for row in rows:
        picked.setdefault(row["label"], [])
        if len(picked[row["label"]]) < 15:
            picked[row["label"]].append(row)
    train = [r for group in picked.values() for r in group[:12]]
    test = [r for group in picked.values() for r in group[12:15]]
    for name, part in (("train", train), ("test", test)):
        with (tmp_path / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "label"])
            writer.writeheader()
            writer.writerows(part)
    return tmp_path


def write_recipe(directory: Path, entry: str, **training) -> Path:
    settings = {"max_steps": 3, "batch_size": 4, "max_length": 48, **training}
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
    path = directory / "recipe.toml"
    path.write_text(
        f'[run]\nname = "seed"\noutput_dir = "out"\n\n'
        f'[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = 0.25\n\n'
        f"[[models]]\n{entry}\n\n[training]\n{lines}\n",
        encoding="utf-8",
    )
    return path


def run(path: Path, registry):
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    failures = []
    runs = run_recipe(recipe, registry, lambda _: Silent(), lambda m, e: failures.append(e))
    return runs, failures


# --- exact sizes, offline ------------------------------------------------------------------------


def meta_count(architecture, auto_class: str, num_labels: int | None = None) -> int:
    import transformers

    config = transformers.AutoConfig.for_model(**dict(architecture))
    if num_labels is not None:
        config.num_labels = num_labels
    with torch.device("meta"):
        model = getattr(transformers, auto_class).from_config(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "published_with_3_labels"),
    [("finbert", 101_403_651), ("xlmr", 278_045_955)],
)
def test_encoder_sizes_match_the_published_figures(registry, name, published_with_3_labels):
    spec = registry.get(name)
    counted = meta_count(spec.resources.architecture, "AutoModelForSequenceClassification", 3)
    assert counted == published_with_3_labels
    head = 768 * 3 + 3 if name == "finbert" else (768 * 768 + 768) + (768 * 3 + 3)
    assert spec.resources.parameters == counted - head


@pytest.mark.parametrize(
    ("name", "published"),
    [("koalpaca-5.8b", 5_885_059_072), ("koalpaca-12.8b", 12_893_603_840)],
)
def test_koalpaca_sizes_match_the_published_figures(registry, name, published):
    spec = registry.get(name)
    assert meta_count(spec.resources.architecture, "AutoModelForCausalLM") == published
    backbone = meta_count(spec.resources.architecture, "AutoModel")
    assert spec.resources.parameters == backbone
    hidden = spec.resources.architecture["hidden_size"]
    assert published - backbone == 30_080 * hidden  # the language-model head zoo replaces


def test_zoo_models_lists_the_seed_models_with_methods_offline(capsys, monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "")
    assert main(["models", "--json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert models["finbert"]["parameters"] == 101_401_344
    assert models["xlmr"]["parameters"] == 277_453_056
    assert models["koalpaca-5.8b"]["methods"] == ["full", "lora", "qlora", "zero-shot", "few-shot"]
    assert models["koalpaca-12.8b"]["source"] == "beomi/KoAlpaca-Polyglot-12.8B"


# --- loaders on tiny stand-ins --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "architecture", "method"),
    [
        ("finbert", "bert", "full"),
        ("xlmr", "xlmr", "full"),
        ("koalpaca-5.8b", "gpt-neox", "full"),
        ("koalpaca-5.8b", "gpt-neox", "lora"),
    ],
)
def test_each_seed_plugin_trains_through_its_checkpoint_override(
    registry, tiny, data, model, architecture, method
):
    entry = f'model = "{model}"\nmethod = "{method}"\ncheckpoint = "{tiny[architecture]}"'
    [result], failures = run(write_recipe(data, entry), registry)
    assert failures == []
    assert result.status == "ok"
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["method"] == method
    assert record["registered_model"] == model


def test_lora_trains_only_the_adapters_and_the_head(registry, tiny):
    from zoo.engine.adapters import apply_lora
    from zoo.engine.loading import LoadRequest, load_for_classification

    spec = registry.get("koalpaca-5.8b")
    request = LoadRequest(
        spec=spec,
        location=str(tiny["gpt-neox"]),
        revision=None,
        labels=("a", "b", "c"),
        tokenizer=spec.tokenizer,
    )
    model, tokenizer = load_for_classification(request)
    model = apply_lora(model, spec, None, quantized=False)
    batch = tokenizer(["가나다 라마", "바사"], padding=True, return_tensors="pt")
    model(**batch, labels=torch.tensor([0, 2])).loss.backward()

    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad, "nothing was trained"
    for name in with_grad:
        assert "lora_" in name or ".score." in name, name
    assert any(".score." in n for n in with_grad)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert any("query_key_value.base_layer" in n for n in frozen)
    assert any("embed_in" in n for n in frozen)


def test_a_saved_lora_adapter_reloads_and_predicts_what_it_predicted(registry, tiny, data):
    from zoo.engine.loading import load_trained

    entry = f'model = "koalpaca-5.8b"\nmethod = "lora"\ncheckpoint = "{tiny["gpt-neox"]}"'
    [result], _ = run(write_recipe(data, entry, max_steps=4), registry)
    model_dir = result.run_dir / "model"
    assert (model_dir / "adapter_config.json").exists()
    assert not (model_dir / "model.safetensors").exists()  # adapter and head only

    model, tokenizer = load_trained(model_dir)
    model.eval()
    with (result.run_dir / "predictions.csv").open(encoding="utf-8", newline="") as f:
        saved = list(csv.DictReader(f))
    texts = [row["text"] for row in saved]
    one_by_one = []
    for text in texts:
        encoded = tokenizer(text, truncation=True, max_length=48, return_tensors="pt")
        with torch.no_grad():
            one_by_one.append(model(**encoded).logits[0])
    one_by_one = torch.stack(one_by_one)
    id2label = model.config.id2label
    assert [id2label[int(i)] for i in one_by_one.argmax(-1)] == [r["predicted"] for r in saved]

    # Padded batches classify every row as it is classified alone.
    batch = tokenizer(texts, truncation=True, max_length=48, padding=True, return_tensors="pt")
    assert int((batch["attention_mask"] == 0).sum()) > 0, "the batch needs padding"
    with torch.no_grad():
        batched = model(**batch).logits
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=1e-4)


# --- zero-shot ------------------------------------------------------------------------------------


def test_zero_shot_gives_one_label_per_row_and_records_its_prompt(registry, tiny, data):
    entry = f'model = "koalpaca-5.8b"\nmethod = "zero-shot"\ncheckpoint = "{tiny["gpt-neox"]}"'
    [result], failures = run(write_recipe(data, entry, max_length=160), registry)
    assert failures == []
    assert result.status == "ok"
    with (result.run_dir / "predictions.csv").open(encoding="utf-8", newline="") as f:
        predicted = [row["predicted"] for row in csv.DictReader(f)]
    assert len(predicted) == 15
    assert set(predicted) <= {"code", "remote", "system", "theory", "web"}
    prompt = (result.run_dir / "prompt.txt").read_text(encoding="utf-8")
    assert prompt.startswith("### 질문: ") and prompt.endswith("### 답변: ")
    assert not (result.run_dir / "model").exists()  # nothing was trained


def test_zero_shot_does_not_depend_on_the_order_of_the_labels(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zoo.engine.label_scoring import label_scores
    from zoo.prompts import DEFAULT_PROMPT, Prompt

    model = AutoModelForCausalLM.from_pretrained(tiny["gpt-neox"])
    tokenizer = AutoTokenizer.from_pretrained(tiny["gpt-neox"])
    tokenizer.pad_token = tokenizer.eos_token
    texts = demo_texts()[:6]
    labels = ("코드", "웹", "이론", "시스템", "원격")
    reordered = ("원격", "이론", "코드", "시스템", "웹")

    def scores(order, batch_size):
        prompt = Prompt.from_template(DEFAULT_PROMPT, order)
        return label_scores(model, tokenizer, prompt, texts, order, max_length=64,
                            batch_size=batch_size)  # fmt: skip

    first, second = scores(labels, 4), scores(reordered, 7)
    assert first.shape == (6, 5)
    for row in range(len(texts)):
        by_label = dict(zip(labels, first[row], strict=True))
        for label, score in zip(reordered, second[row], strict=True):
            assert score == pytest.approx(by_label[label], abs=1e-5)


# --- refusals and missing weights -----------------------------------------------------------------


def test_qlora_without_a_cuda_gpu_is_refused_before_anything_loads(registry, data, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    # No checkpoint and no cached weights: had zoo looked for them, the reason would differ.
    [result], failures = run(
        write_recipe(data, 'model = "koalpaca-12.8b"\nmethod = "qlora"'), registry
    )
    assert result.status == "refused"
    assert result.reason.startswith(
        "method = 'qlora' loads the base model in 4 bits with bitsandbytes, which needs a CUDA "
        "GPU, and this machine has none"
    )
    assert not (data / "out" / "seed").exists()  # no run directory


def test_a_seed_recipe_without_weights_says_where_zoo_looked(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("ZOO_PLUGINS", "")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    # XLM-R needs about 5.5 GiB of RAM to train on a CPU: whatever this machine has free, the
    # memory check must not be what stops this run.
    import zoo.memory.probe

    monkeypatch.setattr(zoo.memory.probe, "_ram", lambda: 64 * 2**30)
    out = tmp_path / "runs"

    code = main(["run", str(ROOT / "recipes" / "xlmr.toml"), "--set", f'run.output_dir="{out}"'])

    assert code == 4  # the README's "a model's weights or files are not on this machine"
    err = capsys.readouterr().err
    assert (
        "error: model 'xlmr' failed: the weights of 'xlmr' "
        "(classla/xlm-roberta-base-multilingual-text-genre-classifier) are not on this machine: "
        f"not in the Hugging Face cache ({tmp_path / 'hf' / 'hub'}) and HF_HUB_OFFLINE is set\n"
        "  hint: on a machine with internet, run 'hf download "
        "classla/xlm-roberta-base-multilingual-text-genre-classifier --local-dir DIR'"
    ) in err
    assert "Traceback" not in err
    assert not (out / "inquiries-xlmr").exists()  # no run directory


def test_every_shipped_recipe_validates_with_the_seed_models(registry):
    for path in sorted((ROOT / "recipes").glob("*.toml")):
        load_recipe(path, model_names=registry.names(), model_methods=registry.methods())


# --- on a CUDA GPU only (the device tool lends one to some sessions; CI has none) -----------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; CI has none")
@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_lora_and_qlora_train_the_tiny_gpt_neox_on_a_gpu(registry, tiny, data, method):
    if method == "qlora":
        pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes")
    entry = f'model = "koalpaca-5.8b"\nmethod = "{method}"\ncheckpoint = "{tiny["gpt-neox"]}"'
    [result], failures = run(write_recipe(data, entry, max_steps=4), registry)
    assert failures == []
    assert result.status == "ok"
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["peak_memory_kind"] == "cuda_max_allocated"
    assert 0 < record["trainable_parameters"] < record["parameters"]
