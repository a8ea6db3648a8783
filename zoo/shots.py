"""Few-shot examples: which training rows a prompt shows, and how (no torch here).

`method = "few-shot"` scores each label's words after a prompt that first shows `shots`
training rows of every class, each in the prompt's own format and answered with its label's
words. The rows come from the training split only (validation and test rows are what is
scored). Each class's rows are ranked by a hash of the seed and the row's text, so a seed picks
the same rows whatever order the file lists them in, and another seed picks others. The
examples go in rounds, one of each class per round, the classes of each round in an order the
seed shuffles: no label always comes last, nearest the row's own prompt. Fitting the examples
into the model's context needs the tokenizer (zoo.engine.few_shot).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

import attrs

from zoo.data import LabelledTexts
from zoo.prompts import Prompt

# What ends each example: the next example, or the row's own prompt, starts after it.
SEPARATOR = "\n\n"


@attrs.frozen(kw_only=True)
class Shot:
    """One training row shown in the prompt, answered with its label's words."""

    row: int  # its position among the data rows of the training file (LabelledTexts.rows)
    line: int  # the line of the file where it starts
    label: str
    words: str  # what the example answers: the label's words
    text: str
    round: int  # 0 for the first example of each class, 1 for the second, ...


def _rank(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}\x00{text}".encode()).hexdigest()


def choose_shots(
    train: LabelledTexts,
    labels: Sequence[str],
    words: Sequence[str],
    per_class: int,
    seed: int,
) -> tuple[Shot, ...]:
    """Up to `per_class` training rows of each label (all it has, when fewer), in prompt order.

    `words` are the labels' answer words in label order."""
    said = dict(zip(labels, words, strict=True))
    by_label: dict[str, list[int]] = {label: [] for label in labels}
    for i, label in enumerate(train.labels):
        if label in by_label:
            by_label[label].append(i)
    picked = {
        label: sorted(found, key=lambda i: (_rank(seed, train.texts[i]), train.rows[i]))[:per_class]
        for label, found in by_label.items()
    }
    shuffle = random.Random(seed)
    shots = []
    for round_ in range(per_class):
        order = sorted(labels)
        shuffle.shuffle(order)
        for label in order:
            if round_ < len(picked[label]):
                i = picked[label][round_]
                shots.append(
                    Shot(
                        row=train.rows[i],
                        line=train.lines[i],
                        label=label,
                        words=said[label],
                        text=train.texts[i],
                        round=round_,
                    )
                )
    return tuple(shots)


def per_class(shots: Sequence[Shot], labels: Sequence[str]) -> dict[str, int]:
    """How many examples of each label, in label order."""
    return {label: sum(s.label == label for s in shots) for label in labels}


def short_classes(shots: Sequence[Shot], labels: Sequence[str], wanted: int) -> dict[str, int]:
    """The labels with fewer than `wanted` examples (fewer training rows), and how many."""
    return {label: n for label, n in per_class(shots, labels).items() if n < wanted}


def few_shot_prompt(prompt: Prompt, shots: Sequence[Shot], texts: Sequence[str]) -> Prompt:
    """`prompt` with the examples before it: each its text (`texts`, as fitted) in the prompt,
    then its label's words. Texts are put in as they are: never read as placeholders."""
    examples = "".join(
        prompt.render(text) + shot.words + SEPARATOR
        for shot, text in zip(shots, texts, strict=True)
    )
    return Prompt(examples + prompt.before, prompt.after)
