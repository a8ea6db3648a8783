"""Scoring every label's words after a prompt with a causal LM: what zero-shot, few-shot and
the label-words head predict with (never free generation: each row gets exactly one label and
a score per label).

A label's score is the mean log-likelihood of its answer tokens (its words, and for a trained
label-words model the end-of-text token that ends every answer) after the row's prompt. The
prompt's keys and values are computed once per row and shared by all its labels
(`past_key_values`), where the model returns a cache; otherwise every (prompt, answer) pair
runs whole. Both give the same scores (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo.errors import RunRefused
from zoo.prompts import Prompt


def token_ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def leading_special_tokens(tokenizer: Any) -> list[int]:
    """The tokens the tokenizer puts before every text (a BOS token for Llama-style models;
    none for GPT-NeoX): a prompt starts with them, as the model saw its training texts."""
    plain = token_ids(tokenizer, "x")
    marked = list(tokenizer("x", add_special_tokens=True)["input_ids"])
    if plain and marked[len(marked) - len(plain) :] == plain:
        return marked[: len(marked) - len(plain)]
    return []


class PromptTooLong(RunRefused):
    """The prompt around the text leaves no room for the text within max_length."""


def frame_length(tokenizer: Any, prompt: Prompt) -> int:
    """The prompt's tokens without the row's text: the tokenizer's leading special tokens and
    the prompt's two sides."""
    sides = token_ids(tokenizer, prompt.before) + token_ids(tokenizer, prompt.after)
    return len(leading_special_tokens(tokenizer)) + len(sides)


def prompt_ids(tokenizer: Any, prompt: Prompt, text: str, room: int) -> list[int]:
    """The prompt's tokens around the text's, at most `room` of them: a long text loses its end,
    never the prompt's instructions or its answer cue."""
    start = leading_special_tokens(tokenizer)
    before, after = token_ids(tokenizer, prompt.before), token_ids(tokenizer, prompt.after)
    keep = room - len(start) - len(before) - len(after)
    if keep < 1:
        needed = room - keep
        raise PromptTooLong(
            f"the prompt takes {needed} tokens without the text, but the longest answer leaves "
            f"{room} of training.max_length for prompt and text",
            hint=f"raise training.max_length by at least {needed - room + 1} (more leaves room "
            "for the texts), or shorten the prompt",
        )
    return start + before + token_ids(tokenizer, text)[:keep] + after


def answer_ids(tokenizer: Any, words: Sequence[str], *, end: bool) -> list[list[int]]:
    """Each label's answer tokens: its words, then the end-of-text token when `end`."""
    eos = tokenizer.eos_token_id if end else None
    if end and eos is None:
        raise ValueError("the tokenizer has no end-of-text token to end an answer with")
    answers = [token_ids(tokenizer, w) + ([eos] if end else []) for w in words]
    for w, ids in zip(words, answers, strict=True):
        if not ids:
            raise ValueError(f"the label words {w!r} make no tokens")
    return answers


