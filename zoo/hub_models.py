"""Any Hugging Face hub model by id, without a plugin: ``model = "hub:ORG/NAME"`` in a recipe.

The model's `ModelSpec` is built from its own config.json, found on this machine and never
downloaded: in the entry's `checkpoint` folder when the recipe names one, else in the Hugging
Face cache (huggingface_hub's own offline lookup). The memory estimator's model family that
claims the config's `model_type` counts its parameters; the standard loader loads it. Plugins
remain the way to give a model tuned defaults, tokenizer quirks and a short name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from zoo.errors import ModelUnavailableError
from zoo.spec import DECODER_METHODS, HubSource, ModelSpec, Resources, TokenizerSettings

if TYPE_CHECKING:
    from zoo.memory.families.base import Families

PREFIX = "hub:"
# ORG/NAME as the hub allows them: letters, digits, '.', '_', '-', starting with a letter or a
# digit, without '--' or '..' (huggingface_hub's own rules), at most 96 characters.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?"
_ID = re.compile(rf"({_PART})/({_PART})")
# Tokens per text when the config allows more (what the plugins set for base-size encoders).
MAX_LENGTH = 512


def is_hub(model: str) -> bool:
    """Whether a recipe's `model` names a hub model by id (``hub:ORG/NAME``)."""
    return model.startswith(PREFIX)


def repo_id(model: str) -> str:
    """``hub:klue/roberta-large`` -> ``klue/roberta-large``, as written; `ValueError` says what
    is wrong with a malformed id."""
    repo = model.removeprefix(PREFIX)
    if not _ID.fullmatch(repo) or "--" in repo or ".." in repo or len(repo) > 96:
        raise ValueError(
            f"{model!r} is not a hub model id: write hub:ORG/NAME as huggingface.co spells it, "
            "e.g. 'hub:klue/roberta-large'"
        )
    return repo


def hub_label(model: str) -> str:
    """The name of a hub model in run folders and tables: NAME lower-cased (``hub:KLUE/RoBERTa-
    Base`` -> ``roberta-base``), a valid `ModelSpec.name`. A malformed id is returned as it is
    (recipe validation says what is wrong with it)."""
    try:
        name = repo_id(model).split("/")[1]
    except ValueError:
        return model
    return re.sub(r"[^a-z0-9._-]", "-", name.lower())


def find_config(model: str, checkpoint: Path | None, *, where: str = "the recipe") -> Path:
    """The config.json of a hub model: in `checkpoint` when given, else in the Hugging Face
    cache. Never downloads; `ModelUnavailableError` says where it looked and what to do."""
    repo = repo_id(model)
    if checkpoint is not None:
        path = checkpoint / "config.json"
        if path.is_file():
            return path
        looked = str(path)
    else:
        from huggingface_hub import constants, try_to_load_from_cache

        # The cache folder is read now, not when huggingface_hub was imported.
        found = try_to_load_from_cache(repo, "config.json", cache_dir=constants.HF_HUB_CACHE)
        if isinstance(found, str):
            return Path(found)
        looked = f"the Hugging Face cache ({constants.HF_HUB_CACHE})"
    raise ModelUnavailableError(
        f"{where}: model {model!r} has no config.json on this machine (looked in {looked}); "
        "zoo never downloads a hub model by id",
        hint=f'set checkpoint = "DIR" in its [[models]] entry to a folder with its config.json '
        f"and weights, or download it first on a machine with internet ('hf download {repo}') "
        "and copy that machine's Hugging Face cache into HF_HOME",
    )


def read_config(
    path: Path, *, hint: str = "fix or replace the config.json, or name another checkpoint"
) -> dict[str, Any]:
    """A model's config.json as a dictionary (read as JSON, nothing loaded); one that cannot be
    read so is refused, naming the file."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        found, why = None, str(exc)
    else:
        why = "not a JSON object"
    if not isinstance(found, dict):
        raise ModelUnavailableError(
            f"{path} cannot be read as a model configuration ({why})", hint=hint
        )
    return found


def hub_spec(
    model: str, checkpoint: Path | None, families: Families, *, where: str = "the recipe"
) -> ModelSpec:
    """The spec of ``hub:ORG/NAME`` from its config.json (see `find_config`), counted by the
    model family that claims its `model_type`. A type no family claims still makes a spec: the
    memory check refuses it (`UnknownArchitecture`) unless asked for a rough estimate."""
    from zoo.preflight import readable_positions

    path = find_config(model, checkpoint, where=where)
    config = read_config(path)
    family = families.claim(config.get("model_type"))
    try:
        parameters = None if family is None else family.parameters(config)
    except (ValueError, TypeError) as exc:
        raise ModelUnavailableError(
            f"{path} cannot be read as a {family.name} configuration ({exc})",
            hint="fix or replace the config.json, or name another checkpoint",
        ) from None
    positions = readable_positions(config)
    if positions is None or positions < 1:
        positions = MAX_LENGTH
    repo = repo_id(model)
    tokenizer = TokenizerSettings(max_length=min(MAX_LENGTH, positions))
    resources = Resources(architecture=config, parameters=parameters)
    if family is not None and family.decoder:
        # A causal LM: the prompting methods and label words too, LoRA on the family's
        # attention; a decoder without a pad token pads with its end-of-text token.
        pad = None if config.get("pad_token_id") is not None else "eos"
        tokenizer = attrs.evolve(tokenizer, pad_token=pad, token_type_ids=False)
        resources = attrs.evolve(
            resources, methods=DECODER_METHODS, lora_targets=family.lora_targets
        )
    return ModelSpec(
        name=hub_label(model),
        description=f"{repo} from its config.json ({config.get('model_type', 'no model_type')})",
        source=HubSource(repo_id=repo),
        family=family.name if family is not None else "other",
        tokenizer=tokenizer,
        resources=resources,
    )
