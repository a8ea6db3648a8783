"""The memory of head = "label-words" (issue 15) and of label scoring, against measured steps.

A label-words step trains the causal LM on prompt + label words + end of text: its LM head
scores every position over the whole vocabulary, upcast to float32 for the loss. The grid
measures such steps of tiny random-init GPT-NeoX causal LMs on the CPU (`zoo.memory.measure`)
and holds the estimate to them as tests/test_memory.py does: parameters, gradients and
optimizer state exactly, activations (with the saved log-softmax) within 3%, the step's peak
within 10%. Label scoring (zero-shot, few-shot) is held to MemTracker's peak as an upper bound
within 20%.
"""

from __future__ import annotations

import json

import pytest
import torch

from zoo.cli import main
from zoo.memory.activations import activations
from zoo.memory.estimate import _logits, estimate, inference, parameters
from zoo.memory.setup import TrainingSetup
from zoo.memory.shapes import ModelShape

TARGETS = ("query_key_value",)


def _shape(*, tied: bool = False, vocab: int = 8000, labels: int = 3, layers: int = 4):
    return ModelShape(family="gpt-neox", vocab=vocab, hidden=256, layers=layers, heads=4,
                      ffn=1024, labels=labels, positions=512, tied_embeddings=tied)  # fmt: skip


@pytest.mark.parametrize(
    ("dtype", "method", "checkpointing", "attention", "tied", "batch", "sequence"),
    [
        ("fp32", "full", False, "sdpa", False, 4, 128),
        ("bf16", "full", False, "sdpa", False, 4, 128),
        ("fp32", "lora", False, "sdpa", False, 4, 128),
        ("bf16", "lora", True, "sdpa", False, 2, 64),
        ("fp32", "full", True, "sdpa", False, 4, 128),
        ("fp32", "full", False, "eager", False, 2, 128),
        ("fp32", "full", False, "sdpa", True, 4, 64),
        ("bf16", "lora", False, "sdpa", True, 4, 64),
    ],
)
def test_a_label_words_step_matches_its_measurement(
    dtype, method, checkpointing, attention, tied, batch, sequence
):
    from zoo.memory.measure import add_lora, build_model, measure_step

    shape = _shape(tied=tied)
    model = build_model(shape, attention=attention, dtype=dtype, head="label-words")
    if method == "lora":
        model = add_lora(model, rank=8, targets=TARGETS)
    measured = measure_step(model, shape, batch=batch, sequence=sequence,
                            checkpointing=checkpointing, head="label-words")  # fmt: skip
    setup = TrainingSetup(
        method=method,
        precision="fp32" if dtype == "fp32" else "bf16-pure",
        attention=attention,
        gradient_checkpointing=checkpointing,
        batch_size=batch,
        sequence=sequence,
        lora_targets=TARGETS,
        hidden_dropout=False,
        attention_dropout=False,
        head="label-words",
    )
    predicted = estimate(shape, setup, context=0)
    trainable = sum(p.tensor.numel * p.bytes_per for p in parameters(shape, setup) if p.trains)
    assert predicted.breakdown["weights"] == measured.parameters
    assert trainable == measured.gradients
    assert predicted.breakdown["optimizer"] == measured.optimizer
    # What the forward pass leaves: the layers' tensors and the float32 log-softmax.
    saved = activations(shape, setup).saved(checkpointing) + _logits(shape, setup, batch).saved
    assert saved == pytest.approx(measured.activations, rel=0.03)
    step = max(v for phase, v in predicted.phases.items() if phase != "evaluation")
    assert step == pytest.approx(measured.peak, rel=0.10)


def test_the_logits_of_the_whole_sequence_are_three_float32_copies_at_the_backward_start():
    shape = _shape()
    n = 4 * 128 * 8000
    for precision, forward in (("fp32", 8), ("bf16", 10), ("bf16-pure", 10)):
        setup = TrainingSetup(precision=precision, batch_size=4, sequence=128, head="label-words")
        logits = _logits(shape, setup, 4)
        assert (logits.saved, logits.forward, logits.backward) == (4 * n, forward * n, 12 * n)
        assert estimate(shape, setup).logits == 12 * n
    # A classification head's scores are a few numbers a row, as before.
    assert _logits(shape, TrainingSetup(batch_size=4, sequence=128), 4).held == 4 * 128 * 3 * 12


@pytest.mark.parametrize(("method", "bytes_per", "trains"),
                         [("full", 4, True), ("lora", 2, False), ("qlora", 4, False)])  # fmt: skip
def test_the_lm_head_replaces_the_fresh_head(method, bytes_per, trains):
    shape = _shape()
    setup = TrainingSetup(method=method, precision="bf16", head="label-words",
                          lora_targets=TARGETS)  # fmt: skip
    items = parameters(shape, setup)
    assert not any(p.tensor.head for p in items)
    (head,) = [p for p in items if p.tensor.module == "lm_head"]
    assert (head.tensor.rows, head.tensor.columns) == (8000, 256)
    assert (head.bytes_per, head.trains) == (bytes_per, trains)
    # Tied to the word embeddings, the LM head adds no tensor of its own.
    tied = parameters(_shape(tied=True), setup)
    assert not any(p.tensor.module == "lm_head" for p in tied)


