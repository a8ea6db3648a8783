"""Finding and loading plugins: third-party ones through the entry-point group ``zoo``, then the
built-ins, all through the same hooks.

Two environment variables control third-party plugins:

- ``ZOO_PLUGINS``: a comma-separated allow-list of entry-point names; when set, only those load
  (set it empty to load none).
- ``ZOO_BLOCK_PLUGINS``: a comma-separated list of plugin names that never load (entry-point
  names, or built-in module names such as ``zoo_plugins.minilm``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import pluggy

from zoo import hookspecs
from zoo.errors import PluginError

ENTRY_POINT_GROUP = "zoo"

BUILTIN_PLUGINS = (
    "zoo_plugins.minilm",
    "zoo_plugins.e5_small",
    "zoo_plugins.finbert",
    "zoo_plugins.xlmr",
    "zoo_plugins.koalpaca",
    "zoo_plugins.qwen3",
    "zoo_plugins.llama32",
    "zoo_plugins.mmbert",
    "zoo_plugins.koelectra",
    "zoo_plugins.klue_roberta",
    "zoo_plugins.tfidf",
    "zoo_plugins.mlflow_tracker",
    "zoo.memory.probe",
    "zoo.metrics",
    "zoo.transforms",
    "zoo.memory.families.builtins",
    "zoo.executors",
)


@attrs.frozen(kw_only=True)
class PluginInfo:
    """Where a plugin came from and whether it loaded."""

    name: str
    module: str
    origin: str  # "built-in" or "DISTRIBUTION VERSION"
    status: str = "loaded"  # "loaded", "blocked", "not allowed" or "failed: REASON"


class ZooPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers where each plugin came from."""

    def __init__(self) -> None:
        super().__init__("zoo")
        self.add_hookspecs(hookspecs)
        self.info: list[PluginInfo] = []


def _names(environ: Mapping[str, str], key: str) -> frozenset[str] | None:
    if key not in environ:
        return None
    return frozenset(n.strip() for n in environ[key].split(",") if n.strip())


def _origin(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"


def _load_entry_points(pm: ZooPluginManager, environ: Mapping[str, str]) -> None:
    allowed = _names(environ, "ZOO_PLUGINS")
    blocked = _names(environ, "ZOO_BLOCK_PLUGINS") or frozenset()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        info = PluginInfo(name=ep.name, module=ep.value, origin=_origin(ep))
        if ep.name in blocked:
            pm.info.append(attrs.evolve(info, status="blocked"))
            continue
        if allowed is not None and ep.name not in allowed:
            pm.info.append(attrs.evolve(info, status="not allowed"))
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take zoo down with it
            pm.info.append(attrs.evolve(info, status=f"failed: {type(exc).__name__}: {exc}"))
            continue
        pm.register(module, name=ep.name)
        pm.info.append(info)


def _load_builtins(pm: ZooPluginManager, environ: Mapping[str, str]) -> None:
    blocked = _names(environ, "ZOO_BLOCK_PLUGINS") or frozenset()
    for module_name in BUILTIN_PLUGINS:
        info = PluginInfo(name=module_name, module=module_name, origin="built-in")
        if module_name in blocked:
            pm.info.append(attrs.evolve(info, status="blocked"))
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
        pm.info.append(info)


def get_plugin_manager(
    *, entry_points: bool = True, builtins: bool = True, environ: Mapping[str, str] | None = None
) -> ZooPluginManager:
    """Build the plugin manager: entry points (group ``zoo``), then the built-ins.

    ``check_pending()`` makes a misspelled hook name fail loudly instead of being ignored.
    """
    environ = os.environ if environ is None else environ
    pm = ZooPluginManager()
    if entry_points:
        _load_entry_points(pm, environ)
    if builtins:
        _load_builtins(pm, environ)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(
            f"plugin {name!r} implements an unknown hook: {exc}",
            hint="hooks are listed in zoo/hookspecs.py; check the spelling",
        ) from exc
    return pm


def is_builtin(plugin_name: str) -> bool:
    return plugin_name.startswith(("zoo_plugins.", "zoo."))


def registrations(
    pm: pluggy.PluginManager,
    hook: str,
    failures: list[tuple[str, str]] | None,
    *,
    order: Literal["builtins first", "pluggy"] = "builtins first",
) -> list[tuple[str, Any, bool]]:
    """Call every plugin's ``hook(register)`` and return what each registered, as (plugin,
    thing, replace) in order: the built-ins first, so that a third-party plugin can replace
    one of them on purpose (``register(thing, replace=True)``); or, for things that are asked
    in turn (device probes), in pluggy's call order, where a ``trylast`` built-in comes last.

    A plugin's registrations count once it has finished: one that raises half-way leaves none
    behind and is listed in `failures` (one broken plugin must not hide the others' things),
    or raises when there is no list.
    """
    found: list[tuple[str, Any, bool]] = []
    impls = getattr(pm.hook, hook).get_hookimpls()
    if order == "builtins first":
        impls = sorted(impls, key=lambda impl: not is_builtin(impl.plugin_name))
    else:
        impls = impls[::-1]  # pluggy calls the plugins registered last first
    for impl in impls:
        pending: list[tuple[Any, bool]] = []

        def register(thing: Any, *, replace: bool = False, _pending=pending) -> None:
            _pending.append((thing, replace))

        try:
            impl.function(register=register)
        except Exception as exc:
            if failures is None:
                raise
            failures.append((impl.plugin_name, f"{type(exc).__name__}: {exc}"))
            continue
        found.extend((impl.plugin_name, thing, replace) for thing, replace in pending)
    return found


def hook_names() -> list[str]:
    """Every hook of zoo (`zoo/hookspecs.py`), in the order it declares them."""
    return [name for name in vars(hookspecs) if name.startswith("register_")]


def what_each_registered(pm: pluggy.PluginManager) -> dict[str, dict[str, list[str]]]:
    """What each plugin registered, by plugin and then by kind (the hook's name without
    ``register_``: models, metrics, device_probes, ...), each thing by its name. Registering
    is cheap by contract (no torch, no weights), so `zoo plugins` can ask every hook."""
    found: dict[str, dict[str, list[str]]] = {}
    for hook in hook_names():
        for plugin, thing, _replace in registrations(pm, hook, []):
            kind = hook.removeprefix("register_")
            found.setdefault(plugin, {}).setdefault(kind, []).append(_name_of(thing))
    return found


def _name_of(thing: Any) -> str:
    if isinstance(getattr(thing, "name", None), str):  # a ModelSpec, zoo.Metric, ModelFamily
        return thing.name
    return getattr(thing, "__qualname__", type(thing).__name__)  # a probe or listener
