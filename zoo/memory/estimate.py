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
    ("kv_cache", "keys and values cache (label scoring)"),
    ("logits", "logits and loss"),
    ("allocator", "allocator margin"),
)
# The `logits` term's label by what makes the logits (`Estimate.head`): a fresh classification
# head's few scores; the LM head's over every position and the whole vocabulary (label words);
# label scoring's over the answers' tokens.
LOGITS_LABELS = {
    "classifier": "logits and loss",
    "label-words": "LM head logits and loss (every position, whole vocabulary)",
    "scoring": "answers' logits and log-softmax (label scoring)",
}


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
    # What makes the logits: "classifier", "label-words" (TrainingSetup.head) or "scoring".
    head: str = "classifier"
    # The logits term at its own highest point, whichever phase holds the peak (label words:
    # the start of the backward pass), so that a peak elsewhere still shows it.
    logits: int = 0

    def terms(self) -> list[tuple[str, str]]:
        """The TERMS, (key, label), with the logits term labelled for what made it."""
        return [(k, LOGITS_LABELS[self.head] if k == "logits" else v) for k, v in TERMS]

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


def model_tensors(shape: ModelShape, setup: TrainingSetup) -> list[Tensor]:
    """The parameter tensors of the model the step trains. head = "label-words" trains the
    causal LM: its LM head (`ModelFamily.lm_head`, vocabulary x hidden) replaces the fresh
    classification head, and where it is tied to the word embeddings it adds no tensor (the
    embedding matrix is the LM head)."""
    tensors = shape.tensors()
    if setup.head != "label-words":
        return tensors
    return [t for t in tensors if not t.head] + shape.family.lm_head(shape)


def parameters(shape: ModelShape, setup: TrainingSetup) -> list[_Param]:
    """Every tensor the step holds as a parameter, with its bytes per element and whether it
    trains (LoRA adds adapters and a trainable float32 copy of the head, as peft does).

    Under head = "label-words" the LM head is an ordinary Linear outside the layers: it trains
    under full fine-tuning; under LoRA it stays frozen in the base dtype (adapted only where a
    LoRA target names it); under QLoRA it is not quantised (transformers keeps the output
    embedding out of the 4-bit conversion, `get_keys_to_not_convert`) and peft's
    `prepare_model_for_kbit_training` casts it to float32 with every other 16-bit weight."""
    if setup.method == "full":
        weight = 2 if setup.precision == "bf16-pure" or _zero(setup) else 4
        # A tied LM head reads every row of the embedding matrix: its gradient is dense.
        tied = setup.head == "label-words" and shape.tied_embeddings
        items = []
        for tensor in model_tensors(shape, setup):
            words = word_embeddings(shape, tensor)
            trains = setup.train_embeddings is not False or not words
            sparse = words and setup.train_embeddings == "sparse" and not tied
            items.append(_Param(tensor, weight, trains, sparse))
        return items
    # zoo loads a LoRA base in the compute dtype; QLoRA quantises the layers' Linear weights
    # and keeps the rest in float32 (peft's prepare_model_for_kbit_training).
    base = 2 if setup.precision != "fp32" else 4
    items = []
    for tensor in model_tensors(shape, setup):
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


def lm_head(shape: ModelShape, setup: TrainingSetup) -> list[Tensor]:
    """The tensors that compute a label-words step's logits: the family's LM head, or the word
    embeddings where they are tied to it; none for a classification head."""
    if setup.head != "label-words":
        return []
    if shape.tied_embeddings:
        return [t for t in shape.tensors() if word_embeddings(shape, t)]
    return shape.family.lm_head(shape)


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


@attrs.frozen
class Logits:
    """What the head's logits and loss hold, in bytes, at three moments of the step."""

    held: int  # alive through the forward and the backward pass (a classifier's few scores)
    saved: int  # kept for the backward pass once the forward pass has returned
    forward: int  # at the end of the forward pass, while the loss is computed
    backward: int  # at the start of the backward pass, before any layer's gradient


