"""What a cell of a data file means, for texts, labels and header names alike.

1. Unicode NFC: the NFC and NFD spellings of 코드 (macOS file names and some exports use NFD)
   are one text and one label; recipe column names are compared in NFC too.
2. Surrounding whitespace is dropped (`str.strip`: spaces, tabs, line breaks, no-break and
   ideographic spaces); whitespace inside a text stays.
3. Missing values: a text or label that is then empty or one of pandas' default missing-value
   words, spelled exactly as pandas spells them (case matters), is missing. So `NaN`, `None`,
   `NULL`, `N/A` and `#N/A` are missing, while `none` (korean-hate-speech's label for "no hate
   speech") and `Nan` are values. A row with a missing text or label is an error, or is left out
   with data.empty_texts = "drop"; `zoo predict` classifies a missing text as an empty one.
"""

from __future__ import annotations

import unicodedata

# pandas' default NA strings (pandas._libs.parsers.STR_NA_VALUES), after stripping.
MISSING = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)


def clean(value: str) -> str:
    """A cell as zoo reads it: NFC, without surrounding whitespace."""
    return unicodedata.normalize("NFC", value).strip()


def text_to_classify(raw: str) -> str:
    """A text to classify as zoo reads it (a file's cell, or a text given to zoo.predict): its
    cleaned form, empty where it stands for a missing value."""
    value = clean(raw)
    return "" if is_missing(value) else value


def is_missing(cleaned: str) -> bool:
    """Whether a cleaned cell stands for a missing value."""
    return cleaned in MISSING
