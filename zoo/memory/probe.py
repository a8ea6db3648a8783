"""The device a run will use and how much memory it has: probes that plugins register through
`register_device_probes`, CUDA and CPU built in.

Another back-end (ROCm, MPS, a cluster's scheduler) is a plugin that registers a probe; the first
answer wins, plugins' probes before the built-in one. `probe_device` is the one place that asks:
`zoo check` and `zoo run` plan memory with its answer, and the engine trains on that device.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from zoo.errors import PluginError, UsageError
from zoo.hookspecs import hookimpl
from zoo.plugins import registrations

if TYPE_CHECKING:
    import pluggy


@attrs.frozen(kw_only=True)
class DeviceMemory:
    """Memory a run may use on each of its devices."""

    name: str  # e.g. "NVIDIA H100 80GB HBM3" or "a GPU with 40 GiB"
    kind: str  # "cuda" or "cpu": which precision 'auto' resolves to, which methods can run
    available: int  # bytes a run can use per device, before any of its own tensors
    # What the device runtime takes once a process starts: 0 when `available` was measured
    # after it started (the probe's own process made the CUDA context already).
    context: int = 0
    count: int = 1  # devices of this kind
    # What the engine picks precision by: bf16 natively, TF32 matrix units (Ampere and newer).
    # A CUDA device without bf16 trains in fp16 under precision 'auto'.
    bf16: bool = False
    tf32: bool = False
    # The GPU preset it stands for (`zoo.memory.gpus`, `--gpu NAME`), e.g. "a100-40gb"; None for
    # a probed device or one given by its memory.
    preset: str | None = None


_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    """'40GiB', '80 GB', '24576MiB' or a number of bytes."""
    match = _SIZE.match(text)
    size = int(float(match[1]) * _UNITS[(match[2] or "b").lower()]) if match else 0
    if size <= 0:
        what = "cannot read the memory size" if not match else "no memory in the size"
        raise UsageError(f"{what} {text!r}", hint="write it like 40GiB, 80GB or 24576MiB")
    return size


def named_gpu(memory: str, count: int = 1) -> DeviceMemory:
    """A GPU the user names (`--gpu-memory`), with the CUDA context still to come."""
    from zoo.memory.estimate import CUDA_CONTEXT

    size = parse_size(memory)
    return DeviceMemory(
        name=f"GPU with {size / 2**30:.0f} GiB"
        if count == 1
        else f"{count} GPUs with {size / 2**30:.0f} GiB each",
        kind="cuda",
        available=size,
        context=CUDA_CONTEXT,
        count=count,
    )


Probe = Callable[[], "DeviceMemory | None"]


def probe_device(pm: pluggy.PluginManager) -> DeviceMemory:
    """Ask the registered probes in turn; the first answer wins."""
    for plugin, probe in _probes(pm):
        try:
            found = probe()
        except Exception as exc:
            raise PluginError(
                f"the device probe of plugin {plugin!r} failed: {type(exc).__name__}: {exc}",
                hint=f"fix the plugin, or leave it out with ZOO_BLOCK_PLUGINS={plugin}",
            ) from exc
        if found is None:
            continue
        if not isinstance(found, DeviceMemory):
            raise PluginError(
                f"the device probe of plugin {plugin!r} returned {found!r}, which is not a "
                "zoo.DeviceMemory",
                hint="a probe returns a zoo.DeviceMemory, or None to let the next one answer",
            )
        return found
    raise PluginError(
        "no device probe answered: zoo cannot tell which device to plan for",
        hint="do not block the built-in probe (zoo.memory.probe) with ZOO_BLOCK_PLUGINS",
    )


def _probes(pm: pluggy.PluginManager) -> list[tuple[str, Probe]]:
    # The third-party probes first, the built-in (trylast) last; one that fails to register is
    # an error naming its plugin.
    found = registrations(pm, "register_device_probes", None, order="pluggy")
    return [(plugin, probe) for plugin, probe, _replace in found]


def builtin_probe() -> DeviceMemory:
    """CUDA through torch (free memory of device 0, after this process's context), else this
    machine's available RAM."""
    from zoo.engine.device import cuda_device

    return cuda_device() or cpu_device()


def cpu_device() -> DeviceMemory:
    return DeviceMemory(name=f"CPU ({os.cpu_count()} cores)", kind="cpu", available=_ram())


@hookimpl(trylast=True)
def register_device_probes(register: Callable[[Probe], None]) -> None:
    register(builtin_probe)


def _ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
