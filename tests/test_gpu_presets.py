"""GPU presets: the GPUs `zoo check --gpu NAME` plans for, by the names people use.

Each preset stands for a GPU as `--gpu-memory` with its size would (the CUDA context still to
come), and says its bf16 and TF32; a check on a preset reads as one on that GPU.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from zoo.errors import UsageError
from zoo.memory.check import check_recipe
from zoo.memory.gpus import (
    PRESETS,
    find_preset,
    names,
    preset_device,
    preset_for,
    preset_lines,
)
from zoo.memory.probe import named_gpu
from zoo.recipe import load_recipe
from zoo.registry import collect_models
from zoo.report import gpu_presets_table

GiB = 2**30
RECIPES = Path(__file__).parent.parent / "recipes"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_preset_is_a_sane_gpu(preset):
    assert preset.name == preset.name.lower() and " " not in preset.name
    assert 8 * GiB < preset.memory < 200 * GiB
    assert preset.memory % 2**20 == 0  # nvidia-smi's MiB
    assert preset.label.startswith("NVIDIA ")
    # The label names the GPU the name does: 'a100-40gb' is an "NVIDIA A100 40GB".
    model = preset.name.split("-")[-1] if preset.name.startswith("rtx-") else preset.name
    assert model.split("-")[0].upper() in preset.label.upper()
    assert preset.bf16 == preset.tf32  # the same units: Ampere and newer


def test_preset_names_and_spellings_are_unique():
    assert len(set(names())) == len(PRESETS)
    for preset in PRESETS:
        assert find_preset(preset.name) is preset
        assert find_preset(preset.label) is preset


def test_the_presets_say_the_memory_each_gpu_shows_and_its_units():
    memory = {p.name: p.memory // 2**20 for p in PRESETS}
    assert memory["t4"] == 15360 and memory["a100-40gb"] == 40960
    assert memory["a100-80gb"] == 81920 and memory["h100-80gb"] == 81559
    assert memory["h200"] == 143771 and memory["l4"] == 23034
    bf16 = {p.name for p in PRESETS if p.bf16}
    assert {"t4", "v100-16gb", "v100-32gb"}.isdisjoint(bf16)
    assert {"a100-40gb", "a10g", "l4", "l40s", "h100-80gb", "h200", "rtx-3090"} <= bf16


@pytest.mark.parametrize(
    "spelling",
    ["a100-40gb", "A100-40GB", "a100 40gb", "A100 40GB", "a100_40g", "a100-40G", " a100-40gb ",
     "NVIDIA A100 40GB", "nvidia-a100-40gb"],
)  # fmt: skip
def test_common_spellings_name_the_same_preset(spelling):
    assert find_preset(spelling).name == "a100-40gb"


@pytest.mark.parametrize(
    ("spelling", "name"),
    [("T4", "t4"), ("RTX 4090", "rtx-4090"), ("rtx4090", "rtx-4090"), ("A10G", "a10g"),
     ("a10", "a10"), ("NVIDIA GeForce RTX 3090", "rtx-3090"), ("RTX-A6000", "rtx-a6000"),
     ("H100 80GB", "h100-80gb"), ("v100_16g", "v100-16gb")],
)  # fmt: skip
def test_spellings_resolve(spelling, name):
    assert find_preset(spelling).name == name


@pytest.mark.parametrize(
    ("spelling", "guess"),
    [("a100", "'a100-40gb' or 'a100-80gb'"), ("h100", "'h100-80gb'"), ("4090", "'rtx-4090'"),
     ("h20", "'h200'"), ("a100-40", "'a100-40gb'"), ("l40", "'l40s'")],
)  # fmt: skip
def test_an_unknown_gpu_says_which_preset_is_close(spelling, guess):
    with pytest.raises(UsageError) as raised:
        find_preset(spelling)
    assert raised.value.message == f"unknown GPU {spelling!r} (did you mean {guess}?)"
    assert "a100-40gb" in raised.value.hint and "--gpu-memory" in raised.value.hint


def test_a_gpu_nothing_like_a_preset_lists_the_presets():
    with pytest.raises(UsageError) as raised:
        preset_device("quadro")
    assert raised.value.message == "unknown GPU 'quadro'"
    assert all(name in raised.value.hint for name in names())


def test_a_preset_is_the_gpu_its_memory_names():
    preset, sized = preset_device("a100-40gb"), named_gpu("40GiB")
    assert (preset.kind, preset.available, preset.context, preset.count) == (
        sized.kind, sized.available, sized.context, sized.count)  # fmt: skip
    assert preset.bf16 and preset.tf32 and not sized.bf16
    assert preset.preset == "a100-40gb" and sized.preset is None
    assert preset.name == "NVIDIA A100 40GB (preset a100-40gb: 40.0 GiB)"


def test_several_gpus_of_a_preset():
    device = preset_device("H100 80GB", count=4)
    assert device.count == 4 and device.available == 81559 * 2**20
    assert device.name == "4 x NVIDIA H100 80GB (preset h100-80gb: 79.6 GiB each)"
    assert not preset_device("t4").bf16


@pytest.fixture
def registry():
    from zoo.plugins import get_plugin_manager

    return collect_models(get_plugin_manager(entry_points=False))


def test_koalpaca_full_does_not_fit_an_a100_40gb_preset_and_more_gpus_name_it(registry):
    recipe = load_recipe(
        RECIPES / "koalpaca-full.toml",
        model_names=registry.names(),
        model_methods=registry.methods(),
    )
    (on_preset,) = check_recipe(recipe, registry, preset_device("a100-40gb"))
    (on_size,) = check_recipe(recipe, registry, named_gpu("40GiB"))
    assert not on_preset.fits and not on_size.fits
    assert on_preset.estimate.total == on_size.estimate.total
    assert [p.estimate.total for p in on_preset.suggestions] == [
        p.estimate.total for p in on_size.suggestions
    ]
    more = [p.change for p in on_preset.suggestions if "ZeRO-3" in p.change]
    assert len(more) == 1 and more[0].endswith(" x a100-40gb GPUs with ZeRO-3")
    # A device given by its memory keeps the plain words.
    assert any(p.change.endswith(" GPUs with ZeRO-3") and " x " not in p.change
               for p in on_size.suggestions)  # fmt: skip
    assert on_preset.plan.change == on_size.plan.change


def test_the_preset_table_lists_every_preset():
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(gpu_presets_table())
    text = console.file.getvalue()
    lines = preset_lines()
    assert len(lines) == len(PRESETS)
    for preset, line in zip(PRESETS, lines, strict=True):
        assert preset.name in text and preset.label in text
        assert line.split()[0] == preset.name and preset.label in line
    assert "40.0 GiB" in text and "fp16 only" in text
    assert lines[0] == "t4          15.0 GiB  fp16 only   NVIDIA T4"


@pytest.mark.parametrize(
    ("name", "gib", "preset"),
    [
        ("NVIDIA A100-SXM4-80GB", 80, "a100-80gb"),
        ("NVIDIA A100-PCIE-40GB", 40, "a100-40gb"),
        ("Tesla T4", 15, "t4"),
        ("NVIDIA H100 80GB HBM3", 79, "h100-80gb"),
        ("NVIDIA H200", 140, "h200"),
        ("NVIDIA A10G", 22, "a10g"),
        ("NVIDIA A10", 22, "a10"),
        ("Tesla V100-SXM2-32GB", 32, "v100-32gb"),
        ("NVIDIA GeForce RTX 4090", 24, "rtx-4090"),
        ("NVIDIA RTX A6000", 48, "rtx-a6000"),
        ("NVIDIA GeForce RTX 3080", 10, None),  # no preset for it
        ("NVIDIA B200", 180, None),
    ],
)
def test_a_gpu_is_matched_to_its_preset_by_the_name_torch_gives(name, gib, preset):
    # zoo doctor names the preset of each GPU it finds.
    found = preset_for(name, gib * 2**30)
    assert (found.name if found else None) == preset
