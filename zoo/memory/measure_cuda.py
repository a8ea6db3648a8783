"""Measuring on a CUDA GPU what the estimator predicts: the caching allocator's own peaks.

`zoo.memory.measure` follows tensors on a CPU with CUDA's kernels emulated; this module runs
the step on CUDA device 0 itself. A random-init model of the shape is built on the GPU, set up
as zoo trains it (`TrainingSetup`: precision, method, checkpointing, optimizer), and stepped
once to make the optimizer state; then `torch.cuda.reset_peak_memory_stats()`, one
steady-state step, and `max_memory_allocated()` / `max_memory_reserved()`.

What the estimator leaves out is taken out of the measurement too:

- `baseline`: what the device holds before the model (cuBLAS's workspaces among it, as
  `zoo.engine.smoke` counts them: the estimator puts them in the CUDA context);
- the input batch (a few kilobytes of token ids).

The CUDA context is outside the allocator: `context` is what `torch.cuda.mem_get_info()` shows
used beyond PyTorch's reserved bytes before the model: the driver's context and kernels, and
anything another process holds on the GPU (an upper bound, then).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import attrs

from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape


class NoCuda(RuntimeError):
    """This machine cannot measure on CUDA: no GPU, or torch without CUDA."""


@attrs.frozen(kw_only=True)
class CudaMeasured:
    """One steady-state step on CUDA device 0, in bytes (see the module docstring)."""

    allocated: int  # max_memory_allocated() over the step, less baseline and inputs
    reserved: int  # max_memory_reserved() over the step, less the reserved baseline
    steady: int  # allocated before the step: weights, optimizer state (less the baseline)
    baseline: int  # allocated before the model
    baseline_reserved: int  # reserved before the model
    context: int  # used on the device beyond PyTorch's reserved bytes, before the model
    device_total: int
    step_seconds: float  # the measured step alone
    seconds: float  # build, warm-up and measured step


def cuda_unavailable() -> str | None:
    """Why CUDA cannot be measured here, or None when it can."""
    try:
        import torch
    except ImportError:
        return "no CUDA GPU: torch is not installed"
    if torch.version.cuda is None:
        return f"no CUDA GPU: torch {torch.__version__} is a CPU build"
    if not torch.cuda.is_available():
        return "no CUDA GPU: torch.cuda.is_available() is False"
    return None


def cuda_baseline() -> int:
    """What CUDA device 0 holds before the model: after a matmul in fp32 and in bf16, so that
    cuBLAS has made its workspaces (the estimator counts them in the CUDA context)."""
    import torch

    a = torch.ones(64, 64, device="cuda")
    (a @ a).sum().item()
    if torch.cuda.is_bf16_supported():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            (a @ a).sum().item()
    with torch.autocast("cuda", dtype=torch.float16):
        (a @ a).sum().item()
    del a
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return int(torch.cuda.memory_allocated())


def measure_cuda_step(
    shape: ModelShape, setup: TrainingSetup, *, attention: str = "sdpa", seed: int = 0
) -> CudaMeasured:
    """Measure one steady-state training step of a random-init `shape` trained as `setup`
    says, on CUDA device 0. Raises `NoCuda` on a machine without a CUDA GPU, ImportError when
    the setup needs bitsandbytes (QLoRA, 8-bit AdamW) and it is not installed."""
    reason = cuda_unavailable()
    if reason:
        raise NoCuda(reason)
    import torch

    started = time.perf_counter()
    baseline = cuda_baseline()
    baseline_reserved = int(torch.cuda.memory_reserved())
    free, total = torch.cuda.mem_get_info()
    context = max(0, total - free - baseline_reserved)
    model = _model(shape, setup, attention=attention, seed=seed)
    inputs = _batch(shape, setup.batch_size, setup.sequence)
    step = _stepper(model, setup)
    try:
        step(inputs)  # the first step makes the optimizer state
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        steady = int(torch.cuda.memory_allocated())
        timed = time.perf_counter()
        step(inputs)
        torch.cuda.synchronize()
        step_seconds = time.perf_counter() - timed
        peak = int(torch.cuda.max_memory_allocated())
        reserved = int(torch.cuda.max_memory_reserved())
    finally:
        del step, model
        release()
    inputs_bytes = sum(t.numel() * t.element_size() for t in inputs.values())
    return CudaMeasured(
        allocated=peak - baseline - inputs_bytes,
        reserved=reserved - baseline_reserved,
        steady=steady - baseline - inputs_bytes,
        baseline=baseline,
        baseline_reserved=baseline_reserved,
        context=context,
        device_total=total,
        step_seconds=step_seconds,
        seconds=time.perf_counter() - started,
    )


def release() -> None:
    """Free what a measurement left, so that the next one starts from the same baseline."""
    import gc

    import torch

    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def compute_dtype(setup: TrainingSetup) -> str:
    """The dtype the step computes in: "fp32", "bf16" or "fp16"."""
    return {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "bf16-pure": "bf16"}[setup.precision]


def weights_dtype(setup: TrainingSetup) -> str:
    """As zoo loads the model: a LoRA base in the compute dtype, a fully trained model in
    float32 (bf16 under pure bf16); QLoRA's base is quantised on loading."""
    if setup.method == "full":
        return "bf16" if setup.precision == "bf16-pure" else "fp32"
    return compute_dtype(setup)


