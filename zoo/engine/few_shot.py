"""Fitting few-shot examples into the model's context (zoo.shots chooses them).

The whole prompt, the examples, the row's own prompt and the longest answer, must fit
training.max_length. Every text, each example's and the row's own, gets the same budget of
tokens: the largest that fits, so a short example stays whole and gives its room to the long
ones. A budget under MIN_TEXT_TOKENS drops the last example of every class (a round) and tries
again, down to one per class; if even that does not fit, the run is refused before anything is
scored. The prompt's instructions and answer cue are never cut; an example's text is cut at a
token boundary and keeps its characters as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from zoo.engine.label_scoring import PromptTooLong, answer_ids, frame_length, token_ids
from zoo.prompts import Prompt
from zoo.shots import Shot, choose_shots, few_shot_prompt, per_class, short_classes

# Fewer tokens of an example's text (or of the row's own) than this say too little to show.
MIN_TEXT_TOKENS = 16


class ShotsTooLong(PromptTooLong):
    """Not even one example of each class fits training.max_length beside the row's prompt."""


@attrs.frozen(kw_only=True)
class FittedShots:
    """The few-shot prompt that fits, and what it holds."""

    prompt: Prompt
    shots: tuple[Shot, ...]
    tokens: tuple[int, ...]  # each example's text in tokens, as the prompt holds it
    cut: tuple[bool, ...]  # whether that text was cut to fit
    budget: int  # tokens each text may take, the row's own included
    dropped: int  # examples left out to fit


def _cut(tokenizer: Any, text: str, budget: int) -> tuple[str, int, bool]:
    """The text's first `budget` tokens as a prefix of the text itself (its characters kept)."""
    ids = token_ids(tokenizer, text)
    if len(ids) <= budget:
        return text, len(ids), False
    try:
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        return text[: offsets[budget - 1][1]], budget, True
    except (NotImplementedError, KeyError, TypeError):  # a slow tokenizer has no offsets
        return tokenizer.decode(ids[:budget]), budget, True


def _render(tokenizer: Any, prompt: Prompt, shots: Sequence[Shot], budget: int):
    cuts = [_cut(tokenizer, shot.text, budget) for shot in shots]
    fitted = few_shot_prompt(prompt, shots, [text for text, _, _ in cuts])
    return fitted, cuts


def _used(tokenizer: Any, prompt: Prompt, budget: int) -> int:
    """The prompt's tokens without the row's text, and the budget the row's text may take."""
    return frame_length(tokenizer, prompt) + budget


def fit_shots(
    tokenizer: Any,
    prompt: Prompt,
    shots: Sequence[Shot],
    words: Sequence[str],
    *,
    max_length: int,
) -> FittedShots:
    """The few-shot prompt of `shots` (zoo.shots.choose_shots) around `prompt` that fits
    `max_length` with the longest of the labels' `words` after it; raises ShotsTooLong."""
    if not shots:
        return FittedShots(prompt=prompt, shots=(), tokens=(), cut=(), budget=0, dropped=0)
    room = max_length - max(map(len, answer_ids(tokenizer, words, end=False)))
    longest = max((len(token_ids(tokenizer, s.text)) for s in shots), default=0)
    top = max(longest, MIN_TEXT_TOKENS)
    rounds = max((s.round for s in shots), default=-1) + 1
    for kept_rounds in range(rounds, 0, -1):
        kept = [s for s in shots if s.round < kept_rounds]

        def fits(budget: int, kept: list[Shot] = kept) -> bool:
            return _used(tokenizer, _render(tokenizer, prompt, kept, budget)[0], budget) <= room

        if not fits(MIN_TEXT_TOKENS):
            continue
        low, high = MIN_TEXT_TOKENS, top  # fits(low); the largest budget that fits
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(middle) else (low, middle - 1)
        fitted, cuts = _render(tokenizer, prompt, kept, low)
        return FittedShots(
            prompt=fitted,
            shots=tuple(kept),
            tokens=tuple(n for _, n, _ in cuts),
            cut=tuple(c for _, _, c in cuts),
            budget=low,
            dropped=len(shots) - len(kept),
        )
    one_each = [s for s in shots if s.round == 0]
    needed = _used(tokenizer, _render(tokenizer, prompt, one_each, MIN_TEXT_TOKENS)[0], 0)
    needed += MIN_TEXT_TOKENS + max_length - room
    raise ShotsTooLong(
        f"few-shot: one example of each class ({len(one_each)}) with {MIN_TEXT_TOKENS} tokens of "
        f"text each, the row's prompt and its answer take {needed} tokens, more than "
        f"training.max_length = {max_length}",
        hint=f"raise training.max_length to at least {needed} (more leaves room for longer "
        "examples and texts), or use method = 'zero-shot'",
    )


def job_shots(job: Any, tokenizer: Any) -> FittedShots:
    """The few-shot prompt of a TrainJob: `job.shots` training rows per class, chosen by
    `job.seed`, fitted into `job.settings.max_length`."""
    words = job.answer_words()
    shots = choose_shots(job.splits.train, job.splits.labels, words, job.shots, job.seed)
    return fit_shots(
        tokenizer, job.prompt_for_labels(), shots, words, max_length=job.settings.max_length
    )


def shots_record(fitted: FittedShots, labels: Sequence[str], wanted: int, max_length: int):
    """What the run directory keeps of the examples (zoo.rundir.SHOTS), and what the user should
    know of them: a class with fewer training rows, examples left out or cut to fit."""
    held = max((s.round for s in fitted.shots), default=-1) + 1  # examples per class
    notices = [
        f"few-shot: label {label!r} has {n} training rows, fewer than the {held} examples per "
        "class of the others: the prompt shows all of them"
        for label, n in short_classes(fitted.shots, labels, held).items()
    ]
    if fitted.dropped:
        notices.append(
            f"few-shot: {wanted} examples per class do not fit training.max_length = "
            f"{max_length}; the prompt holds {held} per class ({fitted.dropped} examples left "
            "out): raise training.max_length or lower shots"
        )
    if any(fitted.cut):
        notices.append(
            f"few-shot: {sum(fitted.cut)} of the {len(fitted.shots)} examples are cut to "
            f"{fitted.budget} tokens of text to fit training.max_length = {max_length}"
        )
    return {
        "shots": wanted,
        "in_prompt": per_class(fitted.shots, labels),
        "text_budget": fitted.budget,
        "dropped": fitted.dropped,
        "examples": [
            {
                "row": s.row,
                "line": s.line,
                "label": s.label,
                "words": s.words,
                "tokens": n,
                "cut": cut,
            }  # fmt: skip
            for s, n, cut in zip(fitted.shots, fitted.tokens, fitted.cut, strict=True)
        ],
        "notices": notices,
    }
