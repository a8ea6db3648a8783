"""Loading a registered model for sequence classification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from zoo.errors import ModelUnavailableError
from zoo.spec import HubSource, LocalSource, ModelSpec, ResolvedSource, TokenizerSettings


@attrs.frozen(kw_only=True)
class LoadRequest:
    """Everything a loader needs: where the files are and what to classify."""

    spec: ModelSpec
    location: str  # a local directory or a hub repository id
    revision: str | None
    labels: tuple[str, ...]
    tokenizer: TokenizerSettings


def locate(spec: ModelSpec, checkpoint: Path | None) -> tuple[str, str | None]:
    """Where to load the model from: the recipe's checkpoint override, else the spec's source.

    Returns a directory or hub id, and a revision for hub sources.
    """
    if checkpoint is not None:
        if not checkpoint.is_dir():
            raise ModelUnavailableError(
                f"checkpoint for {spec.name!r} is not a directory: {checkpoint}",
                hint="point checkpoint at a folder with config.json and the weights",
            )
        return str(checkpoint), None
    source = spec.source
    if isinstance(source, HubSource):
        return source.repo_id, source.revision
    if isinstance(source, LocalSource):
        return locate(spec, source.path)
    if isinstance(source, ResolvedSource):
        return str(source.resolve()), None
    raise TypeError(f"unknown source type {type(source).__name__}")


def load_for_classification(request: LoadRequest) -> tuple[Any, Any]:
    """zoo's standard loader: a tokenizer and AutoModelForSequenceClassification with a fresh
    head for the recipe's labels (any head the checkpoint had is replaced)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    labels = request.labels
    settings = request.tokenizer
    common: dict[str, Any] = {"revision": request.revision} if request.revision else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(request.location, **common)
        model = AutoModelForSequenceClassification.from_pretrained(
            request.location,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            ignore_mismatched_sizes=True,
            **common,
        )
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot load {request.spec.name!r} from {request.location}: {exc}",
            hint='without a network, set checkpoint = "/local/dir" for this model in the recipe',
        ) from exc
    tokenizer.padding_side = settings.padding_side
    if settings.pad_token == "eos":
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
