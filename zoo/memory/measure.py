"""Measuring on a CPU what the estimator predicts: the validation harness.

One training step of a random-init model is measured exactly and without a GPU:

- parameters, gradients and optimizer state: the bytes of their storages after a step;
- activations: the bytes that autograd saves for the backward pass (saved-tensor hooks, each
  storage counted once, parameters and inputs left out); with gradient checkpointing, whose own
  hooks hide the saved tensors, the bytes still held once the forward pass has returned;
- the live peak of a steady-state step (forward, backward, optimizer step), from PyTorch's
  `MemTracker`, which follows every tensor storage that the step creates.

Each measurement is for one device's kernels (`device`, as `TrainingSetup.device`). "cpu"
measures the step as this CPU runs it: dropout masks in the tensor's dtype, and SDPA under
attention dropout on its math path. "cuda" neutralises what a CPU does differently from CUDA,
as `../shared/notes/memory-estimation.md` describes: dropout keeps a 1-byte mask (as CUDA does)
instead of a full-size one, and SDPA is measured with attention dropout 0, which CPU kernels
need to keep to their fused path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import attrs

from zoo.memory.shapes import ModelShape


@attrs.frozen(kw_only=True)
class Measured:
    parameters: int
    gradients: int
    optimizer: int
    activations: int
    peak: int


def build_model(
    shape: ModelShape,
    *,
    attention: str,
    dtype: str,
    seed: int = 0,
    device: str = "cuda",
    attention_dropout: bool = True,
    head: str = "classifier",
) -> Any:
    """A random-init model of `shape` on the CPU, in training mode, for a measurement of
    `device`'s kernels (see the module docstring); with the attention dropout of its config,
    or none (`attention_dropout=False`). `head` is `TrainingSetup.head`: a classification
    model with a fresh head, or ("label-words") the causal LM, whose LM head trains."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
    )

    config = AutoConfig.for_model(**shape.config(), num_labels=shape.labels)
    if not attention_dropout or (attention == "sdpa" and device == "cuda"):
        # CPU SDPA with attention dropout falls back to the math path (see the module docstring).
        for key in ("attention_probs_dropout_prob", "attention_dropout"):
            if hasattr(config, key):
                setattr(config, key, 0.0)
    config._attn_implementation = attention
    torch.manual_seed(seed)
    kind = AutoModelForCausalLM if head == "label-words" else AutoModelForSequenceClassification
    model = kind.from_config(config, attn_implementation=attention)
    if model.config.pad_token_id is None:  # decoders have none; batches of rows need one
        model.config.pad_token_id = 0
    model.to(getattr(torch, {"fp32": "float32", "bf16": "bfloat16"}[dtype]))
    model.train()
    return model


