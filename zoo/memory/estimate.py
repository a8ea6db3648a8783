"""Peak memory of one training step, per device, from the model's shape and the run's settings.

Pure arithmetic: nothing here imports torch. The peak is found by walking through a step the way
autograd runs it: the forward pass leaves the saved activations behind; the backward pass frees
them block by block from the top while it allocates gradients and a few working tensors; the
optimizer step then holds weights, gradients, its state and its temporaries; evaluation runs
between steps with a larger batch and no gradients.
"""

from __future__ import annotations

import attrs

from zoo.memory.activations import Activations, activations
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape, Tensor

GiB = 1024**3
# What the CUDA runtime, cuBLAS and the kernels take before the first tensor (HF's "model memory
# anatomy" measured 1.3 GB on a V100; recent drivers load kernels lazily and take less).
CUDA_CONTEXT = GiB
# The caching allocator reserves more than it hands out (fragmentation, block rounding): about
# 10% with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True, and it can be more without it.
ALLOCATOR_MARGIN = 0.10
NF4_BYTES = 0.516  # 4-bit NF4 with double quantisation, per quantised weight
NF4_BYTES_SINGLE = 0.5625
SMALL_FOR_8BIT = 4096  # bitsandbytes keeps tensors smaller than this in 32-bit

TERMS = (
    ("context", "CUDA context and kernels"),
    ("weights", "weights"),
    ("autocast_cache", "autocast 16-bit weight copies"),
    ("gradients", "gradients"),
    ("optimizer", "optimizer state"),
    ("temporaries", "working tensors (backward or step)"),
    ("activations", "activations"),
    ("logits", "logits and loss"),
    ("allocator", "allocator margin"),
)


@attrs.frozen(kw_only=True)
class Estimate:
    """Memory per device at the peak of a training step, broken down."""

    breakdown: dict[str, int]  # the TERMS at the moment of the peak; they add up to the total
    phase: str  # when the peak happens: "forward", "backward", "optimizer step", "evaluation"
    # The live tensors at each phase's own peak (no context, no margin).
    phases: dict[str, int] = attrs.field(factory=dict)
    parameters: int  # of the model, all of them
    trainable: int  # parameters that train
    approximate: bool  # the architecture is not modelled tensor by tensor
    family: str  # the name of the model family that estimated it ("generic" when approximate)
    device: str = "cuda"  # whose kernels' saved tensors it counts: TrainingSetup.device

    @property
    def total(self) -> int:
        return sum(self.breakdown.values())

    @property
    def allocated(self) -> int:
        """The live tensors at the peak: the total without context and allocator margin."""
        return self.total - self.breakdown["context"] - self.breakdown["allocator"]


@attrs.frozen
class _Param:
    tensor: Tensor
    bytes_per: float  # per element
    trains: bool
    sparse: bool = False  # its gradient is sparse: the rows one batch uses (train_embeddings)


def parameters(shape: ModelShape, setup: TrainingSetup) -> list[_Param]:
    """Every tensor the step holds as a parameter, with its bytes per element and whether it
    trains (LoRA adds adapters and a trainable float32 copy of the head, as peft does)."""
    if setup.method == "full":
        weight = 2 if setup.precision == "bf16-pure" or _zero(setup) else 4
        items = []
        for tensor in shape.tensors():
            words = word_embeddings(shape, tensor)
            trains = setup.train_embeddings is not False or not words
            sparse = words and setup.train_embeddings == "sparse"
            items.append(_Param(tensor, weight, trains, sparse))
        return items
    # zoo loads a LoRA base in the compute dtype; QLoRA quantises the layers' Linear weights
    # and keeps the rest in float32 (peft's prepare_model_for_kbit_training).
    base = 2 if setup.precision != "fp32" else 4
    items = []
    for tensor in shape.tensors():
        if setup.method == "qlora":
            quantised = tensor.kind == "linear" and tensor.block != "other"
            items.append(_Param(tensor, NF4_BYTES if quantised else 4, False))
        else:
            items.append(_Param(tensor, base, False))
        if tensor.head:  # float32, unless everything is bf16 (no autocast to mix them)
            items.append(_Param(tensor, 2 if setup.precision == "bf16-pure" else 4, True))
        elif tensor.kind == "linear" and tensor.module in setup.lora_targets:
            r, block = setup.lora_rank, tensor.block
            items.append(_Param(Tensor(tensor.module, "linear", r, tensor.columns, block), 4, True))
            items.append(_Param(Tensor(tensor.module, "linear", tensor.rows, r, block), 4, True))
    return items


