"""What a plugin hands over when it registers a model: plain data, no torch, no weights.

A `ModelSpec` says where the weights come from, how to tokenize for the model, what it needs to
run, and which training settings suit it. Loading happens later, in the engine, when a run
needs the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args

import attrs

from zoo.prompts import template_problem
from zoo.resources import parameters_from_config

# The name of a model family of the memory estimator (`zoo.ModelFamily.name`: "bert",
# "xlm-roberta", "gpt-neox", "modernbert", "electra", or one a plugin registers), or "other" for
# a model that is not a transformer (e.g. TF-IDF). The estimator itself picks the family from
# the architecture's `model_type`; this is the name `zoo models` shows.
Family = str
# How a model entry uses its model: the methods that train weights, and the prompting methods,
# which train nothing and score each label's words after a prompt (zero-shot; few-shot, with
# training examples in the prompt). A plugin says which its model supports (`Resources.methods`).
TrainingMethod = Literal["full", "lora", "qlora"]
PromptingMethod = Literal["zero-shot", "few-shot"]
Method = Literal[TrainingMethod, PromptingMethod]
METHODS: tuple[str, ...] = get_args(Method)
PROMPTING_METHODS: tuple[str, ...] = get_args(PromptingMethod)
# What a decoder (a causal LM) can do, where its plugin does not say otherwise (`hub:` models).
DECODER_METHODS: tuple[Method, ...] = ("full", "lora", "qlora", "zero-shot", "few-shot")
# What a trained model answers with: a fresh classification head ("classifier"), or, for a
# decoder, the label's words after a prompt, which its own LM head learns to say ("label-words").
Head = Literal["classifier", "label-words"]
HEADS: tuple[str, ...] = get_args(Head)


def trains_weights(method: str) -> bool:
    """Whether a method trains (and saves) a model; the prompting methods only score."""
    return method not in PROMPTING_METHODS


Precision = Literal["auto", "fp32", "fp16", "bf16"]
Attention = Literal["sdpa", "eager"]
# Which tokens of a text longer than max_length a model reads (zoo.engine.truncation).
Truncation = Literal["head", "tail", "head+tail", "chunks"]
TRUNCATIONS: tuple[str, ...] = get_args(Truncation)
DEFAULT_TRUNCATION = "head"  # an unset training.truncation: what the tokenizer's own cut keeps


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _valid_name(_instance: Any, _attribute: attrs.Attribute, value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(
            f"model name {value!r} must be lower-case letters, digits, '.', '_' or '-'"
        )


@attrs.frozen(kw_only=True)
class HubSource:
    """Weights on the Hugging Face hub (or in its local cache), pinned to a revision."""

    repo_id: str
    revision: str = "main"

    def describe(self) -> str:
        return self.repo_id if self.revision == "main" else f"{self.repo_id}@{self.revision}"


@attrs.frozen(kw_only=True)
class LocalSource:
    """A Hugging Face model directory on this machine."""

    path: Path = attrs.field(converter=Path)

    def describe(self) -> str:
        return str(self.path)


@attrs.frozen(kw_only=True)
class ResolvedSource:
    """A directory produced on demand, e.g. from files that a Python package ships.

    `resolve()` returns the directory; it may build it on first use (and cache it), and raises
    `zoo.errors.ModelUnavailableError` when it cannot.
    """

    label: str
    resolve: Callable[[], Path] = attrs.field(eq=False, repr=False)

    def describe(self) -> str:
        return self.label


@attrs.frozen(kw_only=True)
class NoWeights:
    """A model trained from scratch, with nothing to download or load (e.g. TF-IDF)."""

    def describe(self) -> str:
        return "trained from scratch"


Source = HubSource | LocalSource | ResolvedSource | NoWeights


@attrs.frozen(kw_only=True)
class TokenizerSettings:
    """How to tokenize for a model; the recipe's `max_length` overrides `max_length`."""

    max_length: int = attrs.field(default=128)
    padding_side: Literal["right", "left"] = "right"
    # "eos" makes the end-of-sequence token the pad token (GPT-style models have none).
    pad_token: Literal["eos"] | None = None
    # False drops BERT-style token_type_ids (RoBERTa-family models must not see them).
    token_type_ids: bool = True

    @max_length.validator
    def _positive(self, _attribute: attrs.Attribute, value: int) -> None:
        if value < 1:
            raise ValueError(f"max_length must be at least 1, got {value}")


