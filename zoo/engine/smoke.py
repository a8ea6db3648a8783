"""`zoo doctor`'s smoke test: a few real optimizer steps of a tiny random-init model on this
machine's device, for each method, with the peak memory measured beside zoo's estimate.

Nothing is downloaded: the models are built from a config (`zoo.memory.measure.build_model`),
LoRA and QLoRA go through zoo's own `apply_lora`, zero-shot through zoo's own label scoring.
A step that does not really train (a loss that is not finite, a weight that did not change)
raises `SmokeFailed`.

The peak is measured as the estimator counts it, without the CUDA context:

- on a CPU, the tensors of a steady-state step as `zoo.memory.measure` follows them
  (PyTorch's `MemTracker`), against the estimate with ``context=0``;
- on CUDA, ``torch.cuda.max_memory_allocated()`` over the steps, less what was allocated
  before the model (cuBLAS's workspaces among it), against the same estimate.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
import warnings
from collections.abc import Iterator
from typing import Any

import attrs

from zoo.memory.measure_cuda import cuda_baseline as _cuda_baseline
from zoo.memory.shapes import ModelShape
from zoo.prompts import DEFAULT_PROMPT, Prompt

STEPS = 3
LEARNING_RATE = 1e-3
LORA_TARGETS = ("query", "value")
# Small enough for a few seconds on two CPU cores; on a GPU larger, so that what the CUDA
# libraries allocate for themselves stays small beside the model.
CPU_SHAPE = ModelShape(
    family="bert", vocab=2000, hidden=128, layers=2, heads=2, ffn=512, labels=3, positions=128
)
CUDA_SHAPE = ModelShape(
    family="bert", vocab=30522, hidden=768, layers=4, heads=12, ffn=3072, labels=3
)
CPU_BATCH, CUDA_BATCH = (4, 32), (8, 128)  # rows, tokens
# Zero-shot scores label names with a causal LM (zoo.engine.zero_shot).
ZERO_SHOT_SHAPE = ModelShape(
    family="gpt-neox", vocab=2000, hidden=128, layers=2, heads=2, ffn=512, positions=128
)
TEXTS = ("the server is down again", "how do I sort a list in python", "the page will not load")
LABELS = ("code", "ops", "web")
PROMPT = Prompt.from_template(DEFAULT_PROMPT, LABELS)


class SmokeFailed(Exception):
    """A smoke step that ran but did not train (or score) as it should."""


@attrs.frozen(kw_only=True)
class Smoke:
    """What one method's smoke test did and measured."""

    method: str
    device: str  # "cpu" or "cuda"
    precision: str  # the estimator's precision: "fp32", "bf16"
    steps: int  # optimizer steps (0 for zero-shot)
    losses: tuple[float, ...]  # one per step (zero-shot: none)
    measured: int  # peak bytes of tensors (see the module docstring)
    estimated: int  # zoo's estimate of the same, without the CUDA context
    measured_by: str  # "tensors (MemTracker)" or "torch.cuda.max_memory_allocated"
    seconds: float

    @property
    def ratio(self) -> float:
        """Measured over estimated: 1.0 is a perfect estimate."""
        return self.measured / self.estimated if self.estimated else math.inf


def run_smoke(method: str, *, cuda: bool) -> Smoke:
    """The smoke test of `method` ("full", "lora", "qlora" or "zero-shot") on CUDA device 0 or
    on the CPU; raises `SmokeFailed` (or whatever the step raised) when it does not work."""
    start = time.perf_counter()
    with _quiet():
        if method == "zero-shot":
            found = _zero_shot(cuda)
        elif method in {"full", "lora", "qlora"}:
            found = _training(method, cuda)
        else:
            raise ValueError(f"no smoke test for method {method!r}")
    return attrs.evolve(found, seconds=time.perf_counter() - start)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Without the warnings that transformers, peft and MemTracker print for tiny models."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _batch(shape: ModelShape, rows: int, tokens: int, device: str) -> dict[str, Any]:
    import torch

    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, shape.vocab, (rows, tokens), generator=generator)
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.randint(0, shape.labels, (rows,), generator=generator),
    }
    return {key: value.to(device) for key, value in batch.items()}


