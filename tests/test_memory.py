"""The memory planner: estimates checked against measurements, verdicts, plans, and the CLI.

The accuracy grid measures one training step of tiny random-init models on the CPU
(`zoo.memory.measure`), with CUDA's kernels emulated and as the CPU runs them, and holds the
estimator for that device to it: parameters, gradients and optimizer state exactly, activations
within 3%, the live peak within 10%, and an evaluation pass within 20%. At e5-small's real shape,
`zoo check`'s CPU plan is held to what one forward saves on this CPU.
"""

from __future__ import annotations

import itertools
import json

import attrs
import pytest

from zoo.cli import main
from zoo.memory.check import check_entry
from zoo.memory.estimate import estimate, evaluation_working, parameters
from zoo.memory.probe import named_gpu, parse_size
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape
from zoo.recipe import load_recipe
from zoo.registry import collect_models

FAMILIES = ("bert", "xlm-roberta", "gpt-neox", "llama")
TARGETS = {"bert": ("query", "value"), "xlm-roberta": ("query", "value"),
           "gpt-neox": ("query_key_value",), "llama": ("q_proj", "v_proj")}  # fmt: skip
# 512 tokens (eager attention's quadratic term, XLM-R's last positions) at batch 2 and batch 16 at
# 64 tokens: a 16 x 512 bf16 step takes up to 5 minutes on a CPU without bf16 units, and
# benchmarks/memory_accuracy.py measures 16 x 512 for every family (benchmarks/RESULTS.md).
SIZES = ((1, 32), (4, 128), (8, 256), (2, 512), (16, 64))


def _grid():
    cases = list(
        itertools.product(
            FAMILIES, ("eager", "sdpa"), ("fp32", "bf16"), (False, True), ("full", "lora")
        )
    )
    for i, case in enumerate(cases):
        # Every (batch, sequence) pair turns up with every family and option over the grid. A
        # third of the cases (still every family, attention, dtype, method, checkpointing setting
        # and size) is the sample that tox's lowest-dependencies env runs (-m "not exhaustive").
        marks = () if i % 3 == 0 else (pytest.mark.exhaustive,)
        yield pytest.param(*case, *SIZES[i % len(SIZES)], "cuda", marks=marks)
    # The newer families, few and small: ModernBERT (mean pooling, no dropout) and ELECTRA with
    # an embedding projection (128 -> 256), full fine-tuning.
    for i, (family, attention, dtype) in enumerate(
        itertools.product(("modernbert", "electra"), ("eager", "sdpa"), ("fp32", "bf16"))
    ):
        yield pytest.param(
            family, attention, dtype, False, "full", *((2, 64), (4, 128))[i % 2], "cuda"
        )
    # The CPU's own kernels, measured as it runs them (no emulation), with the models' dropout
    # (BERT's 0.1 in attention too, which puts SDPA on its math path): every combination at
    # 4 x 128, a third of them (another third than above) in the sample; ELECTRA alike.
    for i, case in enumerate(cases):
        marks = () if i % 3 == 1 else (pytest.mark.exhaustive,)
        yield pytest.param(*case, 4, 128, "cpu", marks=marks)
    for attention, dtype in itertools.product(("eager", "sdpa"), ("fp32", "bf16")):
        yield pytest.param("electra", attention, dtype, False, "full", 4, 128, "cpu")


# What only the newer families' shapes say. The Llama rows have grouped-query attention (2 key /
# value heads for 4 query heads), so that eager attention repeats them.
EXTRA = {"electra": {"embedding_size": 128}, "llama": {"kv_heads": 2, "head_dim": 64},
         "modernbert": {"classifier_pooling": "mean", "global_attn_every_n_layers": 3,
                        "local_attention": 128}}  # fmt: skip
# ModernBERT with dropout everywhere (it has none by default): its masks and, on a CPU, SDPA's
# math path.
MODERNBERT_DROPOUT = {"attention_dropout": 0.1, "mlp_dropout": 0.1, "embedding_dropout": 0.1}


@pytest.mark.parametrize(
    ("family", "attention", "dtype", "checkpointing", "method", "batch", "sequence", "device"),
    list(_grid()),
)
def test_estimates_match_a_measured_training_step(
    family, attention, dtype, checkpointing, method, batch, sequence, device
):
    shape = ModelShape(
        family=family,
        vocab=8000,
        hidden=256,
        layers=4,
        heads=4,
        ffn=1024,
        labels=3,
        positions=514,
        extra=EXTRA.get(family, {}),
    )  # fmt: skip (XLM-R: 512 tokens after 2 offsets)
    check_a_measured_step(shape, attention, dtype, checkpointing, method, batch, sequence, device)


