"""Which device and precision a run uses, and how much memory it took at its peak."""

from __future__ import annotations

import os
import resource
import threading
from typing import Literal

import attrs

from zoo.errors import RunRefused, ZooError

Resolved = Literal["fp32", "fp16", "bf16"]


@attrs.frozen
class DeviceInfo:
    kind: Literal["cuda", "cpu"]
    name: str
    bf16: bool  # the device computes in bfloat16 natively
    tf32: bool = False  # TF32 matrix units (Ampere and newer): fp32 matmuls much faster


def detect() -> DeviceInfo:
    import torch

    if torch.cuda.is_available():
        ampere = torch.cuda.get_device_capability(0)[0] >= 8
        name = torch.cuda.get_device_name(0)
        return DeviceInfo("cuda", name, torch.cuda.is_bf16_supported(), tf32=ampere)
    return DeviceInfo("cpu", f"CPU ({os.cpu_count()} cores)", False)


def check_method(method: str, device: DeviceInfo) -> None:
    """Refuse, before anything loads, a method that this machine cannot run."""
    if method != "qlora":
        return
    if device.kind != "cuda":
        raise RunRefused(
            "method = 'qlora' loads the base model in 4 bits with bitsandbytes, which needs a "
            "CUDA GPU, and this machine has none",
            hint="use method = 'lora' (or 'full' for a small model) on this machine",
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise RunRefused(
            "method = 'qlora' needs the bitsandbytes package, which is not installed",
            hint="pip install bitsandbytes",
        ) from None


def choose_precision(requested: str, device: DeviceInfo) -> Resolved:
    """'auto' picks bf16 (or fp16) on a capable GPU and fp32 on a CPU."""
    if requested == "auto":
        if device.kind == "cuda":
            return "bf16" if device.bf16 else "fp16"
        return "fp32"
    if requested == "fp16" and device.kind != "cuda":
        raise ZooError(
            "training.precision = 'fp16' needs a CUDA GPU, and this machine has none",
            hint="use 'auto' or 'fp32' (or 'bf16', which also runs on a CPU)",
        )
    return requested  # type: ignore[return-value]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory while the block runs.

    On CUDA: the allocator's peak of allocated bytes. On a CPU: the peak resident set size of
    this process, sampled every 50 ms (it includes what the process held before the block).
    """

    def __init__(self, device: DeviceInfo) -> None:
        self.device = device
        self.kind = "cuda_max_allocated" if device.kind == "cuda" else "cpu_peak_rss"
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> PeakMemory:
        if self.device.kind == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        elif os.path.exists("/proc/self/statm"):
            self.peak = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.device.kind == "cuda":
            import torch

            self.peak = int(torch.cuda.max_memory_allocated())
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
        else:  # no /proc (macOS): the process-wide high-water mark, in bytes there
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
