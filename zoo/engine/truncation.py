"""Texts longer than `max_length` tokens: which of their tokens a model reads
(`training.truncation`), and how long the texts were.

Each text is encoded whole, with its special tokens, and then cut to `max_length` by keeping
its special tokens and: its first tokens (`head`, what the tokenizer's own truncation keeps),
its last ones (`tail`), or a quarter of the room from the start and the rest from the end
(`head+tail`, the split that Sun et al. 2019 found best for long reviews: 128 + 382 of 510);
or by splitting it into overlapping windows of `max_length` tokens that together hold all of
it (`chunks`, each window with the text's special tokens; consecutive windows share `stride`
tokens, and the last one ends where the text ends). Every list the tokenizer returns (input
ids, attention mask, token type ids) is cut at the same positions. Training, evaluation and
`zoo predict` cut through this one function, and turn the windows' probabilities into the
text's through `per_text`. A text pair (data.text_column = [first, second]) is cut by the
tokenizer's own pair truncation (`encode_pairs`), which only `head` describes.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from zoo.spec import DEFAULT_TRUNCATION, TRUNCATIONS

DEFAULT = DEFAULT_TRUNCATION
# The share of the room that head+tail gives the start of a text.
HEAD_SHARE = 0.25
# More cut texts than this share, and the run says so.
WARN_SHARE = 0.10
# The share of max_length that consecutive chunks share when training.chunk_stride is unset.
STRIDE_SHARE = 0.25
# What `encode` adds to the tokenizer's lists: each text's length before the cut, and which of
# the texts each of its rows is (one row a text, but one a window with `chunks`).
TEXT_TOKENS = "text_tokens"
TEXT_ROW = "text_row"


def stride_for(max_length: int, chunk_stride: int | None) -> int:
    """The tokens that consecutive chunks share: training.chunk_stride, else a quarter of
    max_length."""
    return int(max_length * STRIDE_SHARE) if chunk_stride is None else chunk_stride


def cache_key(strategy: str, stride: int = 0) -> str:
    """What of the cut decides the tokens besides max_length: the strategy, the share of the
    room head+tail gives the start, and the chunks' stride (a cache keyed by this never serves
    another cut)."""
    return f"{strategy}/{HEAD_SHARE}/{stride if strategy == 'chunks' else 0}"


def special_tokens(tokenizer: Any) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before and after one text ([CLS] ... [SEP]:
    1 and 1), found by encoding a probe with and without them."""
    probe = "zoo probe text"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return start, len(full) - start - len(bare)
    raise ValueError(f"cannot find the text's tokens among {full!r}")  # no tokenizer does this


def kept_positions(length: int, max_length: int, strategy: str, specials: tuple[int, int]) -> list:
    """The positions of an encoded text of `length` tokens (special ones included) to keep."""
    if length <= max_length:
        return list(range(length))
    before, after = specials
    room = max(max_length - before - after, 1)
    if strategy == "head":
        head = room
    elif strategy == "tail":
        head = 0
    elif strategy == "head+tail":
        head = int(room * HEAD_SHARE)
    else:
        raise ValueError(f"unknown truncation {strategy!r}; choose one of {', '.join(TRUNCATIONS)}")
    tail = room - head
    content_end = length - after
    return (
        list(range(before + head))
        + list(range(content_end - tail, content_end))
        + list(range(content_end, length))
    )


def chunk_positions(
    length: int, max_length: int, specials: tuple[int, int], stride: int
) -> list[list[int]]:
    """The windows of an encoded text of `length` tokens (special ones included): each holds
    the text's special tokens and up to `max_length` in all; together they hold every token,
    consecutive ones share `stride` of them, and the last ends where the text ends."""
    if length <= max_length:
        return [list(range(length))]
    before, after = specials
    room = max(max_length - before - after, 1)
    content = length - before - after
    step = max(room - stride, 1)
    starts = [*range(0, content - room, step), content - room]
    first, last = list(range(before)), list(range(length - after, length))
    return [first + list(range(before + s, before + s + room)) + last for s in starts]