@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize(
    ("attention", "dtype"), itertools.product(("eager", "sdpa"), ("fp32", "bf16"))
)
def test_modernbert_with_dropout_matches_a_measured_training_step(attention, dtype, device):
    shape = ModelShape(family="modernbert", vocab=8000, hidden=256, layers=4, heads=4, ffn=1024,
                       labels=3, extra=EXTRA["modernbert"] | MODERNBERT_DROPOUT)  # fmt: skip
    assert shape.family.dropout(shape.config()) == (True, True)
    check_a_measured_step(shape, attention, dtype, False, "full", 4, 128, device)


@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize(
    ("attention", "dtype", "checkpointing", "method"),
    [("eager", "fp32", False, "full"), ("sdpa", "bf16", False, "full"),
     ("eager", "bf16", True, "lora"), ("sdpa", "fp32", False, "lora")],
)  # fmt: skip
def test_qwen3_matches_a_measured_training_step(attention, dtype, checkpointing, method, device):
    """Qwen3 on the Llama family: its per-head q_norm and k_norm, and a head_dim (64) that is
    not hidden / heads (256 / 8 = 32)."""
    shape = ModelShape(family="llama", vocab=8000, hidden=256, layers=4, heads=8, ffn=1024,
                       labels=3, extra={"model_type": "qwen3", "kv_heads": 4, "head_dim": 64,
                                        "qk_norm": True})  # fmt: skip
    assert shape.config()["model_type"] == "qwen3"
    check_a_measured_step(shape, attention, dtype, checkpointing, method, 4, 128, device)


def check_a_measured_step(shape, attention, dtype, checkpointing, method, batch, sequence, device):
    """One training step of a random-init model of `shape`, measured as `device`'s kernels run
    it (`zoo.memory.measure`), against the estimate with the same settings."""
    from zoo.memory.measure import add_lora, build_model, measure_evaluation, measure_step

    family = shape.family.name
    hidden_dropout, attention_dropout = shape.family.dropout(shape.config())
    model = build_model(shape, attention=attention, dtype=dtype, device=device)
    if method == "lora":
        model = add_lora(model, rank=8, targets=TARGETS[family])
    measured = measure_step(
        model, shape, batch=batch, sequence=sequence, checkpointing=checkpointing, device=device
    )
    setup = TrainingSetup(
        method=method,
        precision="fp32" if dtype == "fp32" else "bf16-pure",
        attention=attention,
        device=device,
        gradient_checkpointing=checkpointing,
        batch_size=batch,
        sequence=sequence,
        lora_targets=TARGETS.get(family, ()),
        hidden_dropout=hidden_dropout,
        # The CUDA harness measures SDPA without attention dropout (build_model).
        attention_dropout=attention_dropout and (attention == "eager" or device == "cpu"),
    )
    predicted = estimate(shape, setup, context=0)
    trainable = sum(p.tensor.numel * p.bytes_per for p in parameters(shape, setup) if p.trains)
    assert predicted.breakdown["weights"] == measured.parameters
    assert trainable == measured.gradients
    assert predicted.breakdown["optimizer"] == measured.optimizer
    saved = predicted_activations(shape, setup)
    assert saved == pytest.approx(measured.activations, rel=0.03)
    # The measured step is forward, backward and optimizer step; evaluation is checked below.
    step = max(v for phase, v in predicted.phases.items() if phase != "evaluation")
    assert step == pytest.approx(measured.peak, rel=0.10)
    if method == "full":  # evaluation, at zoo's evaluation batch (twice the training batch)
        evaluation = measure_evaluation(model, shape, batch=2 * batch, sequence=sequence)
        assert evaluation_working(shape, setup) == pytest.approx(evaluation, rel=0.20)


