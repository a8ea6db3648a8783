"""Memory and speed options reach the Hugging Face Trainer: activation checkpointing, the
optimizer, the attention implementation, and the dtype the weights load in."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import pytest
import torch
from tiny_models import DEMO_DATA, read_rows

import zoo
from zoo.engine import train
from zoo.engine.adapters import apply_lora
from zoo.engine.device import DeviceInfo, check_training, weights_dtype
from zoo.engine.loading import LoadRequest, load_for_classification
from zoo.errors import RunRefused, ZooError
from zoo.plugins import get_plugin_manager
from zoo.recipe import LoraSettings, TrainingConfig, load_recipe
from zoo.registry import collect_models
from zoo.runner import run_recipe

CPU = DeviceInfo("cpu", "CPU", bf16=False)
GPU = DeviceInfo("cuda", "GPU", bf16=True)


# --- the dtype the weights load in ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "precision", "device", "dtype"),
    [
        # Full fine-tuning updates the loaded weights: fp32 master weights under autocast.
        ("full", "bf16", "cuda", "float32"),
        ("full", "fp16", "cuda", "float32"),
        ("full", "fp32", "cuda", "float32"),
        ("full", "bf16", "cpu", "float32"),
        # LoRA never updates the base: on a GPU it stays in the 16-bit compute dtype.
        ("lora", "bf16", "cuda", "bfloat16"),
        ("lora", "fp16", "cuda", "float16"),
        ("lora", "fp32", "cuda", "float32"),
        ("lora", "bf16", "cpu", "float32"),
        ("lora", "fp32", "cpu", "float32"),
        # QLoRA: bitsandbytes quantises the Linear layers; the rest is fp32.
        ("qlora", "bf16", "cuda", "float32"),
        ("qlora", "fp16", "cuda", "float32"),
        # Zero-shot only infers, in the precision it runs in.
        ("zero-shot", "bf16", "cuda", "bfloat16"),
        ("zero-shot", "fp16", "cuda", "float16"),
        ("zero-shot", "fp32", "cpu", "float32"),
        ("zero-shot", "bf16", "cpu", "bfloat16"),
    ],
)
def test_the_weights_dtype_follows_method_precision_and_device(method, precision, device, dtype):
    assert weights_dtype(method, precision, device) == dtype


def half_precision_copy(tiny_bert: Path, directory: Path) -> Path:
    """The tiny BERT saved in fp16, as Polyglot-ko and KoAlpaca are published."""
    from transformers import AutoModel, AutoTokenizer

    AutoModel.from_pretrained(tiny_bert, dtype=torch.float16).save_pretrained(directory)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(directory)
    return directory


def request(location: Path, **options) -> LoadRequest:
    spec = zoo.ModelSpec(
        name="tiny-bert",
        description="2-layer random BERT",
        source=zoo.LocalSource(path=location),
        family="bert",
    )
    return LoadRequest(
        spec=spec,
        location=str(location),
        revision=None,
        labels=("a", "b", "c"),
        tokenizer=spec.tokenizer,
        **options,
    )


def dtypes(model) -> set[torch.dtype]:
    return {p.dtype for p in model.parameters()}


def test_an_fp16_checkpoint_loads_in_float32_unless_asked_otherwise(tiny_bert, tmp_path):
    half = half_precision_copy(tiny_bert, tmp_path / "half")
    from transformers import AutoModelForSequenceClassification

    # Why zoo says which dtype: transformers 5 keeps the checkpoint's own.
    assert dtypes(AutoModelForSequenceClassification.from_pretrained(half)) == {torch.float16}
    model, _ = load_for_classification(request(half))
    assert dtypes(model) == {torch.float32}
    model, _ = load_for_classification(request(half, dtype="bfloat16"))
    assert dtypes(model) == {torch.bfloat16}


def test_lora_on_a_16_bit_base_trains_its_adapters_and_head_in_float32(tiny_bert):
    model, _ = load_for_classification(request(tiny_bert, dtype="bfloat16"))
    lora = LoraSettings(target_modules=("query", "value"))
    model = apply_lora(model, request(tiny_bert).spec, lora, quantized=False)
    trained = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert any("lora_A" in n for n in trained)
    assert any("classifier" in n for n in trained)  # peft would leave the head in bfloat16
    assert set(trained.values()) == {torch.float32}
    assert frozen == {torch.bfloat16}


# --- attention ------------------------------------------------------------------------------------


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_attention_implementation_is_the_recipes(tiny_bert, attention):
    model, _ = load_for_classification(request(tiny_bert, attention=attention))
    assert model.config._attn_implementation == attention


def test_a_model_without_sdpa_attention_is_told_to_use_eager(tiny_bert, tmp_path):
    from transformers import BigBirdConfig, BigBirdModel

    folder = tmp_path / "bigbird"  # BigBird has no scaled-dot-product attention in transformers
    config = BigBirdConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        attention_type="original_full",
        max_position_embeddings=64,
    )
    BigBirdModel(config).save_pretrained(folder)
    for tokenizer_file in tiny_bert.glob("tokenizer*"):
        (folder / tokenizer_file.name).write_bytes(tokenizer_file.read_bytes())

    with pytest.raises(ZooError) as caught:
        load_for_classification(request(folder))
    assert str(caught.value) == (
        "'tiny-bert' cannot use attention = 'sdpa': transformers has no scaled-dot-product "
        "attention for its architecture\n"
        "  hint: set attention = 'eager' for 'tiny-bert' in the recipe (or in its plugin's "
        "defaults)"
    )
    model, _ = load_for_classification(request(folder, attention="eager"))
    assert model.config._attn_implementation == "eager"


# --- refusals -------------------------------------------------------------------------------------


def test_8_bit_adamw_needs_a_cuda_gpu():
    settings = TrainingConfig(optimizer="adamw-8bit")
    with pytest.raises(RunRefused) as caught:
        check_training("full", settings, CPU)
    assert caught.value.hint == (
        "use optimizer = 'adamw' on this machine (or 'adafactor', whose state is small too)"
    )
    check_training("zero-shot", settings, CPU)  # nothing is trained: no optimizer


def test_8_bit_adamw_needs_bitsandbytes_on_a_gpu(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails
    settings = TrainingConfig(optimizer="adamw-8bit")
    with pytest.raises(RunRefused) as caught:
        check_training("lora", settings, GPU)
    assert str(caught.value) == (
        "optimizer = 'adamw-8bit' needs the bitsandbytes package, which is not installed\n"
        "  hint: pip install bitsandbytes"
    )


@pytest.mark.parametrize("optimizer", ["adamw", "adafactor", "sgd"])
def test_the_other_optimizers_run_anywhere(optimizer):
    check_training("full", TrainingConfig(optimizer=optimizer), CPU)


# --- a few training steps on a CPU: what the Trainer got ------------------------------------------


@pytest.fixture
def trainers(monkeypatch) -> list:
    """The Trainers that zoo's engine builds, kept for the test to look at once a run ends."""
    built = []
    make_class = train._trainer_class

    def recording_class(**kwargs):
        class Recording(make_class(**kwargs)):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                built.append(self)

        return Recording

    monkeypatch.setattr(train, "_trainer_class", recording_class)
    return built


