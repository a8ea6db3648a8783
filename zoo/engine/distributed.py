"""Several processes, one run: what torchrun (or accelerate launch) starts, zoo keeps as one.

The processes train together through the Trainer (DDP, FSDP or DeepSpeed); only the main one
(rank 0) writes run directories, records and tables. No torch import until one is needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def world() -> tuple[int, int]:
    """(rank, number of processes) as torchrun and accelerate set them; (0, 1) alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return world()[0] == 0


def _process_group() -> None:
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


def on_main(make: Callable[[], T]) -> T:
    """Run `make` on the main process only and hand its result to every process."""
    if world()[1] == 1:
        return make()
    import torch.distributed as dist

    _process_group()
    box = [make() if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def trainer_arguments(strategy: str, config: dict | None, *, cpu: bool) -> dict:
    """TrainingArguments for the recipe's [distributed] strategy."""
    if strategy == "ddp":
        return {"ddp_backend": "gloo"} if cpu and world()[1] > 1 else {}
    if strategy == "fsdp":
        return {"fsdp": "full_shard auto_wrap", "fsdp_config": dict(config or {})}
    stage = 2 if strategy == "deepspeed-zero2" else 3
    deepspeed = {
        "zero_optimization": {"stage": stage, "overlap_comm": True},
        # "auto": the Trainer fills these in from its own arguments.
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "train_batch_size": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
    }
    for key, value in (config or {}).items():
        if isinstance(value, dict) and isinstance(deepspeed.get(key), dict):
            deepspeed[key] = {**deepspeed[key], **value}
        else:
            deepspeed[key] = value
    return {"deepspeed": deepspeed}


def check_strategy(strategy: str) -> None:
    """Refuse a DeepSpeed strategy before loading anything when DeepSpeed is missing."""
    import importlib.util

    from zoo.errors import RunRefused

    if strategy.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        raise RunRefused(
            f"[distributed] strategy = {strategy!r} needs the deepspeed package, which is not "
            "installed",
            hint="pip install deepspeed (on a CUDA machine), or use strategy = 'fsdp'",
        )


def launch(nproc: int, argv: list[str], module: str = "zoo") -> int:
    """Start `module` (zoo's command line, or a work unit's worker) again under torchrun with
    `nproc` processes on this machine."""
    import subprocess
    import sys

    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", "-m", module, *argv,
    ]  # fmt: skip
    return subprocess.call(command)