@pytest.mark.parametrize("optimizer", ["adamw-foreach", "sgd", "adafactor"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("family", ["bert", "gpt-neox"])
def test_other_optimizers_state_and_step_match_a_measured_step(family, dtype, optimizer):
    from zoo.memory.measure import build_model, measure_step

    shape = ModelShape(family=family, vocab=8000, hidden=256, layers=4, heads=4, ffn=1024,
                       labels=3)  # fmt: skip
    model = build_model(shape, attention="sdpa", dtype=dtype)
    measured = measure_step(model, shape, batch=2, sequence=64, optimizer=optimizer)
    setup = TrainingSetup(
        precision="fp32" if dtype == "fp32" else "bf16-pure",
        optimizer=optimizer,
        batch_size=2,
        sequence=64,
        hidden_dropout=shape.family.dropout(shape.config())[0],
        attention_dropout=False,
    )
    predicted = estimate(shape, setup, context=0)
    assert predicted.breakdown["optimizer"] == measured.optimizer
    step = max(v for phase, v in predicted.phases.items() if phase != "evaluation")
    assert step == pytest.approx(measured.peak, rel=0.10)


def predicted_activations(shape, setup):
    from zoo.memory.activations import activations

    return activations(shape, setup).saved(setup.gradient_checkpointing)


@pytest.mark.parametrize(
    ("family", "vocab", "hidden", "layers", "ffn", "expected"),
    [
        # XLM-R base with a 3-class head, BERT-base with KR-BERT's 20,000 vocabulary: the counts
        # measured on the meta device (../shared/notes/memory-estimation.md).
        ("xlm-roberta", 250_002, 768, 12, 3072, 278_045_955),
        ("bert", 20_000, 768, 12, 3072, 101_403_651),
    ],
)
def test_parameter_inventory_matches_real_models(family, vocab, hidden, layers, ffn, expected):
    positions = 514 if family == "xlm-roberta" else 512
    type_vocab = 1 if family == "xlm-roberta" else 2
    shape = ModelShape(family=family, vocab=vocab, hidden=hidden, layers=layers, heads=12,
                       ffn=ffn, labels=3, positions=positions, type_vocab=type_vocab)  # fmt: skip
    assert shape.parameters() == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("40GiB", 40 * 2**30), ("80 GB", 80 * 10**9), ("24576MiB", 24576 * 2**20), ("512", 512)],
)
def test_memory_sizes_read_like_people_write_them(text, expected):
    assert parse_size(text) == expected


def test_a_memory_size_that_is_not_one_is_a_clear_error():
    with pytest.raises(Exception, match="cannot read the memory size 'forty'"):
        parse_size("forty")


@pytest.fixture
def registry():
    from zoo.plugins import get_plugin_manager

    return collect_models(get_plugin_manager(entry_points=False))


def _recipe(name, registry):
    from pathlib import Path

    return _load(Path(__file__).parent.parent / "recipes" / name, registry)


def test_koalpaca_12_8b_full_fine_tuning_is_refused_on_40_gib_and_lora_or_qlora_fit(registry):
    recipe = _recipe("koalpaca-full.toml", registry)
    check = check_entry(recipe, recipe.models[0], registry, named_gpu("40GiB"))
    assert not check.fits
    # Weights, gradients and AdamW's two states alone are 16 bytes per parameter: ~190 GiB.
    assert check.estimate.total > 16 * 12_700_000_000
    by_change = {plan.change: plan for plan in check.suggestions}
    assert by_change["QLoRA (4-bit base)"].estimate.total <= 40 * 2**30
    assert "LoRA" in by_change
    assert check.plan is not None and check.plan.estimate.total <= 40 * 2**30
    assert check.plan.settings["method"] in {"lora", "qlora"}


def test_each_suggestion_keeps_the_effective_batch(registry):
    recipe = _recipe("koalpaca-full.toml", registry)
    check = check_entry(recipe, recipe.models[0], registry, named_gpu("40GiB"))
    for plan in check.suggestions:
        assert plan.setup.batch_size * plan.setup.gradient_accumulation_steps == 16


def test_zero3_over_more_gpus_divides_the_model_states(registry):
    shape = ModelShape(family="gpt-neox", vocab=30_080, hidden=5120, layers=40, heads=40,
                       ffn=20_480, labels=5, rotary_pct=0.5)  # fmt: skip
    one = estimate(shape, TrainingSetup(precision="bf16", batch_size=2, sequence=256))
    eight = estimate(
        shape,
        TrainingSetup(
            precision="bf16", batch_size=2, sequence=256, gpus=8, strategy="zero3"
        ),  # fmt: skip
    )
    states = ("weights", "gradients", "optimizer")
    assert sum(eight.breakdown[k] for k in states) < sum(one.breakdown[k] for k in states) / 6