def _logits(shape: ModelShape, setup: TrainingSetup, batch: int) -> Logits:
    """A classification head's logits are a few numbers a row: a decoder scores every
    position, then picks the last token's; an encoder one vector a row.

    head = "label-words" runs HF's causal-LM loss: the LM head's logits over every position of
    the sequence and the whole vocabulary (n = b x s x V elements, whatever the answer's
    length: the labels of the prompt are -100, but every position is scored), upcast to float32
    (`ForCausalLMLoss`: a copy of 16-bit logits, the same tensor in fp32) for cross-entropy,
    whose log-softmax output (4n bytes) is saved for the backward pass. At the end of the
    forward pass the logits, their copy and the log-softmax are alive (8n in fp32, 10n with
    16-bit logits); the backward pass starts with the saved log-softmax, the loss's dense
    float32 gradient and the log-softmax's gradient (12n: 3 x b x s x V x 4, measured,
    benchmarks/RESULTS.md section 4), and frees them before the layers' gradients appear.
    A training loop that keeps the model's output through the backward pass holds the logits
    too (2n or 4n more): zoo's engine, as HF's Trainer, drops it."""
    if setup.head != "label-words":
        positions = shape.family.scored_positions(setup)
        held = batch * positions * shape.labels * 4 * 3  # logits, log-softmax, its gradient
        return Logits(held=held, saved=0, forward=0, backward=0)
    n = batch * setup.sequence * shape.vocab
    sixteen = setup.precision != "fp32"
    return Logits(held=0, saved=4 * n, forward=(10 if sixteen else 8) * n, backward=12 * n)


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
    head = lm_head(shape, setup)  # the tensors that make a label-words step's logits
    if setup.method == "qlora":  # the largest quantised Linear, dequantised for its matmul
        largest = max(t.numel for t in shape.tensors() if t.kind == "linear" and t.block != "other")
        # A float32 LM head is cast to 16 bits for its matmul under autocast, just as well.
        largest = max([largest, *(t.numel for t in head)])
        temporaries = max(temporaries, 2 * largest)
    if _zero(setup):
        weights, gradients, optimizer = _sharded(shape, setup, items, shards)
    elif setup.strategy == "ddp" and setup.gpus > 1:
        temporaries += gradients  # DDP's gradient buckets: a flat copy of the gradients
    # Autocast casts every trainable Linear weight to 16 bits once per forward pass and keeps
    # the copies until the backward pass has used them.
    # A tied LM head multiplies by the embedding matrix: a Linear under autocast.
    cache = 2 * sum(
        p.tensor.numel for p in trainable if p.tensor.kind == "linear" or p.tensor in head
    )
    cache = cache if setup.mixed and not _zero(setup) else 0

    act = activations(shape, _activation_setup(setup))
    logits = _logits(shape, setup, setup.batch_size)
    static = weights + optimizer
    at_end = logits.held + logits.forward
    evaluating = (
        scoring(shape, setup)
        if setup.head == "label-words"
        else {"activations": evaluation_working(shape, setup)}
    )
    candidates = [
        (
            "backward",
            *_backward_peak(act, setup, items, static + cache, gradients, logits, head),
        ),
        (
            # The end of the forward pass: all saved, and the top layer's unsaved tensors.
            "forward",
            static + cache + at_end + act.saved(setup.gradient_checkpointing) + act.forward,
            {
                "activations": act.saved(setup.gradient_checkpointing),
                "temporaries": act.forward,
                "logits": at_end,
            },
        ),
        (
            "optimizer step",
            static + gradients + temporaries,
            {"gradients": gradients, "temporaries": temporaries},
        ),
        ("evaluation", static + sum(evaluating.values()), evaluating),
    ]
    phase, peak, parts = max(candidates, key=lambda c: c[1])
    breakdown = dict.fromkeys((name for name, _ in TERMS), 0)
    breakdown.update(context=context, weights=weights, optimizer=optimizer)
    if phase in {"forward", "backward"}:
        breakdown.update(autocast_cache=cache)
    breakdown.update(parts)
    breakdown["allocator"] = round(ALLOCATOR_MARGIN * peak) if context else 0
    assert sum(breakdown.values()) - breakdown["context"] - breakdown["allocator"] == peak
    return Estimate(
        breakdown=breakdown,
        phase=phase,
        phases={name: value for name, value, _ in candidates},
        parameters=sum(t.numel for t in model_tensors(shape, setup)),
        trainable=sum(p.tensor.numel for p in trainable),
        approximate=shape.approximate,
        family=shape.family.name,
        device=setup.device,
        head=setup.head,
        logits=max(logits.held + logits.backward, at_end),
    )


def _activation_setup(setup: TrainingSetup) -> TrainingSetup:
    # DeepSpeed and FSDP mixed precision hold the model in 16 bits: activations as pure bf16.
    return attrs.evolve(setup, precision="bf16-pure") if _zero(setup) and setup.mixed else setup


def _backward_peak(
    act: Activations,
    setup: TrainingSetup,
    items: list[_Param],
    base: int,
    gradients: int,
    logits: Logits,
    head: list[Tensor],
) -> tuple[int, dict[str, int]]:
    """The highest point of the backward pass: it starts at the loss (the logits' gradients),
    then the LM head's gradient appears (label words), and the top layer's blocks are processed,
    each needing its working tensors while its gradients appear and its activations go."""
    checkpointing = setup.gradient_checkpointing
    alive = act.saved(checkpointing)
    # Under gradient accumulation, every micro-batch after the first finds all gradients there.
    accumulating = setup.gradient_accumulation_steps > 1
    grads = gradients if accumulating else 0
    base += logits.held
    top = base + alive + grads + logits.backward
    best = (top, alive, grads, 0, logits.held + logits.backward)
    if not accumulating:  # the LM head's gradient, made as the logits' go
        grads += _bytes([p for p in items if p.trains and p.tensor in head])
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
                    best = (here, alive + saved, grads, extra + act.layer_input, logits.held)
            alive += act.attention.saved + act.ffn.saved
        for name, block in (
            blocks if layer else zip(("ffn", "attention"), act.first[::-1], strict=True)
        ):
            if setup.gradient_accumulation_steps == 1:
                grads += block_grads[name]
            here = base + alive + grads + block.working
            if here > best[0]:
                best = (here, alive, grads, block.working, logits.held)
            alive -= block.saved
        if checkpointing:
            alive -= act.layer_input
    peak, alive, grads, working, held = best
    return peak, {
        "activations": alive,
        "gradients": grads,
        "temporaries": working,
        "logits": held,
    }


