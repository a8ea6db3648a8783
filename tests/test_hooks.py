"""Every hook has a test and a README section (datasette's meta-test): for each hook spec in
`zoo.hookspecs`, some test under tests/ is named ``test_hook_<hook>``, and a README heading
names the hook in backticks (``### `register_models`: ...``)."""

from __future__ import annotations

import ast
import re
import textwrap
import types
from pathlib import Path

import pytest

import zoo.hookspecs
from zoo.hookspecs import hookspec

ROOT = Path(__file__).resolve().parent.parent


def hook_names(module: types.ModuleType) -> list[str]:
    """The hooks a hook-spec module specifies (pluggy marks each with ``zoo_spec``)."""
    return sorted(
        name
        for name, value in vars(module).items()
        if callable(value) and getattr(value, "zoo_spec", None) is not None
    )


def function_names(tests_dir: Path) -> set[str]:
    """The names of every function defined in the test files under `tests_dir`."""
    return {
        node.name
        for path in tests_dir.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def heading_names(readme: str) -> set[str]:
    """What the README's headings name in backticks."""
    return {
        name
        for heading in re.findall(r"^#{1,6} (.*)$", readme, re.M)
        for name in re.findall(r"`([^`]+)`", heading)
    }


def hook_problems(module: types.ModuleType, tests_dir: Path, readme: str) -> list[str]:
    """What each hook of `module` lacks: a test, a README section."""
    tests, headings = function_names(tests_dir), heading_names(readme)
    problems = []
    for hook in hook_names(module):
        if f"test_hook_{hook}" not in tests:
            problems.append(f"hook {hook!r} has no test: write test_hook_{hook} under tests/")
        if hook not in headings:
            problems.append(
                f"hook {hook!r} is not documented: give it a README section whose heading "
                f"names `{hook}`"
            )
    return problems


@pytest.mark.parametrize("hook", hook_names(zoo.hookspecs))
def test_every_hook_has_a_test_and_a_readme_section(hook):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    problems = hook_problems(zoo.hookspecs, ROOT / "tests", readme)
    assert [p for p in problems if p.startswith(f"hook {hook!r} ")] == []


def test_the_hooks_are_found():
    assert {"register_models", "register_device_probes", "register_run_listeners"} <= set(
        hook_names(zoo.hookspecs)
    )
    assert "hookimpl" not in hook_names(zoo.hookspecs)


def test_the_meta_check_reports_an_untested_or_undocumented_hook(tmp_path):
    @hookspec
    def register_models(register): ...

    @hookspec
    def register_widgets(register): ...

    @hookspec
    def register_gadgets(register): ...

    fake = types.ModuleType("fake_hookspecs")
    fake.register_models = register_models
    fake.register_widgets = register_widgets
    fake.register_gadgets = register_gadgets
    fake.helper = lambda: None  # not a hook spec
    (tmp_path / "test_fake.py").write_text(
        textwrap.dedent(
            """\
            def test_hook_register_models(pm): ...
            def test_hook_register_gadgets_more(): ...  # not the name the check wants
            class TestGadgets:
                def test_hook_register_gadgets(self): ...
            """
        ),
        encoding="utf-8",
    )
    readme = textwrap.dedent(
        """\
        ## Models and plugins
        ### `register_models`: models
        `register_widgets` named in the text, not in a heading, is not a section.
        """
    )
    assert hook_problems(fake, tmp_path, readme) == [
        "hook 'register_gadgets' is not documented: give it a README section whose heading "
        "names `register_gadgets`",
        "hook 'register_widgets' has no test: write test_hook_register_widgets under tests/",
        "hook 'register_widgets' is not documented: give it a README section whose heading "
        "names `register_widgets`",
    ]
