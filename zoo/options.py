"""How a data-file message names what the user can change: recipe keys for `zoo run`, command
line options for `zoo predict`."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class Options:
    """The names of the settings behind a data file's reading, and how a hint asks to change
    one ("set data.encoding to ..." for a recipe, "give --encoding ..." on a command line)."""

    text_column: str
    encoding: str
    # A text pair's second column is named by the same setting as its first.
    pair_column: str | None = None
    label_column: str | None = None
    id_column: str | None = None
    empty_texts: str | None = None
    on_command_line: bool = False

    def tell(self, setting: str, value: str) -> str:
        """A hint's request to set `setting` ("encoding", "text_column", ...) to `value`."""
        name = getattr(self, setting)
        return f"give {name} {value}" if self.on_command_line else f"set {name} to {value}"


# The `columns` keys (Table's) of the columns that hold texts, not labels or ids.
TEXT_OPTIONS = frozenset({"text_column", "pair_column"})

RECIPE = Options(
    text_column="data.text_column",
    pair_column="data.text_column",
    label_column="data.label_column",
    encoding="data.encoding",
    empty_texts="data.empty_texts",
)
PREDICT = Options(
    text_column="--text-column",
    pair_column="--text-column",
    encoding="--encoding",
    id_column="--id-column",
    on_command_line=True,
)