def evaluation_working(shape: ModelShape, setup: TrainingSetup) -> int:
    """Evaluation between steps, without gradients: one layer's intermediate tensors at a
    time, for the evaluation batch (the family says how many bytes a token takes there). A
    label-words model is evaluated by scoring its labels' words (`scoring`)."""
    if setup.head == "label-words":
        return sum(scoring(shape, setup).values())
    b, s = setup.evaluation_batch, setup.sequence
    return b * s * shape.family.evaluation_per_token(shape, setup) + _logits(shape, setup, b).held


def scoring(shape: ModelShape, setup: TrainingSetup) -> dict[str, int]:
    """Label scoring's highest point beside the weights (`zoo.engine.label_scoring`), by TERMS
    key: a chunk of `rows = evaluation batch // labels` prompts (left-padded to the room that
    the longest answer leaves) runs once with the keys and values cached and only the last
    position's logits kept; the cache is then repeated once per label, and every row's answers
    run at once on it.

    Each of the three moments holds the cache of that moment (`ModelFamily.kv_per_token`
    elements per token and layer, in the weights' dtype): the prompts' pass with one layer's
    working tensors for its tokens; the repeat, which holds the old cache of a layer beside the
    new one; the answers' pass, whose cache grows by the answers' tokens (a layer's concatenated
    copy beside it), with the answers' logits over the vocabulary, their float32 copy and their
    log-softmax (10 bytes per element with 16-bit logits, 8 in fp32), which come once the
    layers are done."""
    half = 4 if setup.precision == "fp32" else 2
    labels = max(shape.labels, 1)
    rows = max(1, setup.evaluation_batch // labels)
    answer = min(setup.answer_tokens, setup.sequence - 1)
    prompt, rest = setup.sequence - answer, answer - 1
    layer = shape.family.kv_per_token(shape) * half  # bytes per token, one layer
    cache = shape.layers * layer
    # Shared key/value heads copied out to every query head (new tensors beside the cache),
    # one layer at a time; none where every head has keys and values of its own.
    attended = shape.family.attention_kv_per_token(shape) * half
    copied = attended if attended != layer else 0
    prompts = attrs.evolve(setup, sequence=prompt)
    working = rows * prompt * shape.family.evaluation_per_token(shape, prompts)
    first = rows * shape.vocab * (half + 8)  # the last position's logits, fp32, log-softmax
    repeated = rows * labels * prompt * cache
    after = rows * labels * (prompt + rest)
    answers = rows * labels * rest * shape.vocab * (8 if half == 4 else 10)
    if not rest:  # one-token answers: the prompts' pass scores them all
        answers = 0
    tokens = rows * labels * rest  # the answers' pass
    answering = attrs.evolve(setup, sequence=prompt + rest)
    moments = [
        {
            "kv_cache": rows * prompt * cache,
            "activations": working + first + rows * prompt * copied,
        },
        {"kv_cache": repeated + rows * prompt * layer, "activations": first},
        {
            "kv_cache": after * cache + after * layer // 2,  # a layer's keys (or values) cat
            "activations": first
            + tokens * shape.family.evaluation_per_token(shape, answering)
            + after * copied,
        },
        {"kv_cache": after * cache, "activations": first, "logits": answers},
    ]
    return max(moments, key=lambda m: sum(m.values()))


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
    """Peak memory of label scoring alone (zero-shot, few-shot): the causal LM's weights,
    16-bit on a GPU, fp32 on a CPU, and what `scoring` holds beside them."""
    lm = attrs.evolve(setup, head="label-words")
    count = sum(t.numel for t in model_tensors(shape, lm))
    weights = count * (4 if setup.precision == "fp32" else 2)
    working = scoring(shape, lm)
    breakdown = dict.fromkeys((name for name, _ in TERMS), 0)
    breakdown.update(working, context=context, weights=weights)
    peak = weights + sum(working.values())
    breakdown["allocator"] = round(ALLOCATOR_MARGIN * peak) if context else 0
    return Estimate(
        breakdown=breakdown,
        phase="evaluation",
        phases={"evaluation": peak},
        head="scoring",
        logits=working.get("logits", 0),
        parameters=count,
        trainable=0,
        approximate=shape.approximate,
        family=shape.family.name,
        device=setup.device,
    )
