"""`zoo.ModelFamily`: what the memory estimator knows about one architecture, and the families
that plugins registered through the `register_model_families` hook.

A family claims `model_type` values of a Hugging Face `config.json`, reads the architecture
numbers from such a config, lists the model's parameter tensors, says what its layers save for
the backward pass, which dropout it has by default, and counts its parameters (the one
parameter counter: `zoo.resources` and the memory shapes both use it). The estimator's generic
code (`estimate`, `plan`, `check`) asks the family and never names an architecture itself.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from zoo.errors import PluginError, UnknownArchitecture
from zoo.memory.shapes import ModelShape, Tensor
from zoo.plugins import registrations

if TYPE_CHECKING:
    from zoo.memory.activations import Activations
    from zoo.memory.setup import TrainingSetup

HOOK = "register_model_families"


class ModelFamily(abc.ABC):
    """One architecture as the memory estimator models it. Subclass it, set `name` and
    `model_types`, write `tensors` and `activations` (and override the rest where the defaults,
    a BERT-like encoder's, do not hold), and register an instance through the
    `register_model_families` hook.

    Everything here is arithmetic on the config's numbers: no torch, no weights.
    """

    name: ClassVar[str] = ""
    model_types: ClassVar[tuple[str, ...]] = ()
    # The module of the word-embedding matrix among `tensors`: what train_embeddings freezes.
    word_embeddings: ClassVar[str] = "word_embeddings"
    # A causal LM (decoder): zero-shot, few-shot and head = "label-words" can use its LM head.
    decoder: ClassVar[bool] = False
    # What LoRA adapts in a `hub:` model of this family when the recipe names nothing.
    lora_targets: ClassVar[tuple[str, ...]] = ()

    def shape(self, config: Mapping[str, Any], labels: int) -> ModelShape:
        """The architecture numbers of a transformers config dictionary. Numbers only this
        family reads go into `ModelShape.extra`."""
        return ModelShape(family=self, labels=labels, **common_numbers(config))

    def config(self, shape: ModelShape) -> dict[str, Any]:
        """Keyword arguments for `transformers.AutoConfig.for_model` that build a model of this
        shape (the accuracy tests measure such models): the numbers every config has, as
        `common_numbers` reads them, for the family's first model type. A family adds the
        keys only it reads."""
        return {
            "model_type": self.model_types[0],
            "vocab_size": shape.vocab,
            "hidden_size": shape.hidden,
            "num_hidden_layers": shape.layers,
            "num_attention_heads": shape.heads,
            "intermediate_size": shape.ffn,
            "max_position_embeddings": shape.positions,
        }

    @abc.abstractmethod
    def tensors(self, shape: ModelShape, layers: int) -> list[Tensor]:
        """Every parameter tensor of `AutoModelForSequenceClassification` of this shape with
        `layers` layers: the fresh classification head marked `head=True`."""

    @abc.abstractmethod
    def activations(self, shape: ModelShape, setup: TrainingSetup) -> Activations:
        """What a training step keeps for the backward pass, layer by layer (see
        `zoo.memory.activations`)."""

    def lm_head(self, shape: ModelShape) -> list[Tensor]:
        """The causal LM's output layer, which head = "label-words" trains in place of the
        fresh classification head: vocabulary x hidden, without a bias, and no tensor of its
        own where the config ties it to the word embeddings (`ModelShape.tied_embeddings`)."""
        if shape.tied_embeddings:
            return []
        return [Tensor("lm_head", "linear", shape.vocab, shape.hidden)]

    def kv_per_token(self, shape: ModelShape) -> int:
        """Elements one layer caches per token for label scoring: keys and values, 2 x kv_heads
        x head_dim (2 x hidden where every attention head has keys and values of its own)."""
        return 2 * shape.hidden

    def attention_kv_per_token(self, shape: ModelShape) -> int:
        """Elements of one layer's keys and values per token as its attention reads them under
        a padding mask: `kv_per_token`, unless the family copies shared key/value heads out to
        every query head first (grouped-query attention)."""
        return self.kv_per_token(shape)

    def dropout(self, config: Mapping[str, Any]) -> tuple[bool, bool]:
        """Whether the model, as configured, has hidden and attention dropout (BERT's 0.1 by
        default)."""
        hidden = config.get("hidden_dropout_prob", 0.1)
        attention = config.get("attention_probs_dropout_prob", 0.1)
        return bool(hidden), bool(attention)

    def scored_positions(self, setup: TrainingSetup) -> int:
        """How many positions per row the classification head scores (an encoder: one)."""
        return 1

    def evaluation_per_token(self, shape: ModelShape, setup: TrainingSetup) -> int:
        """Evaluation without gradients: the bytes per token of one layer's intermediate
        tensors at their highest point (measured on BERT: the FFN's wide tensors, or eager
        attention's s x s scores and probabilities)."""
        s, h, f, a = setup.sequence, shape.hidden, shape.ffn, shape.heads
        half = 4 if setup.precision == "fp32" else 2
        stream = 2 if setup.precision == "bf16-pure" else 4
        ffn = half * 2 * f + stream * 4 * h
        attention = a * s * 2 * half + stream * 5 * h
        if setup.attention != "eager":
            attention = stream * 6 * h
        return max(ffn, attention)

    def parameters(self, config: Mapping[str, Any]) -> int:
        """Parameters of the model as zoo fine-tunes it, without the fresh classification head:
        the count `zoo models` lists."""
        return self.shape(config, 2).backbone_parameters()

    # Families are values: two instances of one class are the same family.
    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"<model family {self.name!r}>"


def common_numbers(config: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers every transformer config has, under their usual names (BERT's and GPT's)."""
    kind = config.get("model_type")
    hidden = (
        config.get("hidden_size") or config.get("d_model") or config.get("n_embd")
        or config.get("dim")
    )  # fmt: skip
    layers = (
        config.get("num_hidden_layers") or config.get("n_layer") or config.get("num_layers")
        or config.get("n_layers")
    )  # fmt: skip
    if not hidden or not layers:
        raise ValueError(f"cannot read hidden size and layers from a {kind!r} config")
    return {
        "vocab": config.get("vocab_size", 32_000),
        "hidden": hidden,
        "layers": layers,
        "heads": (
            config.get("num_attention_heads") or config.get("n_head") or config.get("n_heads") or 1
        ),
        "ffn": (
            config.get("intermediate_size")
            or config.get("n_inner")
            or config.get("hidden_dim")
            or 4 * hidden
        ),  # fmt: skip
        "positions": config.get("max_position_embeddings", 512),
        "type_vocab": config.get("type_vocab_size", 2),
        "rotary_pct": config.get("rotary_pct", 0.25),
    }


@attrs.frozen
class _Claim:
    family: ModelFamily
    plugin: str


@attrs.define
class Families:
    """The model families that plugins registered, by the `model_type` values they claim."""

    claims: dict[str, _Claim] = attrs.field(factory=dict)

    def add(self, family: ModelFamily, plugin: str, *, replace: bool = False) -> None:
        if not isinstance(family, ModelFamily):
            raise PluginError(
                f"plugin {plugin!r} registered {family!r}, which is not a zoo.ModelFamily"
            )
        if not family.name or not family.model_types:
            raise PluginError(
                f"plugin {plugin!r} registered a model family without a name or model_types",
                hint="set the class attributes name = '...' and model_types = ('...',)",
            )
        for model_type in family.model_types:
            earlier = self.claims.get(model_type)
            if earlier is not None and not replace:
                raise PluginError(
                    f"model_type {model_type!r} is claimed twice: by family "
                    f"{earlier.family.name!r} of plugin {earlier.plugin!r} and by family "
                    f"{family.name!r} of plugin {plugin!r}",
                    hint="register with replace=True to override a family on purpose",
                )
        for model_type in family.model_types:
            self.claims[model_type] = _Claim(family, plugin)

    def claim(self, model_type: str | None) -> ModelFamily | None:
        """The family that claims `model_type`, or None."""
        found = self.claims.get(model_type) if model_type else None
        return None if found is None else found.family

    def named(self, name: str) -> ModelFamily:
        for claim in self.claims.values():
            if claim.family.name == name:
                return claim.family
        raise ValueError(f"no model family is named {name!r} (families: {self.describe()})")

    def describe(self) -> str:
        return ", ".join(sorted({c.family.name for c in self.claims.values()})) or "none"

    def unknown(self, model_type: str | None, *, model: str | None = None) -> UnknownArchitecture:
        """The error for an architecture that no family claims."""
        kind = f"model_type {model_type!r}" if model_type else "a config.json without model_type"
        who = f"{model!r}: " if model else ""
        claimed = ", ".join(sorted(self.claims)) or "none"
        return UnknownArchitecture(
            f"{who}the memory estimator has no model family for {kind} (it knows: {claimed}), "
            "so it cannot estimate the model's training memory",
            hint=f"a plugin can add the family through the {HOOK} hook (README: 'Adding a "
            "model family'); or pass --rough to accept a rough BERT-like estimate",
        )


def collect_families(pm: Any, failures: list[tuple[str, str]] | None = None) -> Families:
    """Call every plugin's `register_model_families` (built-ins first, so that a third-party
    plugin can replace one on purpose) and collect what they register."""
    families = Families()
    for plugin, family, replace in registrations(pm, HOOK, failures):
        families.add(family, plugin, replace=replace)
    return families


def register_all(hook: Callable[..., None], plugin: str) -> Families:
    families = Families()
    hook(register=lambda family, *, replace=False: families.add(family, plugin, replace=replace))
    return families


@functools.cache
def builtin_families() -> Families:
    """The built-in families alone, registered through their own hook implementation (for
    code that runs without a plugin manager: parameter counts of specs, tests)."""
    from zoo.memory.families import builtins

    return register_all(builtins.register_model_families, builtins.__name__)


def rough_shape(config: Mapping[str, Any], labels: int) -> ModelShape:
    """A BERT-like stand-in of the config's size, for an architecture no family claims."""
    from zoo.memory.families.bert import RoughFamily

    return ModelShape(
        family=RoughFamily(), labels=labels, approximate=True, **common_numbers(config)
    )
