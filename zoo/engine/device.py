"""Which device, precision and weights dtype a run uses, what this machine refuses to run, and
how much memory a run took at its peak."""

from __future__ import annotations

import os
import resource
import threading
from typing import TYPE_CHECKING, Literal

import attrs

from zoo.errors import RunRefused, ZooError
from zoo.spec import trains_weights

if TYPE_CHECKING:
    from zoo.memory.probe import DeviceMemory
    from zoo.recipe import TrainingConfig

Resolved = Literal["fp32", "fp16", "bf16"]
# A torch dtype by name (`getattr(torch, name)`): this module does not import torch.
WeightsDtype = Literal["float32", "bfloat16", "float16"]
SIXTEEN_BITS: dict[str, WeightsDtype] = {"bf16": "bfloat16", "fp16": "float16"}


@attrs.frozen
class DeviceInfo:
    kind: Literal["cuda", "cpu"]
    name: str
    bf16: bool  # the device computes in bfloat16 natively
    tf32: bool = False  # TF32 matrix units (Ampere and newer): fp32 matmuls much faster


def detect(probed: DeviceMemory | None = None) -> DeviceInfo:
    """The device a run trains on, as the device probes found it (`zoo.memory.probe
    .probe_device`, hook `register_device_probes`); without their answer, the built-in probe's."""
    if probed is None:
        from zoo.memory.probe import builtin_probe

        probed = builtin_probe()
    kind: Literal["cuda", "cpu"] = "cuda" if probed.kind == "cuda" else "cpu"
    return DeviceInfo(kind, probed.name, probed.bf16, tf32=probed.tf32)


def cuda_device() -> DeviceMemory | None:
    """CUDA device 0 through torch, None without CUDA: the built-in probe's GPU half."""
    import torch

    from zoo.memory.probe import DeviceMemory

    if not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(0)
    return DeviceMemory(
        name=torch.cuda.get_device_name(0),
        kind="cuda",
        available=int(free),
        count=torch.cuda.device_count(),
        bf16=torch.cuda.is_bf16_supported(),
        tf32=torch.cuda.get_device_capability(0)[0] >= 8,
    )


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
    _needs_bitsandbytes("method = 'qlora'")


def check_training(method: str, settings: TrainingConfig, device: DeviceInfo) -> None:
    """Refuse, before anything loads, training settings that this machine cannot run.

    For zoo's own engine: a plugin's custom engine (the TF-IDF baseline) has no optimizer.
    """
    if not trains_weights(method) or settings.optimizer != "adamw-8bit":
        return
    if device.kind != "cuda":
        raise RunRefused(
            "optimizer = 'adamw-8bit' keeps AdamW's state in 8 bits with bitsandbytes, which "
            "needs a CUDA GPU, and this machine has none",
            hint="use optimizer = 'adamw' on this machine (or 'adafactor', whose state is small "
            "too)",
        )
    _needs_bitsandbytes("optimizer = 'adamw-8bit'")


def _needs_bitsandbytes(what: str) -> None:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise RunRefused(
            f"{what} needs the bitsandbytes package, which is not installed",
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


def weights_dtype(method: str, precision: Resolved, device_kind: str) -> WeightsDtype:
    """The dtype that the weights load in, given the method and the resolved precision.

    transformers 5 loads a checkpoint in its own dtype unless told otherwise (fp16 for
    Polyglot-ko/KoAlpaca), which is wrong for training:

    - full: float32. The optimizer updates these weights; under mixed precision (bf16/fp16
      autocast) they are the fp32 master weights (16-bit weights lose small updates, and fp16
      ones break the fp16 loss scaler).
    - lora on a GPU in bf16/fp16: the frozen base in that 16-bit dtype (half the memory; it is
      never updated); the adapters and the fresh head are kept in float32
      (`zoo.engine.adapters.apply_lora`). On a CPU, float32: CPU autocast computes in bf16 from
      fp32 weights.
    - qlora: float32 for what bitsandbytes leaves unquantised (embeddings, norms, head);
      the 4-bit layers compute in bf16 whatever this says.
    - zero-shot, few-shot: inference only, in the precision's dtype (16-bit on a GPU with
      'auto', fp32 on a CPU unless the recipe asks for bf16).
    """
    sixteen = SIXTEEN_BITS.get(precision)
    if not trains_weights(method):
        return sixteen or "float32"
    if method == "lora" and device_kind == "cuda" and sixteen:
        return sixteen
    return "float32"


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


@attrs.frozen(kw_only=True)
class TorchBuild:
    """What torch was built for, and what it sees on this machine."""

    version: str
    cuda: str | None  # the CUDA version torch was built with; None: a CPU build
    cudnn: int | None
    devices: int  # CUDA devices torch sees


@attrs.frozen(kw_only=True)
class CudaDevice:
    """One CUDA device, as torch describes it."""

    index: int
    name: str
    memory: int  # total bytes
    capability: tuple[int, int]
    bf16: bool
    tf32: bool  # TF32 matrix units: compute capability 8.0 and newer


def torch_build() -> TorchBuild:
    import torch

    available = torch.cuda.is_available()
    return TorchBuild(
        version=torch.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if available else None,
        devices=torch.cuda.device_count() if available else 0,
    )


def cuda_devices() -> list[CudaDevice]:
    """Every CUDA device torch sees (none without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        capability = (props.major, props.minor)
        with torch.cuda.device(index):
            bf16 = torch.cuda.is_bf16_supported()
        found.append(
            CudaDevice(
                index=index,
                name=props.name,
                memory=int(props.total_memory),
                capability=capability,
                bf16=bf16,
                tf32=capability >= (8, 0),
            )
        )
    return found
