"""What a training step keeps for the backward pass, tensor by tensor, as HF code saves it.

The rules come from reading the models' code and were checked against saved-tensor measurements
(`zoo.memory.measure`, `tests/test_memory_accuracy.py`); `../shared/notes/memory-estimation.md`
lists them. Bytes are for the whole batch: b rows of s tokens, hidden size h, FFN size f, a heads.

Autograd saves a tensor only where something below it trains. Under LoRA (without gradient
checkpointing, which makes the embeddings' output require gradients) nothing below the first
adapter saves anything, and a frozen Linear layer never saves its input.
"""

from __future__ import annotations

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


# The Linear layers of a transformer layer: (module name as LoRA targets it, input width is
# the FFN width, block). BERT names both FFN layers 'dense', like its attention output.
_BERT_LINEARS = (
    ("query", False, "attention"),
    ("key", False, "attention"),
    ("value", False, "attention"),
    ("dense", False, "attention"),
    ("dense", False, "ffn"),
    ("dense", True, "ffn"),
)
_NEOX_LINEARS = (
    ("query_key_value", False, "attention"),
    ("dense", False, "attention"),
    ("dense_h_to_4h", False, "ffn"),
    ("dense_4h_to_h", True, "ffn"),
)


def activations(shape: ModelShape, setup: TrainingSetup) -> Activations:
    b, s, h, f, a = setup.batch_size, setup.sequence, shape.hidden, shape.ffn, shape.heads
    tokens = b * s
    neox = shape.family == "gpt-neox"
    lora = setup.adapters
    checkpointing = setup.gradient_checkpointing
    # Bytes of a compute tensor, and of the residual stream (fp32 under autocast).
    half = 4 if setup.precision == "fp32" else 2
    stream = 2 if setup.precision == "bf16-pure" else 4
    norm = stream * tokens * h + 8 * tokens  # a LayerNorm's input, and its fp32 mean and rstd
    hidden_mask = tokens * h if setup.hidden_dropout and not neox else 0  # 1-byte masks
    linears = _NEOX_LINEARS if neox else _BERT_LINEARS

    def trains(module: str) -> bool:
        return not lora or module in setup.lora_targets

    def shared(module: str, block: str) -> bool:
        """The Linear layer's input is saved already, by another op that reads it."""
        if neox:
            return False
        if module in {"key", "value"}:  # the same tensor as the query's input, unless cast
            return not setup.mixed
        # The attention output projection reads the fused kernel's output, which it saves.
        return module == "dense" and block == "attention" and setup.attention == "sdpa"

    def linear_inputs(block: str) -> int:
        """What the block's Linear layers save of their inputs."""
        total = 0
        for module, wide, where in linears:
            if where != block or not trains(module):
                continue
            width = f if wide else h
            if lora:  # the adapter's input after dropout, cast to its fp32 weights, and mask
                per_row = 4 + 1 if setup.lora_dropout else (4 if half != 4 else 0)
                total += tokens * width * per_row + 4 * tokens * setup.lora_rank
            elif not shared(module, where):
                total += half * tokens * width
        return total

    # --- attention: query, key and value, the attention kernel, the output projection
    qkv = 3 * half * tokens * h
    if setup.attention == "eager":
        scores = a * s * s * b
        if neox:  # softmax in fp32, then a cast copy to the compute dtype
            kernel = scores * (4 + (half if half != 4 else 0))
        elif setup.mixed:  # autocast: fp32 softmax and dropout (+ mask), 16-bit copy for matmul
            kernel = scores * (4 + (4 + 1 if setup.attention_dropout else 0) + 2)
        else:
            kernel = scores * (half + ((1 + half) if setup.attention_dropout else 0))
        attention_working = 2 * scores * half
        attention_forward = scores * half  # the raw scores, before the softmax
    else:  # fused SDPA: its output and a float32 logsumexp per row and head, no s x s matrix
        kernel = 4 * a * s * b + half * tokens * h
        attention_working = 3 * half * tokens * h
        attention_forward = 0
    residual = 2 * stream * tokens * h  # a block's output and the residual sum
    attention = Block(
        saved=norm + linear_inputs("attention") + qkv + kernel + hidden_mask,
        working=attention_working,
        forward=attention_forward + residual,
    )
    # --- FFN: FC1, GeLU, FC2 (NeoX's second LayerNorm reads the same input as its first)
    ffn_norm = 8 * tokens if neox else norm
    # Under LoRA, a frozen FC2 does not save the GeLU's output, but it lives until FC2 ran.
    gelu_output = half * tokens * f if lora else 0
    ffn = Block(
        saved=ffn_norm + linear_inputs("ffn") + half * tokens * f + hidden_mask,
        working=half * tokens * (h + f),
        forward=gelu_output + residual,
    )
    first = (attention, ffn)
    first_ffn = ffn
    grads_below = not lora or checkpointing  # checkpointing makes the embeddings require grad
    if lora and not grads_below:
        # Layer 0 reads the frozen embeddings, which need no gradient: the adapters' dropout
        # there keeps no mask, and an attention matmul keeps only what the trained side needs.
        masks = sum(
            tokens * (f if wide else h)
            for module, wide, _ in linears
            if module in setup.lora_targets and setup.lora_dropout
        )
        unsaved = masks
        if neox:
            # Its LayerNorms save nothing, and its MLP branch (parallel to attention) saves
            # nothing unless an adapter sits in it.
            unsaved += norm
            if not any(trains(m) for m, _, where in linears if where == "ffn"):
                first_ffn = Block(0, 0)
        elif setup.attention == "eager":
            unsaved += (
                half
                * tokens
                * h
                * sum(
                    1 for side, other in (("query", "key"), ("key", "query")) if not trains(other)
                )
            )
        first = (attrs.evolve(attention, saved=attention.saved - unsaved), first_ffn)

    if neox:
        below = 0  # no embedding LayerNorm, no dropout
        above = 2 * stream * tokens * h + 8 * tokens  # final LayerNorm; the score layer's input
    else:
        below = norm + hidden_mask if grads_below else 0
        # BertPooler reads hidden[:, 0], a view that keeps the whole last hidden state alive
        # (autocast instead casts that view to a new, small tensor).
        pooler_view = shape.family == "bert" and not setup.mixed and (not lora or checkpointing)
        # Measured: with LoRA and checkpointing, XLM-R's last hidden state stays alive too.
        xlmr_lora = shape.family == "xlm-roberta" and lora and checkpointing
        above = stream * tokens * h if pooler_view or xlmr_lora else 0
    return Activations(
        below=below,
        first=first,
        attention=attention,
        ffn=ffn,
        layers=shape.layers,
        above=above,
        layer_input=stream * tokens * h,
        mask=b * s * s * stream if neox and setup.attention == "eager" else 0,
    )
