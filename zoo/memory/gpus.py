"""GPUs by name: the presets that `zoo check --gpu NAME` plans for, the one table of them.

Users name a GPU ("a T4", "an A100 40GB"), not a byte count. A preset is the memory such a GPU
shows a process and whether it has bf16 and TF32 units; `preset_device` turns it into the same
`DeviceMemory` that `--gpu-memory` gives (`probe.named_gpu`), the CUDA context still to come.
"""

from __future__ import annotations

import difflib
import re

import attrs

from zoo.errors import UsageError
from zoo.memory.probe import DeviceMemory

MiB = 2**20
GiB = 2**30


@attrs.frozen(kw_only=True)
class GpuPreset:
    name: str  # what the command line says: lower case, e.g. "a100-40gb"
    label: str  # what people call it, e.g. "NVIDIA A100 40GB"
    memory: int  # bytes per GPU, before the CUDA context
    bf16: bool  # bfloat16 natively (Ampere and newer)
    tf32: bool  # TF32 matrix units (Ampere and newer)

    @property
    def gib(self) -> float:
        return self.memory / GiB


def _gpu(name: str, label: str, mib: int, *, ampere: bool) -> GpuPreset:
    return GpuPreset(name=name, label=label, memory=mib * MiB, bf16=ampere, tf32=ampere)


# The memory is the total that nvidia-smi reports (memory.total) with a recent driver, in MiB,
# as it shows on a cloud instance of each GPU: what a process can have, less the CUDA context,
# which zoo still subtracts (CUDA_CONTEXT, as `named_gpu` does). It is not the marketing size:
# an H100 "80GB" shows 81559 MiB, an L4 "24GB" 23034 MiB. Older drivers and ECC report a few
# hundred MiB less (a T4 15109 MiB, an A100 40GB 40536 MiB); `--gpu-memory` takes the exact
# number when it matters. bf16 and TF32: compute capability 8.0 and newer (Ampere, Ada, Hopper);
# the T4 (Turing, 7.5) and the V100 (Volta, 7.0) train in fp16 under precision 'auto'.
PRESETS: tuple[GpuPreset, ...] = (
    _gpu("t4", "NVIDIA T4", 15360, ampere=False),
    _gpu("v100-16gb", "NVIDIA V100 16GB", 16384, ampere=False),
    _gpu("v100-32gb", "NVIDIA V100 32GB", 32768, ampere=False),
    _gpu("a10", "NVIDIA A10", 23028, ampere=True),
    _gpu("a10g", "NVIDIA A10G", 23028, ampere=True),
    _gpu("l4", "NVIDIA L4", 23034, ampere=True),
    _gpu("rtx-3090", "NVIDIA GeForce RTX 3090", 24576, ampere=True),
    _gpu("rtx-4090", "NVIDIA GeForce RTX 4090", 24564, ampere=True),
    _gpu("a100-40gb", "NVIDIA A100 40GB", 40960, ampere=True),
    _gpu("l40s", "NVIDIA L40S", 46068, ampere=True),
    _gpu("rtx-a6000", "NVIDIA RTX A6000", 49140, ampere=True),
    _gpu("h100-80gb", "NVIDIA H100 80GB", 81559, ampere=True),
    _gpu("a100-80gb", "NVIDIA A100 80GB", 81920, ampere=True),
    _gpu("h200", "NVIDIA H200", 143771, ampere=True),
)


def _key(text: str) -> str:
    """What a spelling comes down to: case, spaces, '-' and '_' do not count, a leading
    'NVIDIA' neither, and a size's 'G' is 'GB' ('A100 40G', 'a100_40gb', 'NVIDIA A100-40GB')."""
    key = re.sub(r"[\s_-]+", "", text.lower())
    key = key.removeprefix("nvidia")
    return re.sub(r"(?<=[0-9])g$", "gb", key)


# A preset by its name or its label ("NVIDIA GeForce RTX 4090", as nvidia-smi prints it).
_BY_KEY = {_key(spelling): p for p in PRESETS for spelling in (p.name, p.label)}


def names() -> tuple[str, ...]:
    return tuple(p.name for p in PRESETS)


def find_preset(name: str) -> GpuPreset:
    """The preset a user's spelling names; an unknown one says which preset is close."""
    found = _BY_KEY.get(_key(name))
    if found is not None:
        return found
    guesses = _guesses(name)
    guess = f" (did you mean {' or '.join(map(repr, guesses))}?)" if guesses else ""
    raise UsageError(
        f"unknown GPU {name!r}{guess}",
        hint=f"the GPU presets are {', '.join(names())}; or give the memory with --gpu-memory",
    )


def _guesses(name: str) -> list[str]:
    # A name that leaves out the size or the brand ('a100', 'v100', '4090') names the presets
    # that hold it; anything else, the closest spellings.
    key = _key(name)
    holding = list(dict.fromkeys(p.name for k, p in _BY_KEY.items() if key and key in k))
    if 0 < len(holding) <= 3:
        return holding
    spelled = re.sub(r"[\s_]+", "-", name.strip().lower())
    return difflib.get_close_matches(spelled, names(), n=2, cutoff=0.5)


def preset_device(name: str, count: int = 1) -> DeviceMemory:
    """`count` GPUs of the preset `name`, as `named_gpu` gives them: the CUDA context still to
    come, the preset's bf16 and TF32."""
    from zoo.memory.estimate import CUDA_CONTEXT

    preset = find_preset(name)
    assumed = f"preset {preset.name}: {preset.gib:.1f} GiB"
    return DeviceMemory(
        name=f"{preset.label} ({assumed})"
        if count == 1
        else f"{count} x {preset.label} ({assumed} each)",
        kind="cuda",
        available=preset.memory,
        context=CUDA_CONTEXT,
        count=count,
        bf16=preset.bf16,
        tf32=preset.tf32,
        preset=preset.name,
    )


def preset_lines() -> list[str]:
    """One line per preset, aligned, for `--help` and plain text."""
    width = max(len(p.name) for p in PRESETS)
    return [f"{p.name:<{width}}  {p.gib:5.1f} GiB  {units(p):<10}  {p.label}" for p in PRESETS]


def units(preset: GpuPreset) -> str:
    """'bf16, TF32', or 'fp16 only' for a GPU without either."""
    have = [unit for unit, on in (("bf16", preset.bf16), ("TF32", preset.tf32)) if on]
    return ", ".join(have) or "fp16 only"


# Words of a device name that say nothing about which GPU it is.
_BRAND_WORDS = {"nvidia", "tesla", "geforce", "rtx", "pcie", "sxm", "sxm4", "sxm5", "hbm3", "nvl"}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def preset_for(device_name: str, memory: int) -> GpuPreset | None:
    """The preset of a CUDA device as torch names it ('NVIDIA A100-SXM4-80GB', 'Tesla T4',
    'NVIDIA H100 80GB HBM3'), by the model in its name (A100, T4, ...) and, among the sizes of
    that model, the one closest to its total `memory`; None when no preset is that GPU."""
    found = _BY_KEY.get(_key(device_name))
    if found is not None:
        return found
    words = _words(device_name)
    matching = [
        p
        for p in PRESETS
        if (model := {w for w in _words(p.label) - _BRAND_WORDS if not w.endswith("gb")})
        and model <= words
    ]
    if not matching:
        return None
    return min(matching, key=lambda p: abs(p.memory - memory))