def test_zoo_check_prints_json_with_the_breakdown_and_verdict(capsys):
    code = main(["check", "recipes/koalpaca-full.toml", "--gpu-memory", "40GiB", "--json"])
    assert code == 7
    result = json.loads(capsys.readouterr().out)
    (model,) = result["models"]
    assert model["model"] == "koalpaca-12.8b" and model["method"] == "full"
    assert model["fits"] is False
    assert model["device_bytes"] == 40 * 2**30
    parts = model["estimate_bytes"]
    assert {"weights", "gradients", "optimizer", "activations", "total"} <= set(parts)
    assert parts["total"] == sum(v for k, v in parts.items() if k != "total")
    changes = [s["change"] for s in model["suggestions"]]
    assert "LoRA" in changes and "QLoRA (4-bit base)" in changes


def test_zoo_check_says_lora_fits_and_prints_tables(capsys):
    assert main(["check", "recipes/koalpaca-lora.toml", "--gpu-memory", "40GiB"]) == 0
    out = capsys.readouterr().out
    assert "koalpaca-5.8b (lora) on GPU with 40 GiB" in out
    assert "fits" in out and "does not fit" not in out


def test_zoo_check_of_the_full_variant_shows_what_would_fit(capsys):
    assert main(["check", "recipes/koalpaca-full.toml", "--gpu-memory", "40GiB"]) == 7
    out = capsys.readouterr().out
    assert "does not fit" in out
    assert "What would fit" in out
    assert "cheapest plan that fits:" in out


# e5-small's recipe as zoo runs it on a CPU: batch 16 x 128 tokens, precision auto (fp32 there).
E5_SMALL = """\
[run]
name = "cpu-rules"

[data]
train = "train.csv"

[[models]]
model = "e5-small"

[training]
batch_size = 16
max_length = 128
precision = "{precision}"
"""


def _e5_small(tmp_path, registry, precision="auto"):
    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    path = tmp_path / "recipe.toml"
    path.write_text(E5_SMALL.format(precision=precision), encoding="utf-8")
    return path, _load(path, registry)


@pytest.mark.parametrize("attention_dropout", [True, False], ids=["dropout", "no-dropout"])
def test_zoo_check_on_a_cpu_estimates_e5_small_activations_as_the_cpu_saves_them(
    attention_dropout, tmp_path, registry
):
    """At e5-small's real shape (vocabulary 250,037, 12 layers): what `zoo check` plans on a CPU
    against what one training forward of a random-init model of that shape saves on this CPU,
    without CUDA emulation. With attention dropout (e5-small's 0.1) SDPA runs its math path and
    keeps the s x s probabilities; without, its fused kernel; the masks are 4 bytes either way."""
    from zoo.memory.activations import activations
    from zoo.memory.check import training_setup
    from zoo.memory.measure import _batch, build_model, saved_for_backward
    from zoo.memory.probe import DeviceMemory
    from zoo.memory.shapes import shape_from_config
    from zoo.recipe import settings_for

    _path, recipe = _e5_small(tmp_path, registry)
    entry, spec = recipe.models[0], registry.get("e5-small")
    cpu = DeviceMemory(name="CPU", kind="cpu", available=10**15)
    setup = training_setup(recipe, entry, spec, settings_for(recipe, entry, spec), cpu)
    assert (setup.device, setup.precision, setup.attention) == ("cpu", "fp32", "sdpa")
    assert setup.attention_dropout  # e5-small's config
    setup = attrs.evolve(setup, attention_dropout=attention_dropout)
    shape = shape_from_config(spec.resources.architecture, 2)
    model = build_model(
        shape, attention="sdpa", dtype="fp32", device="cpu", attention_dropout=attention_dropout
    )
    measured = saved_for_backward(model, _batch(shape, 16, 128))
    # 1,142 MB with attention dropout, 691 MB without (CUDA's kernels would save 632 MB).
    assert measured > (1_100e6 if attention_dropout else 680e6)
    assert activations(shape, setup).saved(False) == pytest.approx(measured, rel=0.03)