@pytest.mark.parametrize(
    ("family", "vocab", "layers", "labels", "answer", "texts", "length", "batch", "dtype"),
    [
        ("gpt-neox", 2000, 2, 3, 4, 3, 20, 9, "fp32"),  # zoo doctor's shape
        ("gpt-neox", 8000, 4, 2, 2, 4, 200, 4, "fp32"),  # long prompts: the prompts' pass
        ("gpt-neox", 8000, 2, 5, 8, 4, 20, 20, "fp32"),  # many long answers: their logits
        ("gpt-neox", 8000, 4, 3, 4, 4, 60, 12, "bf16"),
        ("llama", 8000, 4, 3, 4, 4, 60, 12, "fp32"),  # grouped-query attention: a smaller cache
        ("llama", 8000, 4, 2, 2, 4, 200, 4, "fp32"),
    ],
)
def test_label_scoring_on_its_cache_is_estimated_as_an_upper_bound(
    family, vocab, layers, labels, answer, texts, length, batch, dtype
):
    from transformers import AutoConfig, AutoModelForCausalLM

    from zoo.engine.label_scoring import prompt_ids
    from zoo.engine.smoke import Characters
    from zoo.memory.measure import measure_scoring
    from zoo.prompts import DEFAULT_PROMPT, Prompt

    shape = _shape(vocab=vocab, labels=labels, layers=layers)
    if family == "llama":  # 4 query heads, 2 key/value heads of 64
        shape = ModelShape(family="llama", vocab=vocab, hidden=256, layers=layers, heads=4,
                           ffn=512, labels=labels, positions=512,
                           extra={"kv_heads": 2, "head_dim": 64})  # fmt: skip
    if vocab == 2000:
        shape = ModelShape(family="gpt-neox", vocab=2000, hidden=128, layers=2, heads=2,
                           ffn=512, labels=labels, positions=512)  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        AutoConfig.for_model(**shape.config()), attn_implementation="sdpa"
    )
    model.to(torch.bfloat16 if dtype == "bf16" else torch.float32)
    tokenizer = Characters(vocab)
    words = [chr(ord("a") + i) * answer for i in range(labels)]
    # Llama: prompts of different lengths, so that every pass has padding in its mask and
    # transformers copies the shared key/value heads in every version (with no mask to read it
    # may hand grouped-query attention to the kernel instead).
    longer = 1 if family == "llama" else 0
    rows = [f"x{i} " * (length // 3 + longer * i) for i in range(texts)]
    prompt = Prompt.from_template(DEFAULT_PROMPT, words)
    _scores, measured = measure_scoring(model, tokenizer, prompt, rows, words,
                                        max_length=512, batch_size=batch)  # fmt: skip
    longest = max(len(prompt_ids(tokenizer, prompt, text, 512)) for text in rows)
    setup = TrainingSetup(precision=dtype, eval_batch_size=batch, sequence=longest + answer,
                          answer_tokens=answer)  # fmt: skip
    estimated = inference(shape, setup, context=0).total
    assert 0.80 * estimated <= measured <= estimated


def test_zoo_check_says_the_label_words_recipe_fits_and_shows_its_logits(capsys):
    args = ["check", "recipes/koalpaca-label-words.toml", "--gpu-memory", "40GiB", "--json"]
    assert main(args) == 0
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["model"] == "koalpaca-12.8b" and model["method"] == "qlora"
    assert model["head"] == "label-words" and model["fits"] is True
    # 4 rows x 256 tokens x the 30,080-token vocabulary, three float32 copies.
    assert model["logits_bytes"] == 12 * 4 * 256 * 30_080
    assert "logits" in model["estimate_bytes"] and "kv_cache" in model["estimate_bytes"]


def test_zoo_check_refuses_full_fine_tuning_with_label_words_and_keeps_the_head(capsys):
    args = ["check", "recipes/koalpaca-label-words.toml", "--gpu-memory", "40GiB", "--json",
            "--set", "models[0].method=full"]  # fmt: skip
    assert main(args) == 7
    (model,) = json.loads(capsys.readouterr().out)["models"]
    assert model["method"] == "full" and model["head"] == "label-words"
    assert model["fits"] is False and model["peak_phase"] == "backward"
    assert model["estimate_bytes"]["logits"] == 12 * 4 * 256 * 30_080
    changes = [s["change"] for s in model["suggestions"]]
    assert "LoRA" in changes and "QLoRA (4-bit base)" in changes
    assert model["plan"] is not None and model["plan"]["settings"]["method"] in {"lora", "qlora"}
    # No plan changes the method of classification.
    assert not any("head" in s["settings"] for s in model["suggestions"])
    assert main(args[:-3] + ["--set", "models[0].method=full"]) == 7
    assert "LM head logits and loss" in capsys.readouterr().out