def _spec() -> Any:
    from zoo.spec import ModelSpec, NoWeights, Resources

    return ModelSpec(
        name="doctor-tiny-bert",
        description="zoo doctor's random-init BERT",
        source=NoWeights(),
        family="bert",
        resources=Resources(methods=("full", "lora", "qlora"), lora_targets=LORA_TARGETS),
    )


def _sixteen_bits(cuda: bool) -> bool:
    """Whether the step computes in bf16, as precision 'auto' would (a GPU without bf16 is
    smoke-tested in fp32: fp16 needs a loss scaler that this small loop does not have)."""
    import torch

    return cuda and torch.cuda.is_bf16_supported()


def _training(method: str, cuda: bool) -> Smoke:
    import torch

    from zoo.engine.adapters import apply_lora
    from zoo.memory.estimate import estimate
    from zoo.memory.measure import build_model, measure_step
    from zoo.memory.setup import TrainingSetup

    if method == "qlora" and not cuda:
        raise SmokeFailed("QLoRA needs a CUDA GPU")
    shape = CUDA_SHAPE if cuda else CPU_SHAPE
    rows, tokens = CUDA_BATCH if cuda else CPU_BATCH
    bf16 = _sixteen_bits(cuda)
    baseline = _cuda_baseline() if cuda else 0
    if method == "qlora":
        model = _quantized(shape)
    else:
        # zoo loads a LoRA base in the compute dtype, a fully trained model in float32.
        dtype = "bf16" if method == "lora" and bf16 else "fp32"
        model = build_model(shape, attention="sdpa", dtype=dtype)
        if cuda:
            model.to("cuda")
    if method != "full":
        model = apply_lora(model, _spec(), None, quantized=method == "qlora")
    inputs = _batch(shape, rows, tokens, "cuda" if cuda else "cpu")
    losses = _train(model, inputs, bf16=bf16)
    if cuda:
        measured = int(torch.cuda.max_memory_allocated()) - baseline
        measured_by = "torch.cuda.max_memory_allocated"
    else:
        measured = measure_step(model, shape, batch=rows, sequence=tokens).peak
        measured_by = "tensors (MemTracker)"
    setup = TrainingSetup(
        method=method,  # type: ignore[arg-type]
        precision="bf16" if bf16 else "fp32",
        batch_size=rows,
        sequence=tokens,
        lora_targets=LORA_TARGETS if method != "full" else (),
        hidden_dropout=shape.family.dropout(shape.config())[0],
        attention_dropout=False,  # build_model turns SDPA's attention dropout off
    )
    predicted = estimate(shape, setup, context=0)
    # The smoke test trains and does not evaluate: the peak of forward, backward and step.
    step = max(value for phase, value in predicted.phases.items() if phase != "evaluation")
    return Smoke(
        method=method,
        device="cuda" if cuda else "cpu",
        precision=setup.precision,
        steps=len(losses),
        losses=tuple(losses),
        measured=measured,
        estimated=step,
        measured_by=measured_by,
        seconds=0.0,
    )