def encode(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_length: int,
    strategy: str,
    specials: tuple[int, int] | None = None,
    stride: int = 0,
) -> dict[str, list[list[int]]]:
    """The texts as the model reads them, cut to `max_length` by `strategy` (with `chunks`,
    several rows a text, `stride` tokens shared), plus TEXT_TOKENS: each text's length in
    tokens before the cut (special tokens left out), and TEXT_ROW: which text (its position in
    `texts`) each row is. `specials`: the tokenizer's `special_tokens`, when the caller has
    found them already."""
    specials = specials or special_tokens(tokenizer)
    encoded = tokenizer(list(texts), truncation=False)
    out: dict[str, list[Any]] = {key: [] for key in encoded}
    out[TEXT_TOKENS], out[TEXT_ROW] = [], []
    for i, ids in enumerate(encoded["input_ids"]):
        if strategy == "chunks":
            pieces = chunk_positions(len(ids), max_length, specials, stride)
        else:
            pieces = [kept_positions(len(ids), max_length, strategy, specials)]
        for keep in pieces:
            for key in encoded:
                values = encoded[key][i]
                out[key].append([values[p] for p in keep])
            out[TEXT_TOKENS].append(len(ids) - sum(specials))
            out[TEXT_ROW].append(i)
    return out


def pair_specials(tokenizer: Any) -> int:
    """How many special tokens the tokenizer puts around a pair of texts ([CLS] a [SEP] b
    [SEP]: 3; <s> a </s></s> b </s>: 4), found by encoding a probe pair."""
    first, second = "zoo probe text", "another probe"
    bare = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in (first, second))
    return len(tokenizer(first, second)["input_ids"]) - bare


def encode_pairs(
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[str],
    *,
    max_length: int,
    specials: int | None = None,
) -> dict[str, list[Any]]:
    """Text pairs as the model reads them: the tokenizer's pair encoding, cut to `max_length`
    by its own truncation, which shortens the longer of the two texts first (so the pair
    shares max_length); with TEXT_TOKENS and TEXT_ROW as `encode` gives them. `specials`: the
    tokenizer's `pair_specials`, when the caller has found them already."""
    specials = pair_specials(tokenizer) if specials is None else specials
    whole = tokenizer(list(texts), list(pairs), truncation=False)["input_ids"]
    out: dict[str, list[Any]] = dict(
        tokenizer(list(texts), list(pairs), truncation="longest_first", max_length=max_length)
    )
    out[TEXT_TOKENS] = [len(ids) - specials for ids in whole]
    out[TEXT_ROW] = list(range(len(whole)))
    return out


def per_text(probabilities: np.ndarray, text_rows: Sequence[int], texts: int) -> np.ndarray:
    """Each text's class probabilities: the mean over its rows (its windows with `chunks`;
    with any other cut, one row a text, returned as it is)."""
    rows = np.asarray(text_rows, dtype=np.int64)
    if len(rows) == texts and np.array_equal(rows, np.arange(texts)):
        return probabilities
    counts = np.bincount(rows, minlength=texts)
    if (counts == 0).any():
        raise ValueError(f"no rows for texts {np.flatnonzero(counts == 0)[:5].tolist()}")
    sums = np.zeros((texts, probabilities.shape[1]), dtype=np.float64)
    np.add.at(sums, rows, probabilities)
    return sums / counts[:, None]


@attrs.frozen(kw_only=True)
class Lengths:
    """How long one split's texts were in tokens, and how many `max_length` cut."""

    texts: int
    median: float
    p95: float
    longest: int
    cut: int
    max_length: int
    # The rows the model reads: one a text, or with `chunks` one a window.
    windows: int

    @classmethod
    def of(
        cls,
        lengths: Sequence[int],
        max_length: int,
        specials: int,
        text_rows: Sequence[int] | None = None,
    ) -> Lengths:
        """From `encode`'s TEXT_TOKENS (and TEXT_ROW, when a text may have several rows)."""
        windows = len(lengths)
        if text_rows is not None:
            lengths = list({row: n for row, n in zip(text_rows, lengths, strict=True)}.values())
        ordered = sorted(lengths)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0
        return cls(
            texts=len(ordered),
            median=statistics.median(ordered) if ordered else 0,
            p95=p95,
            longest=ordered[-1] if ordered else 0,
            cut=sum(n + specials > max_length for n in ordered),
            max_length=max_length,
            windows=windows,
        )

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def warning(self, split: str, strategy: str) -> str | None:
        """What a run says when more than WARN_SHARE of the split's texts were cut (with
        `chunks` nothing is lost: nothing to say)."""
        if strategy == "chunks" or not self.texts or self.cut / self.texts <= WARN_SHARE:
            return None
        share = self.cut / self.texts
        return (
            f"{self.cut} of {self.texts} {split} texts ({share:.0%}) are longer than max_length "
            f"{self.max_length} tokens (median {self.median:g}, 95th percentile {self.p95:g}, "
            f"longest {self.longest}) and are cut ({strategy!r}: "
            + {
                "head": "their ends are lost",
                "tail": "their starts are lost",
                "head+tail": "their middles are lost",
            }[strategy]
            + "); a larger training.max_length or another training.truncation may read more"
        )
