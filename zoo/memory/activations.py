"""What a training step keeps for the backward pass, tensor by tensor, as HF code saves it.

Each model family (`zoo.memory.families`) fills these in for its architecture; the rules come
from reading the models' code and were checked against saved-tensor measurements
(`zoo.memory.measure`, `tests/test_memory.py`); `../shared/notes/memory-estimation.md` lists
them. Bytes are for the whole batch: b rows of s tokens, hidden size h, FFN size f, a heads.

The device is part of the setup (`TrainingSetup.device`), because CUDA and CPU kernels save
different tensors (measured): CUDA's dropout keeps a 1-byte mask, a CPU's multiplies by a mask
in the tensor's own dtype and keeps that; and CPU SDPA with attention dropout leaves its fused
kernel for the math path, which keeps q, k, v, the softmax, its dropout mask and output, all in
float32 (`math_attention`). Without attention dropout both devices run a fused kernel that
saves the same tensors.

Autograd saves a tensor only where something below it trains. Under LoRA (without gradient
checkpointing, which makes the embeddings' output require gradients) nothing below the first
adapter saves anything, and a frozen Linear layer never saves its input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape


@attrs.frozen
class Block:
    """One attention or FFN block of a layer: what it saves, the extra bytes its backward pass
    needs while it runs (the gradients of its largest tensors), and the tensors its forward
    pass makes but does not save (alive until the next op has read them)."""

    saved: int
    working: int
    forward: int = 0


@attrs.frozen
class Activations:
    below: int  # the embeddings
    first: tuple[Block, Block]  # layer 0: attention and FFN blocks (LoRA saves less there)
    attention: Block  # every other layer
    ffn: Block
    layers: int
    above: int  # the final norm, pooler and head
    layer_input: int  # what gradient checkpointing keeps of each layer
    # GPT-NeoX's eager attention reads a b x 1 x s x s float mask, built once; checkpointed
    # layers keep it alive with their inputs.
    mask: int = 0

    @property
    def forward(self) -> int:
        """Unsaved tensors alive at the forward pass's highest point (in the top layer)."""
        return max(self.attention.forward, self.ffn.forward)

    def saved(self, checkpointing: bool) -> int:
        """Bytes held for the backward pass once the forward pass has returned."""
        if checkpointing:
            return self.below + self.layers * self.layer_input + self.above + self.mask
        first = self.first[0].saved + self.first[1].saved
        rest = (self.layers - 1) * (self.attention.saved + self.ffn.saved)
        return self.below + first + rest + self.above


def activations(shape: ModelShape, setup: TrainingSetup) -> Activations:
    """What a training step of `shape` with `setup` saves: the shape's family knows."""
    return shape.family.activations(shape, setup)


def head_trains(shape: ModelShape, setup: TrainingSetup) -> bool:
    """Whether the output layer trains, so that it saves its input: a fresh classification
    head always does (peft trains it too); under head = "label-words" the LM head (or the tied
    word embeddings) under full fine-tuning, or where a LoRA target names it."""
    if setup.head != "label-words":
        return True
    if shape.tied_embeddings:
        return not setup.adapters and setup.train_embeddings is not False
    return any(setup.trains(t.module) for t in shape.family.lm_head(shape))


def precision_bytes(setup: TrainingSetup) -> tuple[int, int]:
    """Bytes per element of a compute tensor, and of the residual stream (fp32 under
    autocast)."""
    half = 4 if setup.precision == "fp32" else 2
    stream = 2 if setup.precision == "bf16-pure" else 4
    return half, stream


def mask_bytes(setup: TrainingSetup, element: int) -> int:
    """Bytes per element of a dropout mask on a tensor of `element` bytes per element: 1 on
    CUDA (a bool mask), the tensor's own on a CPU (a mask of its dtype)."""
    return 1 if setup.device == "cuda" else element


def adapter_mask_bytes(setup: TrainingSetup) -> int:
    """Bytes per element of a LoRA adapter's dropout mask: peft casts the input to the
    adapter's float32 weights before its dropout."""
    return mask_bytes(setup, 4)


def math_attention(setup: TrainingSetup) -> bool:
    """Whether SDPA runs its math path: on a CPU with attention dropout (its fused CPU kernel
    takes no dropout). The math path keeps q, k and v as float32 copies, the float32 softmax,
    dropout mask and dropout output (s x s each), and no logsumexp; its output is a new tensor
    that the out-projection saves."""
    return setup.device == "cpu" and setup.attention == "sdpa" and setup.attention_dropout


def linear_inputs(
    linears: Iterable[tuple[str, bool, str]],
    block: str,
    setup: TrainingSetup,
    *,
    tokens: int,
    hidden: int,
    ffn: int,
    saved_elsewhere: Callable[[str, str], bool] = lambda module, block: False,
) -> int:
    """What a block's Linear layers save of their inputs, in bytes.

    `linears` lists (module, wide, block); a wide layer reads the FFN's width. A trained Linear
    saves its input, unless another op saves that tensor already (`saved_elsewhere(module,
    block)`). Under LoRA a frozen Linear saves nothing and an adapted one its adapter's input
    after dropout, cast to the adapter's fp32 weights, with the dropout mask.
    """
    half, _stream = precision_bytes(setup)
    total = 0
    for module, wide, where in linears:
        if where != block or not setup.trains(module):
            continue
        width = ffn if wide else hidden
        if setup.adapters:
            dropout = 4 + adapter_mask_bytes(setup)
            per_row = dropout if setup.lora_dropout else (4 if half != 4 else 0)
            total += tokens * width * per_row + 4 * tokens * setup.lora_rank
        elif not saved_elsewhere(module, where):
            total += half * tokens * width
    return total
