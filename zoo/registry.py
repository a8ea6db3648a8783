"""The models and the metrics that plugins registered, by name."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from zoo import hub_models
from zoo.errors import PluginError, UnknownMetricError, UnknownModelError
from zoo.hub_models import hub_spec, is_hub
from zoo.memory.families.base import Families, builtin_families, collect_families
from zoo.metrics import Metric, unknown_metric_hint
from zoo.plugins import registrations
from zoo.spec import ModelSpec

if TYPE_CHECKING:
    from zoo.recipe import ModelEntry, Recipe


def _add_once(found: dict[str, Any], kind: str, name: str, entry: Any, *, replace: bool) -> None:
    """Every registry's rule: a name registered twice is an error naming both plugins, unless
    the later one replaces the earlier on purpose (``register(thing, replace=True)``)."""
    earlier = found.get(name)
    if earlier is not None and not replace:
        raise PluginError(
            f"{kind} {name!r} is registered twice: by plugin {earlier.plugin!r} "
            f"and by plugin {entry.plugin!r}",
            hint="rename one of them, or register with replace=True to override on purpose",
        )
    found[name] = entry


@attrs.frozen
class RegisteredModel:
    spec: ModelSpec
    plugin: str


@attrs.define
class Registry:
    """Model specs by name, each with the plugin that registered it."""

    models: dict[str, RegisteredModel] = attrs.field(factory=dict)
    # Plugins whose registration raised: (plugin name, reason). They are left out; the rest work.
    failures: list[tuple[str, str]] = attrs.field(factory=list)
    # The memory estimator's model families (the `register_model_families` hook).
    families: Families = attrs.field(factory=builtin_families)

    def add(self, spec: ModelSpec, plugin: str, *, replace: bool = False) -> None:
        if not isinstance(spec, ModelSpec):
            raise PluginError(
                f"plugin {plugin!r} registered {spec!r}, which is not a zoo.ModelSpec"
            )
        _add_once(self.models, "model", spec.name, RegisteredModel(spec, plugin), replace=replace)

    def __iter__(self) -> Iterator[RegisteredModel]:
        return iter(sorted(self.models.values(), key=lambda m: m.spec.name))

    def __contains__(self, name: str) -> bool:
        return name in self.models

    def names(self) -> list[str]:
        return sorted(self.models)

    def methods(self) -> dict[str, tuple[str, ...]]:
        """The training methods each model supports."""
        return {name: m.spec.resources.methods for name, m in self.models.items()}

    def suggest(self, name: str) -> str | None:
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.6)
        return close[0] if close else None

    def get(self, name: str) -> ModelSpec:
        if name in self.models:
            return self.models[name].spec
        guess = self.suggest(name)
        hint = f"did you mean {guess!r}? " if guess else ""
        raise UnknownModelError(f"unknown model {name!r}", hint=f"{hint}see 'zoo models'")

    def plugin_of(self, spec: ModelSpec) -> str:
        """The plugin that registered `spec`; for a ``hub:ORG/NAME`` model, which no plugin
        registered, the module that built it."""
        registered = self.models.get(spec.name)
        if registered is not None and registered.spec == spec:
            return registered.plugin
        return hub_models.__name__

    def spec_for(self, recipe: Recipe, entry: ModelEntry) -> ModelSpec:
        """The spec a recipe's model entry trains: a registered model by name, or a
        ``hub:ORG/NAME`` model built from its config.json (`zoo.hub_models`)."""
        if not is_hub(entry.model):
            return self.get(entry.model)
        checkpoint = recipe.path(entry.checkpoint) if entry.checkpoint else None
        return hub_spec(entry.model, checkpoint, self.families, where=recipe.source)


def collect_models(pm: pluggy.PluginManager) -> Registry:
    """Call every plugin's `register_model_families` and `register_models` and collect what
    they register. A spec whose architecture only a plugin's family knows gets its parameter
    count from that family."""
    registry = Registry()
    registry.families = collect_families(pm, registry.failures)
    for plugin, spec, replace in registrations(pm, "register_models", registry.failures):
        registry.add(_counted(spec, registry.families), plugin, replace=replace)
    return registry


@attrs.frozen
class RegisteredMetric:
    metric: Metric
    plugin: str


@attrs.define
class MetricRegistry:
    """Metrics by name, in the order they were registered (the built-ins first), each with the
    plugin that registered it."""

    registered: dict[str, RegisteredMetric] = attrs.field(factory=dict)
    failures: list[tuple[str, str]] = attrs.field(factory=list)

    def add(self, metric: Metric, plugin: str, *, replace: bool = False) -> None:
        if not isinstance(metric, Metric):
            raise PluginError(f"plugin {plugin!r} registered {metric!r}, which is not a zoo.Metric")
        entry = RegisteredMetric(metric, plugin)
        _add_once(self.registered, "metric", metric.name, entry, replace=replace)

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return tuple(entry.metric for entry in self.registered.values())

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.metrics)

    def __contains__(self, name: str) -> bool:
        return name in self.registered

    def names(self) -> list[str]:
        return list(self.registered)

    def get(self, name: str) -> Metric:
        if name in self.registered:
            return self.registered[name].metric
        raise UnknownMetricError(
            f"unknown metric {name!r}", hint=unknown_metric_hint(name, self.names())
        )


def collect_metrics(pm: pluggy.PluginManager) -> MetricRegistry:
    """Call every plugin's `register_metrics` and collect what they register."""
    registry = MetricRegistry()
    for plugin, metric, replace in registrations(pm, "register_metrics", registry.failures):
        registry.add(metric, plugin, replace=replace)
    return registry


def _counted(spec: ModelSpec, families: Families) -> ModelSpec:
    if not isinstance(spec, ModelSpec):
        return spec  # `Registry.add` says what is wrong with it
    resources = spec.resources
    if resources.parameters is not None or resources.architecture is None:
        return spec
    family = families.claim(resources.architecture.get("model_type"))
    if family is None:
        return spec
    counted = attrs.evolve(resources, parameters=family.parameters(resources.architecture))
    return attrs.evolve(spec, resources=counted)
