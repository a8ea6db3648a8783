"""Fixtures shared by zoo's tests."""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from zoo.plugins import ZooPluginManager, get_plugin_manager

# A recipe that validates against the built-in models, with the files `write_recipe` writes.
GOOD_RECIPE = """\
[run]
name = "tiny"

[data]
train = "train.csv"
test = "test.csv"

[[models]]
model = "minilm"
"""

TRAIN_CSV = """\
text,label
the server is down,ops
deploy failed again,ops
disk is full,ops
how do I sort a list,code
what does this error mean,code
why is my loop slow,code
"""

TEST_CSV = """\
text,label
nginx will not start,ops
how do I read a file,code
"""


@pytest.fixture
def pm() -> ZooPluginManager:
    """A fresh plugin manager with zoo's hook specs and no plugins at all: no entry points, no
    built-ins. Register test plugins on it with `pm.register(Plugin(), name="...")`."""
    return get_plugin_manager(entry_points=False, builtins=False)


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """Write a recipe into `tmp_path` beside tiny train.csv and test.csv files; return its path.

    ``write_recipe()`` writes `GOOD_RECIPE`; ``write_recipe(text)`` writes `text` (dedented).
    """

    def write(text: str = GOOD_RECIPE, name: str = "recipe.toml") -> Path:
        (tmp_path / "train.csv").write_text(TRAIN_CSV, encoding="utf-8")
        (tmp_path / "test.csv").write_text(TEST_CSV, encoding="utf-8")
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def render() -> Callable[[Any], str]:
    """Render a rich renderable (a table, ...) as plain text, 100 columns wide, without the
    trailing spaces that rich pads lines with."""

    def render(renderable: Any) -> str:
        console = Console(file=io.StringIO(), width=100, color_system=None)
        console.print(renderable)
        lines = console.file.getvalue().splitlines()
        return "".join(f"{line.rstrip()}\n" for line in lines)

    return render


@pytest.fixture
def shared_data() -> Path:
    """The real Korean data sets beside the project (``ZOO_SHARED_DATA``, default
    ``../shared/data``); tests that need them skip where they are absent, and fail under CI."""

    default = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    path = Path(os.environ.get("ZOO_SHARED_DATA") or default)
    if not (path / "README.md").is_file():
        why = f"shared data not found at {path}; set ZOO_SHARED_DATA to its folder"
        if os.environ.get("CI"):  # CI lays shared/ beside the checkout: absent there is a fault
            pytest.fail(why)
        pytest.skip(why)
    return path


def require(module: str, why: str):
    """Import a package that zoo's test environments install (the offline-model wheels): a
    test needing it skips where it is absent, but under CI, where tox installs it, its
    absence is a broken install and fails."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(why)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer random-init BERT with a Korean character vocabulary, saved as a model folder."""
    from tiny_models import demo_texts, save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), demo_texts())