def add_lora(model: Any, *, rank: int, targets: tuple[str, ...]) -> Any:
    """LoRA adapters as zoo puts them (zoo.engine.adapters), with zoo's default dropout."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.05,
        target_modules=list(targets),
    )
    return get_peft_model(model, config)


@contextlib.contextmanager
def cuda_like_dropout() -> Iterator[None]:
    """Dropout as CUDA does it: a 1-byte mask saved, not a full-size noise tensor."""
    import torch
    import torch.nn.functional as F

    original = F.dropout

    def dropout(input, p=0.5, training=True, inplace=False):
        if not training or p == 0.0:
            return input
        return torch.native_dropout(input, p, True)[0]

    F.dropout = dropout
    try:
        yield
    finally:
        F.dropout = original


def _tracker() -> Any:
    """PyTorch's MemTracker, without its per-parameter gradient hooks: they cannot be put on
    frozen parameters (LoRA), and only the total is read here."""
    from torch.distributed._tools.mem_tracker import MemTracker

    class Tracker(MemTracker):
        def _track_module_params_and_buffers(self, module, install_grad_hooks=True):
            return super()._track_module_params_and_buffers(module, install_grad_hooks=False)

    return Tracker()


def _storage_bytes(tensors: Any) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


# head = "label-words": the answer tokens at the end of each row, which the loss reads (a
# label's words and the end-of-text token); the prompt's labels are -100.
ANSWER_TOKENS = 3


def _batch(
    shape: ModelShape, batch: int, sequence: int, head: str = "classifier"
) -> dict[str, Any]:
    import torch

    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, shape.vocab, (batch, sequence), generator=generator)
    if head == "label-words":
        labels = torch.full_like(ids, -100)
        labels[:, -ANSWER_TOKENS:] = ids[:, -ANSWER_TOKENS:]
    else:
        labels = torch.randint(0, shape.labels, (batch,), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def saved_for_backward(model: Any, inputs: dict[str, Any]) -> int:
    """Bytes autograd saves during one forward pass: each storage once, parameters,
    buffers and inputs left out."""
    import torch

    skip = {t.untyped_storage().data_ptr() for t in model.parameters()}
    skip |= {t.untyped_storage().data_ptr() for t in model.buffers()}
    skip |= {t.untyped_storage().data_ptr() for t in inputs.values()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip and storage.device.type != "meta":
            saved[storage.data_ptr()] = storage.nbytes()
        # Detached: a tensor that a node saves of its own output would otherwise hold that
        # node through the hook, a cycle that Python's collector cannot see.
        return t.detach()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(**inputs).loss
    del loss
    return sum(saved.values())


def measure_step(
    model: Any,
    shape: ModelShape,
    *,
    batch: int,
    sequence: int,
    optimizer: str = "adamw",
    checkpointing: bool = False,
    device: str = "cuda",
    head: str = "classifier",
) -> Measured:
    """Measure one steady-state training step of `model` as `device`'s kernels run it (see
    the module docstring); `head` as `build_model`'s (label words: the causal LM's loss on the
    answer tokens)."""
    import torch

    inputs = _batch(shape, batch, sequence, head)
    if checkpointing:
        model.gradient_checkpointing_enable()
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optim = _optimizer(optimizer, trainable)

    def step() -> None:
        model(**inputs).loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)

    with cuda_like_dropout() if device == "cuda" else contextlib.nullcontext():
        step()  # the first step creates the optimizer state
        if checkpointing:
            activations = _retained_after_forward(model, inputs, optim)
        else:
            activations = saved_for_backward(model, inputs)
        model(**inputs).loss.backward()
        gradients = _storage_bytes(p.grad for p in trainable)
        optim.zero_grad(set_to_none=True)
        tracker = _tracker()
        tracker.track_external(model, optim, *inputs.values())
        with tracker:
            step()
    peak = tracker.get_tracker_snapshot("peak")[torch.device("cpu")]
    state = [t for s in optim.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
    return Measured(
        parameters=_storage_bytes(model.parameters()),
        gradients=gradients,
        optimizer=_storage_bytes(state),
        activations=activations,
        peak=peak["Total"] - _storage_bytes(inputs.values()),
    )


def measure_evaluation(model: Any, shape: ModelShape, *, batch: int, sequence: int) -> int:
    """Peak bytes that one evaluation forward pass adds (no gradients, dropout off)."""
    import torch

    inputs = _batch(shape, batch, sequence)
    inputs.pop("labels")
    was_training = model.training
    model.eval()
    tracker = _tracker()
    tracker.track_external(model, *inputs.values())
    try:
        with torch.no_grad(), tracker:
            before = tracker.get_tracker_snapshot("current")[torch.device("cpu")]["Total"]
            model(**inputs)
    finally:
        model.train(was_training)
    return tracker.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"] - before


def _retained_after_forward(model: Any, inputs: dict[str, Any], optim: Any) -> int:
    """Bytes that the forward pass leaves alive for the backward pass (the loss included)."""
    import torch

    tracker = _tracker()
    tracker.track_external(model, optim, *inputs.values())
    with tracker:
        before = tracker.get_tracker_snapshot("current")[torch.device("cpu")]["Total"]
        loss = model(**inputs).loss
        after = tracker.get_tracker_snapshot("current")[torch.device("cpu")]["Total"]
    del loss
    return after - before


def _optimizer(name: str, parameters: list[Any]) -> Any:
    import torch

    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=1e-4, fused=True)
    if name == "adamw-foreach":
        return torch.optim.AdamW(parameters, lr=1e-4, foreach=True)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=1e-4)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(parameters, lr=1e-4, scale_parameter=False, relative_step=False)
    raise ValueError(f"the harness cannot measure optimizer {name!r}")


def measure_scoring(
    model: Any,
    tokenizer: Any,
    prompt: Any,
    texts: Any,
    words: Any,
    *,
    max_length: int,
    batch_size: int,
) -> tuple[Any, int]:
    """Label scoring of `texts` (`zoo.engine.label_scoring.label_scores`) on the CPU: the
    scores, and the peak bytes of its tensors, the model's weights among them."""
    import torch

    from zoo.engine.label_scoring import label_scores

    class Scoring(torch.nn.Module):
        # One outer call around the scorer's two forward passes (prompts, then answers on
        # their cache): MemTracker refuses a top-level module called twice.
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self) -> Any:
            return label_scores(self.model, tokenizer, prompt, texts, words,
                                max_length=max_length, batch_size=batch_size)  # fmt: skip

    tracker = _tracker()
    tracker.track_external(model)
    with tracker:
        scores = Scoring()()
    return scores, tracker.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"]
