"""Text transforms: what a recipe's ``data.preprocess = ["mask-urls", ...]`` does to every text
before anything else sees it (hook `register_text_transforms`).

The transforms of a recipe are applied in its order to the texts of every data file as they
are read (so the data checks, the tokenization cache, which is keyed by the texts, and the
TF-IDF baseline all see the transformed texts), and `zoo predict` applies the same list,
which the run directory's recipe names, to its input: training and prediction never see
texts prepared in two ways.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence

import attrs

from zoo.errors import PluginError, UsageError
from zoo.hookspecs import hookimpl

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def _name(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"a text transform's name is lower-case words joined by '-' (mask-urls); got {value!r}"
        )


@attrs.frozen(kw_only=True)
class TextTransform:
    """A named function from one text to another, as plugins register it.

    ``apply(text)`` returns the new text. It must be deterministic and depend on the text
    alone (zoo applies it to training, validation, test and prediction inputs alike, and keys
    its caches by the texts it returns), and return a string that is not empty.
    """

    name: str = attrs.field(validator=_name)
    description: str  # one line for `zoo plugins` and error messages
    apply: Callable[[str], str] = attrs.field(eq=False, repr=False)


# A web address ends before the punctuation that ends its sentence ("see www.naver.com.").
_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]}]", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACE = re.compile(r"\s+")

NFC = TextTransform(
    name="nfc",
    description="Unicode NFC (Hangul typed as jamo, as macOS writes file names, made whole)",
    apply=lambda text: unicodedata.normalize("NFC", text),
)
COLLAPSE_WHITESPACE = TextTransform(
    name="collapse-whitespace",
    description="every run of spaces, tabs and line breaks as one space",
    apply=lambda text: _SPACE.sub(" ", text).strip(),
)
MASK_URLS = TextTransform(
    name="mask-urls",
    description="web addresses (http://, https://, ftp://, www.) as [URL]",
    apply=lambda text: _URL.sub("[URL]", text),
)
MASK_EMAILS = TextTransform(
    name="mask-emails",
    description="e-mail addresses as [EMAIL]",
    apply=lambda text: _EMAIL.sub("[EMAIL]", text),
)
MASK_NUMBERS = TextTransform(
    name="mask-numbers",
    description="numbers (digits, with . or , inside) as [NUM]",
    apply=lambda text: _NUMBER.sub("[NUM]", text),
)

BUILTIN_TRANSFORMS = (NFC, COLLAPSE_WHITESPACE, MASK_URLS, MASK_EMAILS, MASK_NUMBERS)


@hookimpl
def register_text_transforms(register: Callable[..., None]) -> None:
    for transform in BUILTIN_TRANSFORMS:
        register(transform)


@attrs.frozen
class RegisteredTransform:
    transform: TextTransform
    plugin: str


@attrs.define
class TransformRegistry:
    """Text transforms by name, each with the plugin that registered it."""

    registered: dict[str, RegisteredTransform] = attrs.field(factory=dict)
    failures: list[tuple[str, str]] = attrs.field(factory=list)

    def add(self, transform: TextTransform, plugin: str, *, replace: bool = False) -> None:
        from zoo.registry import _add_once

        if not isinstance(transform, TextTransform):
            raise PluginError(
                f"plugin {plugin!r} registered {transform!r}, which is not a zoo.TextTransform"
            )
        entry = RegisteredTransform(transform, plugin)
        _add_once(self.registered, "text transform", transform.name, entry, replace=replace)

    def __iter__(self) -> Iterator[TextTransform]:
        return (entry.transform for entry in self.registered.values())

    def names(self) -> list[str]:
        return list(self.registered)

    def pipeline(self, names: Sequence[str], *, where: str = "data.preprocess") -> Pipeline:
        """The transforms `names` names, in that order; a name that no plugin registered (a
        run directory's list, after its plugin was uninstalled) is an error naming `where`."""
        for name in names:
            if name not in self.registered:
                raise UsageError(
                    f"{where} names the text transform {name!r}, which no installed plugin "
                    "registers",
                    hint="install the plugin that provides it ('zoo plugins' lists what each "
                    f"registers; zoo's own are {', '.join(t.name for t in BUILTIN_TRANSFORMS)})",
                )
        return Pipeline(tuple(self.registered[name] for name in names))


@attrs.frozen
class Pipeline:
    """A recipe's ``data.preprocess``: its transforms, applied in order."""

    steps: tuple[RegisteredTransform, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(step.transform.name for step in self.steps)

    def __call__(self, text: str) -> str:
        for step in self.steps:
            text = step.transform.apply(text)
            if not isinstance(text, str):
                raise PluginError(
                    f"text transform {step.transform.name!r} of plugin {step.plugin!r} returned "
                    f"{type(text).__name__}, not a string",
                    hint="a text transform's apply(text) returns the new text",
                )
        return text


NO_PREPROCESSING = Pipeline()


def builtin_transforms() -> TransformRegistry:
    """zoo's own transforms alone, for callers without a plugin manager."""
    registry = TransformRegistry()
    for transform in BUILTIN_TRANSFORMS:
        registry.add(transform, __name__)
    return registry


def collect_transforms(pm) -> TransformRegistry:
    """Call every plugin's `register_text_transforms` and collect what they register."""
    from zoo.plugins import registrations

    registry = TransformRegistry()
    for plugin, transform, replace in registrations(
        pm, "register_text_transforms", registry.failures
    ):
        registry.add(transform, plugin, replace=replace)
    return registry