def _quantized(shape: ModelShape) -> Any:
    """The tiny model saved and loaded again in 4-bit NF4, as zoo loads a QLoRA base."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from zoo.engine.loading import _quantization
    from zoo.memory.measure import build_model

    with tempfile.TemporaryDirectory(prefix="zoo-doctor-") as folder:
        build_model(shape, attention="sdpa", dtype="fp32").save_pretrained(folder)
        torch.cuda.reset_peak_memory_stats()
        return AutoModelForSequenceClassification.from_pretrained(
            folder,
            quantization_config=_quantization(),
            device_map={"": torch.cuda.current_device()},
            dtype=torch.float32,
            attn_implementation="sdpa",
        )


def _train(model: Any, inputs: dict[str, Any], *, bf16: bool) -> list[float]:
    """`STEPS` AdamW steps on one batch; the loss of each. Raises `SmokeFailed` unless every
    loss is finite and every trainable tensor changed."""
    import torch

    model.train()
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise SmokeFailed("the model has no trainable parameter")
    before = [p.detach().clone() for _name, p in named]
    optimizer = torch.optim.AdamW([p for _name, p in named], lr=LEARNING_RATE, weight_decay=0.0)
    device = inputs["input_ids"].device.type
    losses = []
    for _ in range(STEPS):
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    del optimizer
    if not all(math.isfinite(value) for value in losses):
        shown = ", ".join(f"{value:.4g}" for value in losses)
        raise SmokeFailed(f"the loss is not finite ({shown})")
    unchanged = [
        name for (name, p), old in zip(named, before, strict=True) if torch.equal(p.detach(), old)
    ]
    if unchanged:
        more = f" and {len(unchanged) - 3} more" if len(unchanged) > 3 else ""
        raise SmokeFailed(
            f"{len(unchanged)} of {len(named)} trainable tensors did not change after "
            f"{STEPS} steps: {', '.join(unchanged[:3])}{more}"
        )
    return losses


class Characters:
    """A tokenizer of characters, enough for zoo's label scoring: ids from code points."""

    pad_token_id = 0

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [1 + ord(ch) % (self.vocab - 1) for ch in text]}


def _zero_shot(cuda: bool) -> Smoke:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from zoo.engine.label_scoring import label_scores, prompt_ids
    from zoo.memory.estimate import inference
    from zoo.memory.measure import measure_scoring
    from zoo.memory.setup import TrainingSetup

    shape = attrs.evolve(ZERO_SHOT_SHAPE, labels=len(LABELS))
    bf16 = _sixteen_bits(cuda)
    baseline = _cuda_baseline() if cuda else 0
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        AutoConfig.for_model(**shape.config()), attn_implementation="sdpa"
    )
    # zero-shot loads its weights in 16 bits on a GPU (zoo.engine.device.weights_dtype).
    model.to("cuda" if cuda else "cpu", torch.bfloat16 if bf16 else torch.float32)
    tokenizer = Characters(shape.vocab)
    pairs = len(TEXTS) * len(LABELS)

    if cuda:
        scores = label_scores(model, tokenizer, PROMPT, TEXTS, LABELS,
                              max_length=shape.positions, batch_size=pairs)  # fmt: skip
        measured = int(torch.cuda.max_memory_allocated()) - baseline
        measured_by = "torch.cuda.max_memory_allocated"
    else:
        scores, measured = measure_scoring(
            model, tokenizer, PROMPT, TEXTS, LABELS, max_length=shape.positions, batch_size=pairs
        )
        measured_by = "tensors (MemTracker)"
    if scores.shape != (len(TEXTS), len(LABELS)) or not all(map(math.isfinite, scores.flat)):
        raise SmokeFailed(f"label scores are not a finite {len(TEXTS)} x {len(LABELS)} table")
    longest = max(len(prompt_ids(tokenizer, PROMPT, text, shape.positions)) for text in TEXTS)
    answer = max(map(len, LABELS))  # a token per character
    setup = TrainingSetup(
        precision="bf16" if bf16 else "fp32",
        eval_batch_size=pairs,
        sequence=longest + answer,
        answer_tokens=answer,
        hidden_dropout=False,
        attention_dropout=False,
    )
    return Smoke(
        method="zero-shot",
        device="cuda" if cuda else "cpu",
        precision=setup.precision,
        steps=0,
        losses=(),
        measured=measured,
        estimated=inference(shape, setup, context=0).total,
        measured_by=measured_by,
        seconds=0.0,
    )
