"""Prompts and label words: how a decoder is asked for a label (no torch here).

A prompt template holds `{text}` once, where the row's text goes, and optionally `{labels}`,
the label words listed in sorted order (so the answer does not depend on the order labels come
in). Nothing else in it is read as a placeholder: braces in a user's prompt, or in the texts,
stay as they are. The prompting methods (zero-shot, few-shot) and the label-words head score
each label's words after the prompt (`zoo.engine.label_scoring`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

TEXT = "{text}"
LABELS = "{labels}"
# The prompt of a decoder whose plugin names none: KoAlpaca's own question/answer format.
DEFAULT_PROMPT = "### 질문: 다음 글은 {labels} 중 어느 분류에 속하나요?\n\n{text}\n\n### 답변: "
DEFAULT_SHOTS = 4  # method = "few-shot" without `shots`: training examples per class


def template_problem(template: str) -> str | None:
    """What is wrong with a prompt template, or None."""
    found = template.count(TEXT)
    if found != 1:
        return f"a prompt needs {TEXT} exactly once (where the text goes), found it {found} times"
    return None


@attrs.frozen
class Prompt:
    """A prompt with its text slot split out: a row's prompt is `before + text + after`."""

    before: str
    after: str

    @classmethod
    def from_template(cls, template: str, words: Sequence[str]) -> Prompt:
        """The template with `{labels}` filled in by the label words (sorted, comma-separated)."""
        problem = template_problem(template)
        if problem:
            raise ValueError(problem)
        before, after = template.split(TEXT)
        listed = ", ".join(sorted(words))
        return cls(before.replace(LABELS, listed), after.replace(LABELS, listed))

    def render(self, text: str) -> str:
        return self.before + text + self.after

    def template(self) -> str:
        """The prompt with `{text}` where the text goes (what a run directory records)."""
        return self.before + TEXT + self.after


def label_words_problems(label_words: Mapping[str, str]) -> list[str]:
    """What is wrong with a recipe's label_words table: empty words, and two labels with the
    same words (their scores could not tell them apart)."""
    problems = []
    seen: dict[str, str] = {}
    for label, words in label_words.items():
        if not isinstance(words, str) or not words.strip():
            problems.append(f"label {label!r}: expected its words as a non-empty string")
            continue
        if words.strip() in seen:
            problems.append(
                f"labels {seen[words.strip()]!r} and {label!r} both have the words "
                f"{words.strip()!r}: give each label words of its own"
            )
        seen[words.strip()] = label
    return problems


def answer_words(labels: Sequence[str], label_words: Mapping[str, str] | None) -> list[str]:
    """The words each label is answered with, in label order: the recipe's label_words where
    given, else the label's own name. Two labels with the same words raise ValueError."""
    given = label_words or {}
    words = [given[label].strip() if label in given else label for label in labels]
    for i, word in enumerate(words):
        if word in words[:i]:
            raise ValueError(
                f"labels {labels[words.index(word)]!r} and {labels[i]!r} would both be answered "
                f"{word!r}: give them different label_words"
            )
    return words


def unknown_label_words(labels: Sequence[str], label_words: Mapping[str, str] | None) -> list[str]:
    """label_words keys that are no label of the data (a typo would silently score the name)."""
    return sorted(set(label_words or {}) - set(labels))


def resolved_prompt(recipe_prompt: str | None, plugin_prompt: str | None) -> str:
    """The prompt a model entry runs with: the recipe's, else its plugin's, else zoo's."""
    return recipe_prompt or plugin_prompt or DEFAULT_PROMPT