@pytest.fixture
def data(tmp_path) -> Path:
    """40 training and 10 test rows of the demo data, every class present."""
    for name, count in (("train", 40), ("test", 10)):
        rows = read_rows(DEMO_DATA / f"{name}.csv")
        by_label: dict[str, list] = {}
        for row in rows:
            by_label.setdefault(row["label"], []).append(row)
        picked = [r for group in by_label.values() for r in group[:2]]  # rare classes first
        picked += [r for r in rows if r not in picked]
        with (tmp_path / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "label"])
            writer.writeheader()
            writer.writerows(picked[:count])
    return tmp_path


class Progress:
    """Progress that draws nothing."""

    def start(self, description: str, total: int) -> None: ...
    def advance(self, steps: int = 1) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


def toml_value(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def train_tiny_bert(
    tiny_bert: Path, data: Path, method: str = "full", entry: dict | None = None, **training
):
    """Train the tiny BERT for 3 steps with these [training] settings (and these keys in its
    [[models]] entry); return its run."""

    class TinyPlugin:
        @zoo.hookimpl
        def register_models(self, register):
            register(
                zoo.ModelSpec(
                    name="tiny-bert",
                    description="2-layer random BERT",
                    source=zoo.LocalSource(path=tiny_bert),
                    family="bert",
                    resources=zoo.Resources(
                        methods=("full", "lora"), lora_targets=("query", "value")
                    ),
                )
            )

    pm = get_plugin_manager(entry_points=False, builtins=False)
    pm.register(TinyPlugin(), name="tiny")
    registry = collect_models(pm)
    settings = {
        "max_steps": 3,
        "batch_size": 8,
        "max_length": 32,
        "learning_rate": 1e-2,
        "warmup_ratio": 0.0,
        "early_stopping_patience": 0,
        **training,
    }
    lines = "\n".join(f"{key} = {toml_value(value)}" for key, value in settings.items())
    own = "".join(f"{key} = {toml_value(value)}\n" for key, value in (entry or {}).items())
    path = data / "recipe.toml"
    path.write_text(
        '[run]\nname = "options"\noutput_dir = "out"\n\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = 0.25\n\n'
        f'[[models]]\nmodel = "tiny-bert"\nmethod = "{method}"\n{own}\n[training]\n{lines}\n',
        encoding="utf-8",
    )
    recipe = load_recipe(path, model_names=registry.names())
    failures = []
    [result] = run_recipe(
        recipe, registry, lambda _label: Progress(), lambda m, e: failures.append((m, e))
    )
    assert failures == []
    return result


def checkpointed(model) -> bool:
    return any(getattr(module, "gradient_checkpointing", False) for module in model.modules())


def optimizer_of(trainer):
    return getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate wraps it


def test_by_default_the_trainer_gets_fused_adamw_sdpa_and_no_checkpointing(
    tiny_bert, data, trainers
):
    train_tiny_bert(tiny_bert, data)
    [trainer] = trainers
    assert isinstance(optimizer_of(trainer), torch.optim.AdamW)
    assert optimizer_of(trainer).defaults["fused"] is True
    assert trainer.model.config._attn_implementation == "sdpa"
    assert not checkpointed(trainer.model)


def test_full_fine_tuning_with_activation_checkpointing_trains_every_layer(
    tiny_bert, data, trainers
):
    from safetensors.torch import load_file

    result = train_tiny_bert(tiny_bert, data, gradient_checkpointing=True)
    [trainer] = trainers
    assert checkpointed(trainer.model)
    # The recomputed layers got gradients: the first layer's weights moved.
    name = "encoder.layer.0.attention.self.query.weight"
    before = load_file(tiny_bert / "model.safetensors")[name]
    after = load_file(result.run_dir / "model" / "model.safetensors")[f"bert.{name}"]
    assert not torch.equal(before, after)


@pytest.mark.parametrize("train_embeddings", [False, True])
def test_train_embeddings_false_freezes_the_word_embeddings_alone(
    tiny_bert, data, trainers, train_embeddings
):
    import json

    from safetensors.torch import load_file

    result = train_tiny_bert(tiny_bert, data, train_embeddings=train_embeddings)
    [trainer] = trainers
    before = load_file(tiny_bert / "model.safetensors")
    after = load_file(result.run_dir / "model" / "model.safetensors")
    moved = {
        name: not torch.equal(before[name], after[f"bert.{name}"])
        for name in (
            "embeddings.word_embeddings.weight",
            "embeddings.position_embeddings.weight",
            "embeddings.LayerNorm.weight",
            "encoder.layer.0.attention.self.query.weight",
        )
    }
    assert moved == {
        **dict.fromkeys(moved, True),
        "embeddings.word_embeddings.weight": train_embeddings,
    }
    # The optimizer holds no state for a frozen matrix, and the run says what trained.
    words = trainer.model.get_input_embeddings().weight
    held = [p for group in optimizer_of(trainer).param_groups for p in group["params"]]
    assert any(p is words for p in held) is train_embeddings
    run = json.loads((result.run_dir / "run.json").read_text(encoding="utf-8"))
    every = sum(p.numel() for p in trainer.model.parameters())
    frozen = 0 if train_embeddings else words.numel()
    assert run["trainable_parameters"] == every - frozen


def test_the_engine_moves_only_the_rows_of_tokens_that_training_saw(tiny_bert, data, trainers):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    result = train_tiny_bert(tiny_bert, data, train_embeddings="sparse")
    [trainer] = trainers
    from zoo.engine.sparse_embeddings import LazyAdamW

    assert type(optimizer_of(trainer)) is LazyAdamW
    assert trainer.model.get_input_embeddings().sparse
    before = load_file(tiny_bert / "model.safetensors")
    after = load_file(result.run_dir / "model" / "model.safetensors")
    name = "embeddings.word_embeddings.weight"
    moved = set((before[name] != after[f"bert.{name}"]).any(dim=1).nonzero().flatten().tolist())
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    with (data / "train.csv").open(encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    seen = {i for ids in tokenizer(texts, truncation=True, max_length=32)["input_ids"] for i in ids}
    assert moved and moved <= seen
    assert len(moved) < before[name].shape[0] / 2  # most of the vocabulary kept its values
    # Everything else trains as usual.
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(before[layer], after[f"bert.{layer}"])
    assert trainer.state.log_history[0]["grad_norm"] > 0  # zoo's norm, logged by the Trainer


def test_the_engine_trains_sparse_without_clipping_too(tiny_bert, data, trainers):
    result = train_tiny_bert(tiny_bert, data, train_embeddings="sparse",
                             trainer={"max_grad_norm": 0.0})  # fmt: skip
    assert result.status == "ok"


def test_lora_with_activation_checkpointing_trains_its_adapters(tiny_bert, data, trainers):
    train_tiny_bert(tiny_bert, data, method="lora", gradient_checkpointing=True)
    [trainer] = trainers
    assert checkpointed(trainer.model)
    # LoRA's B matrices start at zero; gradients that reach them inside the recomputed layers
    # move them (with checkpointing that cut the graph, only the head would train).
    lora_b = [p for n, p in trainer.model.named_parameters() if "lora_B" in n]
    assert len(lora_b) == 4  # query and value in 2 layers
    assert all(p.abs().sum() > 0 for p in lora_b)


@pytest.mark.parametrize(("optimizer", "kind"), [("sgd", "SGD"), ("adafactor", "Adafactor")])
def test_the_optimizer_is_the_recipes(tiny_bert, data, trainers, optimizer, kind):
    train_tiny_bert(tiny_bert, data, optimizer=optimizer)
    [trainer] = trainers
    assert type(optimizer_of(trainer)).__name__ == kind
    assert trainer.state.global_step == 3


def test_eager_attention_trains(tiny_bert, data, trainers):
    result = train_tiny_bert(tiny_bert, data, attention="eager")
    [trainer] = trainers
    assert trainer.model.config._attn_implementation == "eager"
    assert result.status == "ok"


# --- [training.trainer]: more TrainingArguments ---------------------------------------------------


def test_a_trainer_table_reaches_the_trainer_merged_with_the_models_own(tiny_bert, data, trainers):
    result = train_tiny_bert(
        tiny_bert,
        data,
        entry={"trainer": {"max_grad_norm": 0.25}},
        trainer={"max_grad_norm": 0.5, "label_smoothing_factor": 0.1, "adam_beta2": 0.95},
    )
    [trainer] = trainers
    assert trainer.args.max_grad_norm == 0.25  # the model entry's, over [training]'s
    assert trainer.args.label_smoothing_factor == 0.1
    assert trainer.args.adam_beta2 == 0.95
    assert trainer.args.learning_rate == 1e-2  # zoo's own arguments are untouched
    table = {"max_grad_norm": 0.25, "label_smoothing_factor": 0.1, "adam_beta2": 0.95}
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["settings"]["trainer"] == table
    effective = tomllib.loads((result.run_dir / "recipe.toml").read_text())
    assert effective["training"]["trainer"] == table


def test_without_a_trainer_table_the_trainer_keeps_its_defaults(tiny_bert, data, trainers):
    from transformers import TrainingArguments

    train_tiny_bert(tiny_bert, data)
    [trainer] = trainers
    defaults = TrainingArguments(output_dir="unused")
    assert trainer.args.max_grad_norm == defaults.max_grad_norm
    assert trainer.args.label_smoothing_factor == defaults.label_smoothing_factor


def test_a_wrong_trainer_value_from_a_plugin_fails_before_the_model_loads(tiny_bert, data):
    """A plugin's defaults skip the recipe's checks: the engine checks the merged table before
    anything loads, and no run directory is made."""
    loaded = []

    def loader(request):
        loaded.append(request)
        return load_for_classification(request)

    class TinyPlugin:
        @zoo.hookimpl
        def register_models(self, register):
            register(
                zoo.ModelSpec(
                    name="tiny-bert",
                    description="2-layer random BERT",
                    source=zoo.LocalSource(path=tiny_bert),
                    family="bert",
                    loader=loader,
                    defaults={"trainer": {"max_grad_norm": "big"}, "max_steps": 2},
                )
            )

    pm = get_plugin_manager(entry_points=False, builtins=False)
    pm.register(TinyPlugin(), name="tiny")
    registry = collect_models(pm)
    path = data / "recipe.toml"
    path.write_text(
        '[run]\nname = "wrong"\noutput_dir = "out"\n[data]\ntrain = "train.csv"\n'
        '[[models]]\nmodel = "tiny-bert"\n',
        encoding="utf-8",
    )
    failures = []
    [result] = run_recipe(
        load_recipe(path, model_names=registry.names()),
        registry,
        lambda _label: Progress(),
        lambda m, e: failures.append((m, e)),
    )
    assert result.status == "failed"
    assert "training.trainer.max_grad_norm: expected a number, got string 'big'" in result.reason
    assert loaded == []
    assert not (data / "out" / "wrong").exists() or not any((data / "out" / "wrong").iterdir())


@pytest.mark.parametrize("command", ["run", "validate", "check"])
def test_zoo_refuses_a_wrong_trainer_value_before_anything_is_made(
    command, data, monkeypatch, capsys
):
    from zoo.cli import main

    monkeypatch.setenv("ZOO_PLUGINS", "")
    path = data / "recipe.toml"
    path.write_text(
        '[run]\nname = "wrong"\noutput_dir = "out"\n[data]\ntrain = "train.csv"\n'
        '[[models]]\nmodel = "minilm"\n[training.trainer]\nmax_grad_norm = "big"\n',
        encoding="utf-8",
    )
    assert main([command, str(path)]) == 2
    assert "training.trainer.max_grad_norm: expected a number, got string 'big'" in (
        capsys.readouterr().err
    )
    assert not (data / "out").exists()


def test_every_argument_zoo_sets_is_listed_with_its_recipe_key():
    """ZOO_ARGUMENTS is what [training.trainer] may not set: whatever zoo passes, under any
    strategy, is in it, and each of its keys is a TrainingArguments field."""
    import dataclasses

    from transformers import TrainingArguments

    from zoo.engine.arguments import ZOO_ARGUMENTS
    from zoo.engine.distributed import trainer_arguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    renamed = {"activation_checkpointing", "gradient_checkpointing"}
    assert ZOO_ARGUMENTS.keys() - renamed <= fields
    assert ZOO_ARGUMENTS.keys() & renamed & fields
    for strategy in ("ddp", "fsdp", "deepspeed-zero2", "deepspeed-zero3"):
        assert trainer_arguments(strategy, None, cpu=True).keys() <= ZOO_ARGUMENTS.keys()


# --- eval_every: how often the validation split is evaluated ------------------------------------


def evaluations(trainer) -> list[int]:
    return [entry["step"] for entry in trainer.state.log_history if "eval_loss" in entry]


def test_by_default_a_short_run_evaluates_once_at_its_end(tiny_bert, data, trainers):
    train_tiny_bert(tiny_bert, data)  # 3 steps, fewer than an epoch's 4
    [trainer] = trainers
    assert evaluations(trainer) == [3]
    assert trainer.args.eval_steps == trainer.args.save_steps == 3


def test_by_default_evaluation_comes_once_an_epoch(tiny_bert, data, trainers):
    # 30 training rows, batches of 8: 4 steps an epoch.
    train_tiny_bert(tiny_bert, data, max_steps=8)
    [trainer] = trainers
    assert evaluations(trainer) == [4, 8]


def test_eval_every_evaluates_and_saves_every_n_steps(tiny_bert, data, trainers):
    train_tiny_bert(tiny_bert, data, max_steps=6, eval_every=2)
    [trainer] = trainers
    assert evaluations(trainer) == [2, 4, 6]
    assert trainer.args.save_steps == 2
    assert trainer.args.logging_steps == 1  # a quarter of eval_every, at least 1


def test_eval_every_longer_than_the_run_evaluates_once_at_its_end(tiny_bert, data, trainers):
    train_tiny_bert(tiny_bert, data, max_steps=3, eval_every=50)
    [trainer] = trainers
    assert evaluations(trainer) == [3]


def test_early_stopping_patience_counts_evaluations(tiny_bert, data, trainers):
    """A learning rate too small to change a prediction: no evaluation improves on the first,
    and training stops after `patience` more of them, long before max_steps."""
    train_tiny_bert(
        tiny_bert,
        data,
        max_steps=40,
        eval_every=2,
        learning_rate=1e-12,
        early_stopping_patience=2,
    )
    [trainer] = trainers
    assert evaluations(trainer) == [2, 4, 6]
    assert trainer.state.global_step == 6