def word_embeddings(shape: ModelShape, tensor: Tensor) -> bool:
    """Whether `tensor` is the word-embedding matrix: what train_embeddings = false freezes."""
    return tensor.kind == "embedding" and tensor.module == shape.family.word_embeddings


def _zero(setup: TrainingSetup) -> bool:
    return setup.strategy in {"zero2", "zero3", "fsdp"} and setup.gpus > 1


def _bytes(items: list[_Param], **where: object) -> int:
    return round(
        sum(
            p.tensor.numel * p.bytes_per
            for p in items
            if all(getattr(p.tensor, key) == value for key, value in where.items())
        )
    )


def optimizer_state(setup: TrainingSetup, trainable: list[_Param]) -> int:
    """Bytes of optimizer state once the first step has made it."""
    if setup.optimizer in {"adamw", "adamw-foreach"}:
        # exp_avg and exp_avg_sq in the parameter's dtype, and a float32 step count each.
        return sum(round(2 * p.tensor.numel * p.bytes_per) + 4 for p in trainable)
    if setup.optimizer == "adamw-8bit":
        total = 0
        for p in trainable:
            n = p.tensor.numel
            # Two uint8 states and a float32 absolute maximum per 256-element block.
            total += 2 * n + 8 * -(-n // 256) if n >= SMALL_FOR_8BIT else 8 * n
        return total
    if setup.optimizer == "adafactor":
        # Factored second moments for matrices (one value per row and column), a full one for
        # vectors, and an RMS each: all float32 (measured), whatever the parameter's dtype.
        total = 0
        for p in trainable:
            t = p.tensor
            elements = t.rows + t.columns if t.columns > 1 else t.rows
            total += 4 * elements + 4
        return total
    return 0  # plain SGD keeps no state


def step_temporaries(setup: TrainingSetup, trainable: list[_Param]) -> int:
    """Extra bytes while the optimizer updates the weights."""
    if setup.optimizer == "adamw-foreach":  # one intermediate per parameter, all at once
        return _bytes(trainable)
    if setup.optimizer == "adafactor":
        # One tensor at a time, in float32: the update and the squared gradient, and copies of
        # the parameter and its gradient when they are not float32 already.
        largest = max(trainable, key=lambda p: p.tensor.numel, default=None)
        if largest is None:
            return 0
        copies = 2 if largest.bytes_per == 4 else 4
        return copies * 4 * largest.tensor.numel
    return 0  # fused AdamW and SGD update in place


def sparse_gradients(setup: TrainingSetup, trainable: list[_Param]) -> tuple[int, int]:
    """train_embeddings = "sparse": the bytes of the sparse gradients (a row and an int64 index
    per token of the accumulated batches: rows repeat until coalesced), and what the lazy
    AdamW step adds (the coalesced copy, and five row-sized temporaries per row it updates)."""
    tokens = setup.batch_size * setup.sequence * setup.gradient_accumulation_steps
    gradients = temporaries = 0
    for p in trainable:
        if p.sparse:
            row = p.tensor.columns * p.bytes_per
            gradients += round(tokens * (row + 8))
            temporaries += round(tokens * (row + 8) + 5 * tokens * p.tensor.columns * 4)
    return gradients, temporaries


def _logits(shape: ModelShape, setup: TrainingSetup, batch: int) -> int:
    # A decoder scores every position, then picks the last token's; an encoder one vector a row.
    positions = shape.family.scored_positions(setup)
    return batch * positions * shape.labels * 4 * 3  # logits, log-softmax, and its gradient


def estimate(shape: ModelShape, setup: TrainingSetup, *, context: int = CUDA_CONTEXT) -> Estimate:
    """Peak memory per device of a training step of `shape` with `setup` (see module docstring).

    `context` is what the device takes before any tensor (0 for the pure tensor accounting that
    the CPU measurements check)."""
    items = parameters(shape, setup)
    trainable = [p for p in items if p.trains]
    dense = [p for p in trainable if not p.sparse]
    shards = setup.sharding
    weights = _bytes(items)
    sparse, sparse_step = sparse_gradients(setup, trainable)
    gradients = _bytes(dense) + sparse
    optimizer = optimizer_state(setup, trainable)
    temporaries = step_temporaries(setup, dense) + sparse_step
    if setup.method == "qlora":  # the largest quantised Linear, dequantised for its matmul
        largest = max(t.numel for t in shape.tensors() if t.kind == "linear" and t.block != "other")
        temporaries = max(temporaries, 2 * largest)
    if _zero(setup):
        weights, gradients, optimizer = _sharded(shape, setup, items, shards)
    elif setup.strategy == "ddp" and setup.gpus > 1:
        temporaries += gradients  # DDP's gradient buckets: a flat copy of the gradients
    # Autocast casts every trainable Linear weight to 16 bits once per forward pass and keeps
    # the copies until the backward pass has used them.
    cache = 2 * sum(p.tensor.numel for p in trainable if p.tensor.kind == "linear")
    cache = cache if setup.mixed and not _zero(setup) else 0

    act = activations(shape, _activation_setup(setup))
    logits = _logits(shape, setup, setup.batch_size)
    static = weights + optimizer
    candidates = [
        (
            "backward",
            *_backward_peak(act, setup, items, static + cache + logits, gradients),
        ),
        (
            # The end of the forward pass: all saved, and the top layer's unsaved tensors.
            "forward",
            static + cache + logits + act.saved(setup.gradient_checkpointing) + act.forward,
            {"activations": act.saved(setup.gradient_checkpointing), "temporaries": act.forward},
        ),
        (
            "optimizer step",
            static + gradients + temporaries,
            {"gradients": gradients, "temporaries": temporaries},
        ),
        (
            "evaluation",
            static + evaluation_working(shape, setup),
            {"activations": evaluation_working(shape, setup)},
        ),
    ]
    phase, peak, parts = max(candidates, key=lambda c: c[1])
    breakdown = dict.fromkeys((name for name, _ in TERMS), 0)
    breakdown.update(context=context, weights=weights, optimizer=optimizer)
    if phase in {"forward", "backward"}:
        breakdown.update(autocast_cache=cache, logits=logits)
    breakdown.update(parts)
    breakdown["allocator"] = round(ALLOCATOR_MARGIN * peak) if context else 0
    assert sum(breakdown.values()) - breakdown["context"] - breakdown["allocator"] == peak
    return Estimate(
        breakdown=breakdown,
        phase=phase,
        phases={name: value for name, value, _ in candidates},
        parameters=shape.parameters(),
        trainable=sum(p.tensor.numel for p in trainable),
        approximate=shape.approximate,
        family=shape.family.name,
        device=setup.device,
    )


def _activation_setup(setup: TrainingSetup) -> TrainingSetup:
    # DeepSpeed and FSDP mixed precision hold the model in 16 bits: activations as pure bf16.
    return attrs.evolve(setup, precision="bf16-pure") if _zero(setup) and setup.mixed else setup


def _backward_peak(
    act: Activations, setup: TrainingSetup, items: list[_Param], base: int, gradients: int
) -> tuple[int, dict[str, int]]:
    """The highest point of the backward pass: the top layer's blocks are processed first,
    each needing its working tensors while its gradients appear and its activations go."""
    checkpointing = setup.gradient_checkpointing
    alive = act.saved(checkpointing)
    # Under gradient accumulation, every micro-batch after the first finds all gradients there.
    grads = gradients if setup.gradient_accumulation_steps > 1 else 0
    best = (base + alive + grads, alive, grads, 0)
    blocks = [("ffn", act.ffn), ("attention", act.attention)]
    trainable = [p for p in items if p.trains]
    # Sharding (ZeRO, FSDP) keeps a share of each gradient: scale the unsharded blocks.
    share = gradients / max(_bytes(trainable), 1) if _zero(setup) else 1.0
    block_grads = {
        name: round(share * _bytes(trainable, block=name) / act.layers) for name, _ in blocks
    }
    for layer in range(act.layers - 1, -1, -1):
        if checkpointing:
            # The layer's forward pass runs again, keeping what it saves; each block's unsaved
            # tensors live beside what the blocks before it saved, while the gradient of the
            # layer's output waits.
            for saved, extra in (
                (act.attention.saved, act.attention.forward),
                (act.attention.saved + act.ffn.saved, act.ffn.forward),
            ):
                here = base + alive + saved + grads + extra + act.layer_input
                if here > best[0]:
                    best = (here, alive + saved, grads, extra + act.layer_input)
            alive += act.attention.saved + act.ffn.saved
        for name, block in (
            blocks if layer else zip(("ffn", "attention"), act.first[::-1], strict=True)
        ):
            if setup.gradient_accumulation_steps == 1:
                grads += block_grads[name]
            here = base + alive + grads + block.working
            if here > best[0]:
                best = (here, alive, grads, block.working)
            alive -= block.saved
        if checkpointing:
            alive -= act.layer_input
    peak, alive, grads, working = best
    return peak, {
        "activations": alive,
        "gradients": grads,
        "temporaries": working,
    }


def evaluation_working(shape: ModelShape, setup: TrainingSetup) -> int:
    """Evaluation between steps, without gradients: one layer's intermediate tensors at a
    time, for the evaluation batch (the family says how many bytes a token takes there)."""
    b, s = setup.evaluation_batch, setup.sequence
    return b * s * shape.family.evaluation_per_token(shape, setup) + _logits(shape, setup, b)


def _sharded(
    shape: ModelShape, setup: TrainingSetup, items: list[_Param], shards: int
) -> tuple[int, int, int]:
    """ZeRO-2 / ZeRO-3 / FSDP as DeepSpeed's own estimators count them: 16-bit weights (all of
    them under ZeRO-2; a 1/N share plus the gathered layers under ZeRO-3), 16- and 32-bit
    gradients and the fp32 master weights with Adam's two states, split N ways."""
    params = sum(p.tensor.numel for p in items)
    trainable = sum(p.tensor.numel for p in items if p.trains)
    if setup.strategy == "zero2":
        weights = 2 * params
        gradients = 6 * trainable // shards
    else:
        layer = max(
            sum(t.numel for t in shape.tensors(layers=1))
            - sum(t.numel for t in shape.tensors(layers=0)),
            0,
        )
        weights = 2 * params // shards + 4 * layer
        gradients = 4 * trainable // shards
    return weights, gradients, 12 * trainable // shards


def inference(shape: ModelShape, setup: TrainingSetup, *, context: int = CUDA_CONTEXT) -> Estimate:
    """Peak memory of evaluation alone (zero-shot): 16-bit weights on a GPU, fp32 on a CPU."""
    weights = shape.parameters() * (4 if setup.precision == "fp32" else 2)
    working = evaluation_working(shape, setup)
    breakdown = dict.fromkeys((name for name, _ in TERMS), 0)
    breakdown.update(context=context, weights=weights, activations=working)
    breakdown["allocator"] = round(ALLOCATOR_MARGIN * (weights + working)) if context else 0
    return Estimate(
        breakdown=breakdown,
        phase="evaluation",
        phases={"evaluation": weights + working},
        parameters=shape.parameters(),
        trainable=0,
        approximate=shape.approximate,
        family=shape.family.name,
        device=setup.device,
    )