def label_scores(
    model: Any,
    tokenizer: Any,
    prompt: Prompt,
    texts: Sequence[str],
    words: Sequence[str],
    *,
    max_length: int,
    end: bool = False,
    batch_size: int = 8,
    progress: Any = None,
) -> np.ndarray:
    """Mean log-likelihood of each label's answer after each text's prompt: [texts, labels].

    `words` are the labels' words in label order; `end` appends the end-of-text token to every
    answer (a model trained with label words learned to say it). `batch_size` counts (prompt,
    answer) pairs; `progress.advance` gets the pairs scored."""
    answers = answer_ids(tokenizer, words, end=end)
    room = max_length - max(map(len, answers))
    prompts = [prompt_ids(tokenizer, prompt, text, room) for text in texts]
    model.eval()
    rows = max(1, batch_size // len(answers))
    scores = []
    for start in range(0, len(prompts), rows):
        chunk = prompts[start : start + rows]
        found = _cached_scores(model, tokenizer, chunk, answers)
        if found is None:
            found = _whole_scores(model, tokenizer, chunk, answers)
        scores.append(found)
        if progress is not None:
            progress.advance(len(chunk) * len(answers))
    return np.concatenate(scores) if scores else np.zeros((0, len(answers)))


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _cached_scores(
    model: Any, tokenizer: Any, prompts: list[list[int]], answers: list[list[int]]
) -> np.ndarray | None:
    """Scores from one pass over the prompts (left-padded, positions counted from each row's
    first real token) and one over all rows' answers on the repeated cache; None when the model
    returns no cache that can be repeated."""
    import torch

    device = next(model.parameters()).device
    n, labels = len(prompts), len(answers)
    width = max(map(len, prompts))
    ids = torch.full((n, width), _pad_id(tokenizer), dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = torch.tensor(p)
        mask[row, width - len(p) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    name = _cache_argument(model)
    with torch.no_grad():
        out = model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            use_cache=True,
            logits_to_keep=1,
        )
    cache = out.get(name)
    if cache is None or not hasattr(cache, "batch_repeat_interleave"):
        return None
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1).cpu()  # [n, vocab]
    totals = torch.stack([first[:, a[0]] for a in answers], dim=1)  # [n, labels]
    rest = max(len(a) for a in answers) - 1
    if rest:
        cache.batch_repeat_interleave(labels)
        follow = torch.full((n * labels, rest), _pad_id(tokenizer), dtype=torch.long)
        follow_mask = torch.zeros((n * labels, rest), dtype=torch.long)
        for j, a in enumerate(answers):
            follow[j::labels, : len(a) - 1] = torch.tensor(a[:-1])
            follow_mask[j::labels, : len(a) - 1] = 1
        lengths = mask.sum(-1).repeat_interleave(labels)
        with torch.no_grad():
            later = model(
                input_ids=follow.to(device),
                attention_mask=torch.cat([mask.repeat_interleave(labels, 0), follow_mask], 1).to(
                    device
                ),
                position_ids=(lengths[:, None] + torch.arange(rest)).to(device),
                **{name: cache},
                use_cache=True,
            ).logits
        log_probs = torch.log_softmax(later.float(), dim=-1).cpu()
        for j, a in enumerate(answers):
            if len(a) > 1:
                picked = log_probs[j::labels, torch.arange(len(a) - 1), torch.tensor(a[1:])]
                totals[:, j] += picked.sum(-1) if picked.dim() > 1 else picked
    lengths = torch.tensor([len(a) for a in answers], dtype=torch.float32)
    return (totals / lengths).numpy().astype(np.float64)


def _cache_argument(model: Any) -> str:
    """What the model's forward calls its key/value cache: `cache` from transformers 5.2x on
    (`past_key_values`, its old name, warns there), `past_key_values` before."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _whole_scores(
    model: Any, tokenizer: Any, prompts: list[list[int]], answers: list[list[int]]
) -> np.ndarray:
    """Scores from every (prompt, answer) pair run whole, right-padded (positions as unbatched)."""
    import torch

    device = next(model.parameters()).device
    pairs = [(p, a) for p in prompts for a in answers]
    width = max(len(p) + len(a) for p, a in pairs)
    ids = torch.full((len(pairs), width), _pad_id(tokenizer), dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (p, a) in enumerate(pairs):
        ids[row, : len(p) + len(a)] = torch.tensor(p + a)
        mask[row, : len(p) + len(a)] = 1
    with torch.no_grad():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
    scores = np.zeros(len(pairs))
    for row, (p, a) in enumerate(pairs):
        # Token t of the answer is predicted at position len(p) + t - 1.
        at = torch.arange(len(p) - 1, len(p) - 1 + len(a))
        scores[row] = float(log_probs[row, at, torch.tensor(a)].mean())
    return scores.reshape(len(prompts), len(answers))
