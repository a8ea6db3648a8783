"""How much memory the device that a run will use has: a plugin hook, CUDA and CPU built in.

Another back-end (ROCm, MPS, a cluster's scheduler) is a plugin that implements
`zoo_device_memory`; the first answer wins, plugins before the built-ins.
"""

from __future__ import annotations

import os
import re

import attrs

from zoo.errors import UsageError
from zoo.hookspecs import hookimpl


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


@hookimpl(trylast=True)
def zoo_device_memory() -> DeviceMemory | None:
    """CUDA through torch (free memory of device 0, after this process's context), else this
    machine's available RAM."""
    import torch

    if torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(0)
        return DeviceMemory(
            name=torch.cuda.get_device_name(0),
            kind="cuda",
            available=int(free),
            count=torch.cuda.device_count(),
        )
    return DeviceMemory(name=f"CPU ({os.cpu_count()} cores)", kind="cpu", available=_ram())


def _ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