def _count(resources: Resources) -> int | None:
    if resources.architecture is None:
        return None
    return parameters_from_config(resources.architecture)


@attrs.frozen(kw_only=True)
class Resources:
    """What a model needs: its size and the training methods it supports."""

    # The model's architecture numbers as a transformers config dictionary (model_type,
    # hidden_size, ...): enough to count its parameters, or build it on the meta device,
    # without any weights.
    architecture: Mapping[str, Any] | None = attrs.field(
        default=None, converter=attrs.converters.optional(_frozen_mapping)
    )
    # Parameters of the backbone (without the fresh classification head); computed from
    # `architecture` when not given.
    parameters: int | None = attrs.field(default=attrs.Factory(_count, takes_self=True))
    methods: tuple[Method, ...] = ("full",)
    # Module names that LoRA adapts when the recipe names none (e.g. ("query", "value")).
    lora_targets: tuple[str, ...] = ()
    default_precision: Precision = "auto"


@attrs.frozen(kw_only=True)
class CustomEngine:
    """How to train and use a model that is not a transformer (e.g. a scikit-learn baseline).

    `train(job, make_run_dir, progress)` returns ``(run_dir, zoo.engine.jobs.TrainResult)`` and
    saves what it learned under ``run_dir / "model"``; `predict(model_dir, texts)` returns the
    class probabilities, one row per text, columns in label order.

    `text_pairs`: the engine reads text pairs (data.text_column = [first, second]): its job's
    rows carry `pairs`, and `predict` is given (first, second) tuples. An engine that does not
    say so is never handed a pair recipe (it would read the first texts alone).

    `multi_label`: the engine learns several labels per text (data.label_separator): its job
    says `multi_label`, its probabilities are each label's own (rows x labels, not summing to
    1), and it scores each split with `score_split(..., separator=, thresholds=)`, the
    thresholds from `job.thresholds(validation probabilities)`; the result carries them
    (`TrainResult.scored(..., thresholds=)`). Any other engine is refused multi-label data.
    """

    train: Callable[..., Any] = attrs.field(eq=False)
    predict: Callable[..., Any] = attrs.field(eq=False)
    text_pairs: bool = False
    multi_label: bool = False


@attrs.frozen(kw_only=True)
class ModelSpec:
    """A model that zoo can fine-tune for sequence classification."""

    name: str = attrs.field(validator=_valid_name)
    description: str
    source: Source
    family: Family
    head: Literal["sequence-classification"] = "sequence-classification"
    tokenizer: TokenizerSettings = TokenizerSettings()
    resources: Resources = Resources()
    # Training settings that suit the model (keys of the recipe's [training] table); a recipe
    # that sets a key itself wins.
    defaults: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    # `loader(request) -> (model, tokenizer)`; None uses zoo's standard
    # AutoModelForSequenceClassification loader. Called only when a run needs the model.
    loader: Callable[..., Any] | None = attrs.field(default=None, eq=False, repr=False)
    # Replaces zoo's transformers engine altogether, for models that are not transformers.
    engine: CustomEngine | None = None
    # The model needs Python code from its repository; a recipe must also allow it.
    trust_remote_code: bool = False
    # A decoder's prompt for label words, zero-shot and few-shot (a recipe's `prompt` wins):
    # `{text}` once, where the text goes, and optionally `{labels}`, the label words listed.
    # None: zoo's default prompt (zoo.prompts.DEFAULT_PROMPT).
    prompt: str | None = attrs.field(default=None)

    @prompt.validator
    def _one_text_slot(self, _attribute: attrs.Attribute, value: str | None) -> None:
        problem = None if value is None else template_problem(value)
        if problem:
            raise ValueError(f"the prompt of {self.name!r}: {problem}")

    @property
    def training_defaults(self) -> dict[str, Any]:
        """The [training] keys this model's plugin sets: its tokenizer's max_length and its
        default precision, then its `defaults`, which win."""
        return {
            "max_length": self.tokenizer.max_length,
            "precision": self.resources.default_precision,
            **self.defaults,
        }