def _config(shape: ModelShape, attention: str) -> Any:
    from transformers import AutoConfig

    config = AutoConfig.for_model(**shape.config(), num_labels=shape.labels)
    if attention == "sdpa":  # as zoo.memory.measure: the estimator's SDPA has no attention dropout
        for key in ("attention_probs_dropout_prob", "attention_dropout"):
            if hasattr(config, key):
                setattr(config, key, 0.0)
    if getattr(config, "pad_token_id", None) is None:  # decoders have none
        config.pad_token_id = 0
    config._attn_implementation = attention
    return config


def _model(shape: ModelShape, setup: TrainingSetup, *, attention: str, seed: int) -> Any:
    import torch
    from transformers import AutoModelForSequenceClassification

    config = _config(shape, attention)
    torch.manual_seed(seed)
    if setup.method == "qlora":
        model = _quantized(config, attention)
    else:
        # Built on the GPU: initialising a billion parameters on the CPU takes minutes.
        with torch.device("cuda"):
            model = AutoModelForSequenceClassification.from_config(
                config, attn_implementation=attention
            )
        model.to(getattr(torch, _DTYPES[weights_dtype(setup)]))
    if setup.adapters:
        model = _adapters(model, shape, setup)
    if setup.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    model.train()
    return model


def _quantized(config: Any, attention: str) -> Any:
    """A random-init model saved (in bf16, to be quick) and loaded again in 4-bit NF4, as zoo
    loads a QLoRA base (`zoo.engine.loading`)."""
    import bitsandbytes  # noqa: F401  (a clear ImportError before minutes of work)
    import torch
    from transformers import AutoModelForSequenceClassification

    from zoo.engine.loading import _quantization

    with tempfile.TemporaryDirectory(prefix="zoo-measure-") as folder:
        with torch.device("cuda"):
            model = AutoModelForSequenceClassification.from_config(
                config, attn_implementation=attention
            )
        model.to(torch.bfloat16).save_pretrained(folder)
        del model
        release()
        return AutoModelForSequenceClassification.from_pretrained(
            folder,
            quantization_config=_quantization(),
            device_map={"": torch.cuda.current_device()},
            dtype=torch.float32,
            attn_implementation=attention,
        )


def _adapters(model: Any, shape: ModelShape, setup: TrainingSetup) -> Any:
    """zoo's own LoRA (`zoo.engine.adapters.apply_lora`) with the setup's rank and targets."""
    from zoo.engine.adapters import apply_lora
    from zoo.recipe import LoraSettings
    from zoo.spec import ModelSpec, NoWeights, Resources

    spec = ModelSpec(
        name="measured",
        description="a random-init model measured on CUDA",
        source=NoWeights(),
        family=shape.family.name,
        resources=Resources(methods=("full", "lora", "qlora"), lora_targets=setup.lora_targets),
    )
    settings = LoraSettings(r=setup.lora_rank, alpha=2 * setup.lora_rank)
    return apply_lora(model, spec, settings, quantized=setup.method == "qlora")


def _batch(shape: ModelShape, batch: int, sequence: int) -> dict[str, Any]:
    import torch

    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, shape.vocab, (batch, sequence), generator=generator)
    rows = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.randint(0, shape.labels, (batch,), generator=generator),
    }
    return {key: value.to("cuda") for key, value in rows.items()}


def _stepper(model: Any, setup: TrainingSetup) -> Any:
    """One training step as the Trainer runs it: autocast for mixed precision, a loss scaler
    for fp16, the setup's optimizer."""
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(setup.optimizer, trainable)
    mixed = setup.mixed
    dtype = getattr(torch, _DTYPES[compute_dtype(setup)])
    scaler = torch.amp.GradScaler("cuda", enabled=setup.precision == "fp16")

    def step(inputs: dict[str, Any]) -> None:
        with torch.autocast("cuda", dtype=dtype, enabled=mixed):
            loss = model(**inputs).loss
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    return step


def _optimizer(name: str, parameters: list[Any]) -> Any:
    import torch

    if name == "adamw":  # the HF Trainer's default on torch >= 2.8: adamw_torch_fused
        return torch.optim.AdamW(parameters, lr=1e-5, fused=True)
    if name == "adamw-foreach":
        return torch.optim.AdamW(parameters, lr=1e-5, foreach=True)
    if name == "adamw-8bit":
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(parameters, lr=1e-5)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=1e-5)
    raise ValueError(f"the CUDA harness cannot measure optimizer {name!r}")