def test_zoo_check_on_a_cpu_uses_the_cpu_s_kernels(tmp_path, registry, monkeypatch, capsys):
    """The same recipe planned for this CPU and for a GPU: the CPU's 4-byte dropout masks and
    SDPA's math path under attention dropout keep more activations, and zoo check says so."""
    import zoo.engine.device

    monkeypatch.setattr(zoo.engine.device, "cuda_device", lambda: None)  # this machine: a CPU
    path, _recipe = _e5_small(tmp_path, registry, precision="fp32")
    assert main(["check", str(path), "--json"]) == 0
    (on_cpu,) = json.loads(capsys.readouterr().out)["models"]
    assert main(["check", str(path), "--gpu-memory", "40GiB", "--json"]) == 0
    (on_gpu,) = json.loads(capsys.readouterr().out)["models"]
    assert on_cpu["device"].startswith("CPU (") and on_cpu["kernels"] == "cpu"
    assert on_gpu["kernels"] == "cuda"
    cpu, gpu = on_cpu["estimate_bytes"], on_gpu["estimate_bytes"]
    assert on_cpu["peak_phase"] == on_gpu["peak_phase"] == "backward"
    assert cpu["weights"] == gpu["weights"] and cpu["optimizer"] == gpu["optimizer"]
    assert cpu["activations"] > 1.5 * gpu["activations"]
    assert main(["check", str(path)]) == 0
    assert "activations as CPU kernels save them" in capsys.readouterr().out
    assert main(["check", str(path), "--gpu-memory", "40GiB"]) == 0
    assert "CPU kernels" not in capsys.readouterr().out


def _small_machine(monkeypatch, available: int) -> None:
    """This CPU machine, with only `available` bytes of RAM free (the probe reads /proc)."""
    import zoo.memory.probe

    monkeypatch.setattr(zoo.memory.probe, "_ram", lambda: available)


def test_zoo_run_refuses_a_model_that_does_not_fit_before_loading_it(
    tmp_path, tiny_bert, monkeypatch, capsys
):
    from test_faults import write_recipe

    recipe = write_recipe(tmp_path, tiny_bert, max_steps=2)
    _small_machine(monkeypatch, 2**20)
    assert main(["run", str(recipe)]) == 7
    err = capsys.readouterr().err
    assert "error: faults: 'finbert' would not fit in memory on CPU" in err
    assert "nothing was loaded" in err and "--force runs it anyway" in err
    assert not (tmp_path / "runs").exists()


def test_auto_fit_applies_the_cheapest_plan_and_records_the_estimate(
    tmp_path, tiny_bert, monkeypatch, capsys
):
    from test_faults import write_recipe

    from zoo.memory.probe import DeviceMemory
    from zoo.plugins import get_plugin_manager

    recipe_path = write_recipe(tmp_path, tiny_bert, max_steps=2, batch_size=16)
    registry = collect_models(get_plugin_manager())
    recipe = _load(recipe_path, registry)
    as_written = check_entry(recipe, recipe.models[0], registry, DeviceMemory(
        name="CPU", kind="cpu", available=10**15), labels=5)  # fmt: skip
    available = as_written.estimate.total - 1  # just too small for the recipe as written
    _small_machine(monkeypatch, available)
    assert main(["run", str(recipe_path), "--auto-fit", "--json"]) == 0
    captured = capsys.readouterr()
    assert "finbert: --auto-fit applies " in captured.err
    (run,) = json.loads(captured.out)["runs"]
    record = json.loads((tmp_path / run["run_dir"] / "run.json").read_text())
    memory = record["memory_estimate"]
    assert memory["fits"] is True and memory["estimate_bytes"]["total"] <= available
    settings = record["settings"]
    assert settings["batch_size"] * settings["gradient_accumulation_steps"] == 16


def test_force_runs_a_model_that_does_not_fit(tmp_path, tiny_bert, monkeypatch):
    from test_faults import write_recipe

    recipe = write_recipe(tmp_path, tiny_bert, max_steps=2)
    _small_machine(monkeypatch, 2**20)
    assert main(["run", str(recipe), "--force"]) == 0


def _load(path, registry):
    return load_recipe(path, model_names=registry.names(), model_methods=registry.methods())


@pytest.mark.parametrize(
    ("size", "problem"),
    [("forty", "cannot read the memory size 'forty'"), ("0GiB", "no memory in the size '0GiB'")],
)
def test_zoo_check_with_a_bad_memory_size_says_how_to_write_it(size, problem, capsys):
    # A bad command line: exit 2, as argparse's own errors.
    with pytest.raises(SystemExit) as exited:
        main(["check", "recipes/koalpaca-lora.toml", "--gpu-memory", size])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith(
        f"zoo check: error: argument --gpu-memory: {problem} "
        "(write it like 40GiB, 80GB or 24576MiB)\n"
    )
    assert "Traceback" not in err
