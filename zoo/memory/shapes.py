"""A model's shape, and every parameter tensor it has, from its architecture numbers alone.

The inventory lists the tensors of the model as zoo fine-tunes it
(`AutoModelForSequenceClassification` with a fresh head), so that weights, gradients and
optimizer state can be counted exactly, and LoRA targets, the largest Linear layer and the
Linear weights that autocast copies can be found. Which tensors there are is the model
family's business (`zoo.memory.families`): the shape asks its family.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from zoo.memory.families.base import ModelFamily

Kind = Literal["linear", "bias", "embedding", "norm"]
Block = Literal["attention", "ffn", "other"]


@attrs.frozen
class Tensor:
    """One parameter tensor: `module` is the name of the module that owns it (what LoRA's
    target_modules match), `block` the part of a transformer layer it belongs to, `head` marks
    the classification head. Its dtype is the training setup's (see `estimate.parameters`)."""

    module: str
    kind: Kind
    rows: int
    columns: int = 1
    block: Block = "other"
    head: bool = False

    @property
    def numel(self) -> int:
        return self.rows * self.columns


def linear(
    module: str, inputs: int, outputs: int, block: Block = "other", *, bias: bool = True
) -> list[Tensor]:
    """A Linear layer's weight (and bias); one outside the layers is the head's."""
    head = block == "other"
    weight = Tensor(module, "linear", outputs, inputs, block, head=head)
    return [weight, Tensor(module, "bias", outputs, 1, block, head=head)] if bias else [weight]


def norm(module: str, hidden: int, block: Block = "other", *, bias: bool = True) -> list[Tensor]:
    """A LayerNorm's weight (and bias)."""
    weight = Tensor(module, "norm", hidden, 1, block)
    return [weight, Tensor(module, "norm", hidden, 1, block)] if bias else [weight]


def _family(value: ModelFamily | str) -> ModelFamily:
    from zoo.memory.families.base import ModelFamily, builtin_families

    return value if isinstance(value, ModelFamily) else builtin_families().named(value)


@attrs.frozen(kw_only=True)
class ModelShape:
    """The architecture numbers the estimator needs. `family` is a `zoo.ModelFamily` (a
    built-in one may be given by name); `extra` holds numbers only that family reads (e.g.
    ELECTRA's embedding size, ModernBERT's attention pattern)."""

    family: ModelFamily = attrs.field(converter=_family)
    vocab: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    labels: int = 2
    positions: int = 512
    type_vocab: int = 2
    rotary_pct: float = 0.25
    # A decoder's LM head is its word-embedding matrix (config `tie_word_embeddings`): no
    # weights of its own (`ModelFamily.lm_head`).
    tied_embeddings: bool = False
    extra: Mapping[str, Any] = attrs.field(
        factory=dict, converter=lambda v: MappingProxyType(dict(v)), eq=False, hash=False
    )
    # True when no family models the architecture tensor by tensor: the estimate is a rough one.
    approximate: bool = False

    def config(self) -> dict[str, Any]:
        """Keyword arguments for `transformers.AutoConfig.for_model`."""
        return self.family.config(self)

    def tensors(self, layers: int | None = None) -> list[Tensor]:
        """Every parameter tensor (with `layers`, of a model with that many layers)."""
        return self.family.tensors(self, self.layers if layers is None else layers)

    def parameters(self) -> int:
        return sum(t.numel for t in self.tensors())

    def backbone_parameters(self) -> int:
        """The model without its fresh classification head: what `zoo models` lists."""
        return sum(t.numel for t in self.tensors() if not t.head)


def shape_from_config(
    config: Mapping[str, Any], labels: int, *, families: Any = None, rough: bool = False
) -> ModelShape:
    """The shape of a model from its transformers config dictionary, read by the family that
    claims its `model_type` (`families`: a `zoo.memory.families.Families`, the built-in ones
    when None). An architecture no family claims raises `UnknownArchitecture`, unless `rough`
    asks for a BERT-like stand-in of the same size, flagged as approximate."""
    from zoo.memory.families.base import builtin_families, rough_shape

    families = builtin_families() if families is None else families
    family = families.claim(config.get("model_type"))
    if family is None:
        if rough:
            return rough_shape(config, labels)
        raise families.unknown(config.get("model_type"))
    return family.shape(config, labels)
