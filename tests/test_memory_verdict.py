"""The memory verdict at its boundary, and the estimate behind it, computed independently.

"Fits" means: the total with its margins (the CUDA context, the allocator's margin) is at most
what the device has. A verdict taken on the live tensors alone (`allocated`) says yes to a run
that the allocator then kills; these tests put the device's memory between the two.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import attrs
import pytest

from zoo.cli import main
from zoo.errors import WontFit
from zoo.memory.check import apply_plan, check_entry, check_recipe, fit, refusal, training_setup
from zoo.memory.estimate import CUDA_CONTEXT, estimate, inference
from zoo.memory.probe import DeviceMemory, named_gpu
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import shape_from_config
from zoo.plugins import get_plugin_manager
from zoo.recipe import load_recipe
from zoo.registry import collect_models

# minilm full fine-tuning, every setting that sizes the estimate written out.
MINILM = """\
[run]
name = "verdict"

[data]
train = "train.csv"

[[models]]
model = "minilm"

[training]
batch_size = 16
max_length = 128
precision = "fp32"
"""


@pytest.fixture(scope="module")
def registry():
    return collect_models(get_plugin_manager(entry_points=False))


@pytest.fixture
def load(tmp_path, registry):
    def load(text: str, name: str = "recipe.toml"):
        (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_recipe(path, model_names=registry.names(), model_methods=registry.methods())

    return load


def gpu(available: int) -> DeviceMemory:
    return DeviceMemory(name="test GPU", kind="cuda", available=available, context=CUDA_CONTEXT)


def verdict(recipe, registry, available: int):
    return check_entry(recipe, recipe.models[0], registry, gpu(available))


# --- the boundary -------------------------------------------------------------------------------


def test_a_device_with_exactly_the_total_fits_and_one_byte_less_does_not(load, registry):
    recipe = load(MINILM)
    total = verdict(recipe, registry, 10**15).estimate.total
    assert verdict(recipe, registry, total).fits
    assert not verdict(recipe, registry, total - 1).fits


def test_room_for_the_live_tensors_but_not_the_margins_does_not_fit(load, registry):
    recipe = load(MINILM)
    est = verdict(recipe, registry, 10**15).estimate
    # The margins are real bytes: the context and a tenth of the live peak.
    assert est.breakdown["context"] == CUDA_CONTEXT
    assert est.breakdown["allocator"] == round(0.10 * est.allocated)
    assert est.total == est.allocated + CUDA_CONTEXT + est.breakdown["allocator"]
    for available in (est.allocated, (est.allocated + est.total) // 2, est.total - 1):
        check = verdict(recipe, registry, available)
        assert not check.fits, available
        assert check.to_json()["fits"] is False
        assert check.suggestions  # it did not fit, so zoo looked for what would


def test_the_verdict_in_json_says_what_it_was_judged_on(load, registry):
    recipe = load(MINILM)
    total = verdict(recipe, registry, 10**15).estimate.total
    check = verdict(recipe, registry, total)
    record = check.to_json()
    assert record["fits"] is True
    assert record["device_bytes"] == total
    assert record["estimate_bytes"]["total"] == total
    assert record["estimate_bytes"] == {**check.estimate.breakdown, "total": total}
    assert record["allocated_bytes"] == check.estimate.allocated
    assert record["peak_phase"] == check.estimate.phase
    assert record["suggestions"] == [] and record["plan"] is None  # it fits: nothing to suggest


def test_zoo_check_exits_7_one_byte_below_the_total_and_0_at_it(load, registry, capsys):
    recipe = load(MINILM)
    # --gpu-memory names a GPU whose CUDA context is still to come, as gpu() does.
    total = check_entry(recipe, recipe.models[0], registry, named_gpu("80GiB")).estimate.total
    path = str(recipe.path("recipe.toml"))
    assert main(["check", path, "--gpu-memory", str(total), "--json"]) == 0
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["fits"] is True and model["estimate_bytes"]["total"] == total
    assert main(["check", path, "--gpu-memory", str(total - 1), "--json"]) == WontFit.exit_code
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["fits"] is False


def test_zoo_run_refuses_a_model_one_byte_short_of_its_total(load, registry):
    recipe = load(MINILM)
    total = verdict(recipe, registry, 10**15).estimate.total
    fitted = fit(recipe, registry, gpu(total - 1), labels=2)
    assert [c.model for c in fitted.refused] == ["minilm"]
    assert fitted.records["minilm"]["fits"] is False
    assert fit(recipe, registry, gpu(total), labels=2).refused == ()


def test_a_suggestion_fits_when_the_device_holds_exactly_its_total(load, registry):
    recipe = load(MINILM)
    check = verdict(recipe, registry, 10**15)
    small = verdict(recipe, registry, check.estimate.total // 2)
    assert small.suggestions
    target = small.suggestions[-1].estimate.total
    exact = verdict(recipe, registry, target)
    assert any(s["fits"] and s["total"] == target for s in exact.to_json()["suggestions"]), (
        "the suggestion whose total is the device's memory"
    )
    assert all(s["fits"] == (s["total"] <= target) for s in exact.to_json()["suggestions"])


def test_a_model_without_an_architecture_always_fits(load, registry):
    recipe = load(MINILM.replace('model = "minilm"', 'model = "tfidf"'))
    check = check_entry(recipe, recipe.models[0], registry, gpu(1))
    assert check.estimate is None and check.fits
    assert check.to_json()["estimate_bytes"] is None


# --- the estimate behind the verdict: the recipe's settings, as the estimator's setup -----------


def expected(recipe, registry, setup: TrainingSetup, *, labels: int = 2, context=CUDA_CONTEXT):
    """The estimator called directly, with the setup written out by hand."""
    spec = registry.get(recipe.models[0].model)
    shape = shape_from_config(spec.resources.architecture, labels)
    return estimate(shape, setup, context=context)


def test_the_check_estimates_the_run_with_the_recipes_own_settings(load, registry):
    recipe = load(MINILM)
    check = verdict(recipe, registry, 10**15)
    by_hand = TrainingSetup(method="full", precision="fp32", batch_size=16, sequence=128)
    assert check.estimate == expected(recipe, registry, by_hand)


def test_precision_auto_is_bf16_on_a_gpu_and_fp32_on_a_cpu(load, registry):
    recipe = load(MINILM.replace('precision = "fp32"', 'precision = "auto"'))
    on_gpu = verdict(recipe, registry, 10**15)
    by_hand = TrainingSetup(method="full", precision="bf16", batch_size=16, sequence=128)
    assert on_gpu.estimate == expected(recipe, registry, by_hand)
    cpu = DeviceMemory(name="CPU", kind="cpu", available=10**15)
    on_cpu = check_entry(recipe, recipe.models[0], registry, cpu)
    by_hand = attrs.evolve(by_hand, precision="fp32", device="cpu")  # and the CPU's kernels
    assert on_cpu.estimate == expected(recipe, registry, by_hand, context=0)


def test_every_training_setting_reaches_the_estimate(load, registry):
    recipe = load(
        MINILM.replace('precision = "fp32"', 'precision = "fp16"')
        + textwrap.dedent(
            """\
            optimizer = "adafactor"
            attention = "eager"
            gradient_checkpointing = true
            gradient_accumulation_steps = 2
            eval_batch_size = 5
            """
        )
    )
    by_hand = TrainingSetup(
        method="full",
        precision="fp16",
        optimizer="adafactor",
        attention="eager",
        gradient_checkpointing=True,
        batch_size=16,
        sequence=128,
        eval_batch_size=5,
        gradient_accumulation_steps=2,
        attention_dropout=True,  # the model's own (MiniLM's config: 0.1)
    )
    assert training_setup(
        recipe, recipe.models[0], registry.get("minilm"), _settings(recipe, registry), gpu(1)
    ) == attrs.evolve(by_hand, lora_targets=registry.get("minilm").resources.lora_targets)
    assert verdict(recipe, registry, 10**15).estimate == expected(
        recipe, registry, attrs.evolve(by_hand, lora_targets=_targets(registry))
    )


def test_lora_rank_and_targets_come_from_the_model_entry(load, registry):
    recipe = load(MINILM.replace('model = "minilm"', MINILM_LORA))
    by_hand = TrainingSetup(
        method="lora",
        precision="fp32",
        batch_size=16,
        sequence=128,
        lora_rank=4,
        lora_targets=("query",),
    )
    assert verdict(recipe, registry, 10**15).estimate == expected(recipe, registry, by_hand)


MINILM_LORA = 'model = "minilm"\nmethod = "lora"\nlora = { r = 4, target_modules = ["query"] }'


def test_lora_without_settings_uses_the_plugins_targets_and_rank_8(load, registry):
    recipe = load(MINILM.replace('model = "minilm"', 'model = "minilm"\nmethod = "lora"'))
    by_hand = TrainingSetup(
        method="lora",
        precision="fp32",
        batch_size=16,
        sequence=128,
        lora_rank=8,
        lora_targets=_targets(registry),
    )
    assert _targets(registry)  # the plugin names some
    assert verdict(recipe, registry, 10**15).estimate == expected(recipe, registry, by_hand)


def test_several_gpus_use_the_recipes_strategy_and_one_gpu_none(load, registry):
    recipe = load(MINILM + '\n[distributed]\nstrategy = "deepspeed-zero3"\n')
    four = DeviceMemory(name="4 GPUs", kind="cuda", available=10**15, context=CUDA_CONTEXT, count=4)
    by_hand = TrainingSetup(
        precision="fp32",
        batch_size=16,
        sequence=128,
        gpus=4,
        strategy="zero3",
        lora_targets=_targets(registry),
    )
    settings = _settings(recipe, registry)
    spec = registry.get("minilm")
    assert training_setup(recipe, recipe.models[0], spec, settings, four) == by_hand
    one = training_setup(recipe, recipe.models[0], spec, settings, gpu(1))
    assert (one.gpus, one.strategy) == (1, "none")
    for strategy, short in (("ddp", "ddp"), ("fsdp", "fsdp"), ("deepspeed-zero2", "zero2")):
        other = load(MINILM + f'\n[distributed]\nstrategy = "{strategy}"\n')
        setup = training_setup(other, other.models[0], spec, settings, four)
        assert setup.strategy == short


def test_gpt_neox_trains_without_dropout(registry, tmp_path):
    path = Path(__file__).parent.parent / "recipes" / "koalpaca-lora.toml"
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    entry = recipe.models[0]
    spec = registry.get(entry.model)
    setup = training_setup(recipe, entry, spec, _settings(recipe, registry, entry), gpu(1))
    assert (setup.hidden_dropout, setup.attention_dropout) == (False, False)
    assert (setup.lora_rank, setup.lora_targets) == (16, ("query_key_value",))
    assert (setup.batch_size, setup.gradient_accumulation_steps, setup.sequence) == (4, 4, 256)


def test_zero_shot_is_estimated_as_evaluation_alone(registry):
    path = Path(__file__).parent.parent / "recipes" / "koalpaca-lora.toml"
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    entry = recipe.models[1]
    assert entry.method == "zero-shot"
    check = check_entry(recipe, entry, registry, named_gpu("40GiB"))
    spec = registry.get(entry.model)
    shape = shape_from_config(spec.resources.architecture, 2)
    setup = training_setup(recipe, entry, spec, _settings(recipe, registry, entry), gpu(1))
    assert setup.method == "full"  # the estimator's setup: no adapters, nothing trains
    assert check.estimate == inference(shape, setup, context=CUDA_CONTEXT)
    assert check.method == "zero-shot" and check.estimate.phase == "evaluation"


def test_a_local_checkpoint_is_estimated_from_its_own_config(load, registry, tmp_path):
    minilm = registry.get("minilm").resources.architecture
    bigger = {**minilm, "num_hidden_layers": 2 * minilm["num_hidden_layers"]}
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(bigger), encoding="utf-8")
    plain = load(MINILM)
    local = load(MINILM.replace('model = "minilm"', 'model = "minilm"\ncheckpoint = "ckpt"'))
    setup = TrainingSetup(precision="fp32", batch_size=16, sequence=128)
    assert verdict(local, registry, 10**15).estimate == estimate(
        shape_from_config(bigger, 2), setup, context=CUDA_CONTEXT
    )
    assert verdict(plain, registry, 10**15).estimate.total < (
        verdict(local, registry, 10**15).estimate.total
    )
    # A checkpoint folder without a config.json: the plugin's architecture.
    (tmp_path / "bare").mkdir()
    bare = load(MINILM.replace('model = "minilm"', 'model = "minilm"\ncheckpoint = "bare"'))
    assert verdict(bare, registry, 10**15).estimate == verdict(plain, registry, 10**15).estimate


def test_the_number_of_labels_sizes_the_head(load, registry):
    recipe = load(MINILM)
    entry = recipe.models[0]
    two = check_entry(recipe, entry, registry, gpu(10**15))
    five = check_entry(recipe, entry, registry, gpu(10**15), labels=5)
    by_hand = TrainingSetup(precision="fp32", batch_size=16, sequence=128)
    assert five.estimate == expected(recipe, registry, by_hand, labels=5)
    assert five.estimate.parameters > two.estimate.parameters


def test_check_recipe_checks_every_model(load, registry):
    recipe = load(MINILM + '\n[[models]]\nmodel = "tfidf"\n')
    checks = check_recipe(recipe, registry, gpu(10**15))
    assert [(c.model, c.estimate is None) for c in checks] == [("minilm", False), ("tfidf", True)]


# --- what zoo does with a verdict ---------------------------------------------------------------


def test_auto_fit_applies_the_plan_and_records_the_check_of_what_will_run(load, registry):
    recipe = load(MINILM)
    total = verdict(recipe, registry, 10**15).estimate.total
    device = gpu(total - 1)
    plan = verdict(recipe, registry, total - 1).plan
    fitted = fit(recipe, registry, device, labels=2, auto_fit=True)
    assert fitted.refused == ()
    assert fitted.applied == (("minilm", plan.change),)
    entry = fitted.recipe.models[0]
    assert entry == apply_plan(recipe.models[0], registry.get("minilm"), plan)
    record = fitted.records["minilm"]
    assert record["fits"] is True
    assert record["estimate_bytes"]["total"] == plan.estimate.total <= total - 1


def test_force_runs_what_does_not_fit_and_records_that_it_does_not(load, registry):
    recipe = load(MINILM)
    total = verdict(recipe, registry, 10**15).estimate.total
    fitted = fit(recipe, registry, gpu(total - 1), labels=2, force=True)
    assert fitted.refused == () and fitted.applied == ()
    assert fitted.recipe == recipe
    assert fitted.records["minilm"]["fits"] is False


def test_a_lora_plan_gives_the_entry_the_rank_and_targets_it_was_estimated_with(registry):
    path = Path(__file__).parent.parent / "recipes" / "koalpaca-full.toml"
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    entry, spec = recipe.models[0], registry.get(recipe.models[0].model)
    check = check_entry(recipe, entry, registry, named_gpu("40GiB"))
    lora = next(p for p in check.suggestions if p.settings == {"method": "lora"})
    applied = apply_plan(entry, spec, lora)
    assert applied.method == "lora"
    assert (applied.lora.r, applied.lora.target_modules) == (8, spec.resources.lora_targets)
    zero3 = next(p for p in check.suggestions if "gpus" in p.settings)
    # More GPUs are hardware: the entry keeps its settings.
    assert apply_plan(entry, spec, zero3) == entry


def test_the_refusal_names_the_models_the_sizes_and_the_way_out(load, registry):
    recipe = load(MINILM)
    total = verdict(recipe, registry, 10**15).estimate.total
    device = gpu(total - 1)
    fitted = fit(recipe, registry, device, labels=2)
    error = refusal(recipe, fitted.refused, device)
    assert isinstance(error, WontFit)
    from zoo.report import human_bytes

    plan = fitted.refused[0].plan
    assert error.message == (
        f"verdict: 'minilm' would not fit in memory on test GPU (estimated {human_bytes(total)} "
        f"per device, {human_bytes(total - 1)} available); nothing was loaded"
    )
    assert error.hint == (
        f"--auto-fit applies the cheapest plan that fits ({plan.change}); --force runs it anyway"
    )
    nothing = refusal(recipe, (attrs.evolve(fitted.refused[0], plan=None),), device)
    assert nothing.hint == (
        "train it on a larger GPU, or on several (see zoo check --gpus N); --force runs it anyway"
    )


def _settings(recipe, registry, entry=None):
    from zoo.recipe import settings_for

    entry = entry or recipe.models[0]
    return settings_for(recipe, entry, registry.get(entry.model))


def _targets(registry) -> tuple[str, ...]:
    return tuple(registry.get("minilm").resources.lora_targets)


# --- what mutation testing found unchecked ------------------------------------------------------


def test_the_json_of_a_refused_model_has_the_documented_keys(load, registry):
    recipe = load(MINILM)
    total = verdict(recipe, registry, 10**15).estimate.total
    check = verdict(recipe, registry, total - 1)
    est, plan = check.estimate, check.plan
    assert check.to_json() == {
        "model": "minilm",
        "method": "full",
        "estimate_bytes": {**est.breakdown, "total": total},
        "allocated_bytes": est.allocated,
        "peak_phase": est.phase,
        "approximate": False,
        "family": "bert",
        "kernels": "cuda",
        "head": "classifier",
        "logits_bytes": est.logits,
        "device": "test GPU",
        "device_bytes": total - 1,
        "fits": False,
        "suggestions": [
            {
                "change": s.change,
                "settings": s.settings,
                "total": s.estimate.total,
                "fits": s.estimate.total <= total - 1,
            }
            for s in check.suggestions
        ],
        "plan": {"change": plan.change, "settings": plan.settings, "total": plan.estimate.total},
    }
    assert plan.settings and plan.estimate.total <= total - 1


def test_two_gpus_are_already_several(load, registry):
    recipe = load(MINILM + '\n[distributed]\nstrategy = "deepspeed-zero3"\n')
    two = DeviceMemory(name="2 GPUs", kind="cuda", available=10**15, context=CUDA_CONTEXT, count=2)
    check = check_entry(recipe, recipe.models[0], registry, two)
    by_hand = TrainingSetup(precision="fp32", batch_size=16, sequence=128, gpus=2, strategy="zero3")
    assert check.estimate == expected(recipe, registry, by_hand)


def test_a_model_with_its_own_engine_is_not_estimated_even_with_an_architecture(load, registry):
    import zoo

    class Plugin:
        @zoo.hookimpl
        def register_models(self, register):
            register(
                zoo.ModelSpec(
                    name="own-engine",
                    description="a transformer's shape, trained by its own code",
                    source=zoo.LocalSource(path=Path(".")),
                    family="bert",
                    resources=zoo.Resources(
                        architecture=registry.get("minilm").resources.architecture
                    ),
                    engine=zoo.CustomEngine(train=lambda *a: None, predict=lambda *a: None),
                )
            )

    pm = get_plugin_manager(entry_points=False, builtins=False)
    pm.register(Plugin(), name="own-engine")
    own = collect_models(pm)
    path = load(MINILM).path("recipe.toml")
    path.write_text(MINILM.replace('"minilm"', '"own-engine"'), encoding="utf-8")
    recipe = load_recipe(path, model_names=own.names(), model_methods=own.methods())
    check = check_entry(recipe, recipe.models[0], own, gpu(1))
    assert (check.model, check.method, check.estimate, check.fits) == (
        "own-engine",
        "full",
        None,
        True,
    )


def test_zero_shot_on_a_device_measured_after_its_context(registry):
    path = Path(__file__).parent.parent / "recipes" / "koalpaca-lora.toml"
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    entry = recipe.models[1]
    measured = DeviceMemory(name="a measured GPU", kind="cuda", available=10**15)  # context 0
    check = check_entry(recipe, entry, registry, measured)
    spec = registry.get(entry.model)
    setup = training_setup(recipe, entry, spec, _settings(recipe, registry, entry), measured)
    shape = shape_from_config(spec.resources.architecture, 2)
    assert check.estimate == inference(shape, setup, context=0)
    assert check.estimate.breakdown["context"] == 0
    assert (check.model, check.device) == ("koalpaca-5.8b-zero-shot", measured)


def test_cuda_only_ways_out_are_offered_on_a_gpu_and_not_on_a_cpu(registry):
    path = Path(__file__).parent.parent / "recipes" / "koalpaca-full.toml"
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    on_gpu = check_entry(recipe, recipe.models[0], registry, named_gpu("40GiB"))
    cpu = DeviceMemory(name="CPU", kind="cpu", available=40 * 2**30)
    on_cpu = check_entry(recipe, recipe.models[0], registry, cpu)
    assert {"8-bit AdamW", "QLoRA (4-bit base)"} <= {s.change for s in on_gpu.suggestions}
    offered = " + ".join(s.change for s in on_cpu.suggestions)
    assert "8-bit" not in offered and "QLoRA" not in offered
    assert "LoRA" in offered


def test_a_qlora_plan_gives_the_entry_lora_settings_too(registry):
    path = Path(__file__).parent.parent / "recipes" / "koalpaca-full.toml"
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    entry, spec = recipe.models[0], registry.get(recipe.models[0].model)
    check = check_entry(recipe, entry, registry, named_gpu("40GiB"))
    qlora = next(p for p in check.suggestions if p.settings == {"method": "qlora"})
    applied = apply_plan(entry, spec, qlora)
    assert applied.method == "qlora"
    assert (applied.lora.r, applied.lora.target_modules) == (8, spec.resources.lora_targets)


def test_fit_sizes_the_head_for_the_datas_labels(load, registry):
    recipe = load(MINILM)
    fitted = fit(recipe, registry, gpu(10**15), labels=5)
    five = check_entry(recipe, recipe.models[0], registry, gpu(10**15), labels=5)
    assert fitted.records["minilm"] == five.to_json()
    # --auto-fit checks the fitted entry again, with the same labels.
    total = five.estimate.total
    refitted = fit(recipe, registry, gpu(total - 1), labels=5, auto_fit=True)
    entry = refitted.recipe.models[0]
    again = check_entry(refitted.recipe, entry, registry, gpu(total - 1), labels=5)
    assert refitted.records["minilm"] == again.to_json()


def test_auto_fit_to_lora_writes_the_rank_and_targets_into_the_entry(registry):
    path = Path(__file__).parent.parent / "recipes" / "koalpaca-full.toml"
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    spec = registry.get(recipe.models[0].model)
    fitted = fit(recipe, registry, named_gpu("40GiB"), labels=5, auto_fit=True)
    (entry,) = fitted.recipe.models
    assert fitted.applied == (("koalpaca-12.8b", "LoRA"),)
    assert (entry.method, entry.lora.r, entry.lora.target_modules) == (
        "lora",
        8,
        spec.resources.lora_targets,
    )
    assert fitted.records["koalpaca-12.8b"]["fits"] is True


def test_the_refusal_lists_every_model_that_does_not_fit(load, registry):
    recipe = load(
        MINILM.replace('model = "minilm"', 'model = "minilm"\n\n[[models]]\nmodel = "e5-small"')
    )
    device = gpu(2**30)  # not even the CUDA context and a tenth of a model
    fitted = fit(recipe, registry, device, labels=2)
    error = refusal(recipe, fitted.refused, device)
    assert error.message.startswith("verdict: 'minilm', 'e5-small' would not fit in memory on ")
    largest = max(c.estimate.total for c in fitted.refused)
    from zoo.report import human_bytes

    assert f"(estimated {human_bytes(largest)} per device, " in error.message
