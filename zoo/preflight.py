"""What can be known before training is checked before training.

`zoo validate` and `zoo run` check a recipe against its data (class weights, one per label),
against the models' own limits (max_length within a model's position embeddings, from its
config) and against the place it writes to (run.output_dir), after reading the data and before
anything loads, trains or is recorded. Every problem is a recipe problem (exit 2), all at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from zoo.engine.distributed import world
from zoo.errors import Problem, RecipeError
from zoo.metrics import BUILTIN_METRICS, MULTI_LABEL_METRICS, Metric, for_task
from zoo.recipe import ModelEntry, Recipe
from zoo.registry import Registry
from zoo.spec import ModelSpec, trains_weights

# Model types whose position ids start after the padding index (RoBERTa's `padding_idx + 1`):
# they read `max_position_embeddings - pad_token_id - 1` tokens.
OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "data2vec-text"})
# Config keys of rotary position encodings, which have no table of positions to run past.
ROTARY_KEYS = ("rotary_pct", "rotary_emb_base", "rope_theta", "rope_scaling", "rope_parameters")


def check_before_training(
    recipe: Recipe,
    registry: Registry,
    labels: tuple[str, ...],
    metrics: Sequence[Metric] = (*BUILTIN_METRICS, *MULTI_LABEL_METRICS),
) -> None:
    """Raise `RecipeError` with every problem that would stop or spoil training later
    (`metrics`: the registered ones)."""
    problems = output_problems(recipe)
    for index, entry in enumerate(recipe.models):
        problems += entry_problems(recipe, index, entry, registry, labels)
        problems += task_problems(recipe, index, entry, registry, metrics)
    if problems:
        raise RecipeError(recipe.source, problems)


def task_problems(
    recipe: Recipe, index: int, entry: ModelEntry, registry: Registry, metrics: Sequence[Metric]
) -> list[Problem]:
    """What does not fit the data's task: on multi-label data (data.label_separator), zero-shot
    scoring and a custom engine that does not learn several labels, and a training.metric of
    the other task; a training.threshold on single-label data."""
    from zoo.recipe import settings_for

    spec = registry.spec_for(recipe, entry)
    settings = settings_for(recipe, entry, spec)
    multi_label = recipe.data.label_separator is not None
    problems = []
    if multi_label and not trains_weights(entry.training_method):
        problems.append(
            Problem(
                f"models[{index}].method",
                f"{entry.training_method} scoring picks one label per text, but "
                "data.label_separator makes the data multi-label; fine-tune the model instead",
            )
        )
    elif multi_label and spec.engine is not None and not spec.engine.multi_label:
        problems.append(
            Problem(
                f"models[{index}].model",
                f"{entry.model!r} learns one label per text (its engine is not multi-label), but "
                "data.label_separator makes the data multi-label; choose another model",
            )
        )
    fitting = [m.name for m in for_task(metrics, multi_label)]
    if settings.metric not in fitting:
        kind = "multi-label" if multi_label else "single-label"
        problems.append(
            Problem(
                _origin(recipe, index, entry, "metric"),
                f"{settings.metric!r} does not score {kind} data; use one of "
                f"{', '.join(map(repr, fitting))}",
            )
        )
    if not multi_label and settings.threshold is not None:
        problems.append(
            Problem(
                _origin(recipe, index, entry, "threshold"),
                "applies to multi-label data (data.label_separator); remove it",
            )
        )
    return problems


def output_problems(recipe: Recipe) -> list[Problem]:
    """run.output_dir must be a folder zoo can make and write in (nothing is made here)."""
    out = recipe.path(recipe.run.output_dir)
    runs = out / recipe.run.name
    for path, setting in ((out, "run.output_dir"), (runs, "run.name")):
        if path.exists() and not path.is_dir():
            return [Problem(setting, f"{path} is a file, not a folder; choose another {setting}")]
    existing = next(p for p in (runs, *runs.parents) if p.exists())
    if not existing.is_dir():
        return [
            Problem(
                "run.output_dir",
                f"{out} cannot be made: {existing} is a file; choose another run.output_dir",
            )
        ]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [
            Problem(
                "run.output_dir",
                f"zoo cannot write in {existing} (permission denied); choose another "
                "run.output_dir",
            )
        ]
    return []


def _origin(recipe: Recipe, index: int, entry: ModelEntry, key: str) -> str:
    """The dotted path of the setting that decided `key` for this entry."""
    if getattr(entry, key) is not None:
        return f"models[{index}].{key}"
    if getattr(recipe.training, key) is not None:
        return f"training.{key}"
    return f"models[{index}].{key} (the default of model {entry.model!r})"


def entry_problems(
    recipe: Recipe, index: int, entry: ModelEntry, registry: Registry, labels: tuple[str, ...]
) -> list[Problem]:
    from zoo.recipe import settings_for

    spec = registry.spec_for(recipe, entry)
    settings = settings_for(recipe, entry, spec)
    problems = []
    weights = settings.class_weights
    if isinstance(weights, tuple) and len(weights) != len(labels):
        problems.append(
            Problem(
                _origin(recipe, index, entry, "class_weights"),
                f"has {len(weights)} weights, but data.train has {len(labels)} labels "
                f"({', '.join(labels)}); give one weight per label, in that order, or "
                "'balanced'",
            )
        )
    problems += chunk_problems(recipe, index, entry, settings)
    problems += sparse_embedding_problems(recipe, index, entry, settings)
    problems += answer_problems(recipe, index, entry, registry, labels)
    if recipe.data.pairs:
        problems += pair_problems(recipe, index, entry, spec, settings)
    limit, where = position_limit(recipe, entry, spec)
    if limit is not None and settings.max_length > limit:
        problems.append(
            Problem(
                _origin(recipe, index, entry, "max_length"),
                f"{settings.max_length} tokens is more than {entry.label!r} can read: {limit} "
                f"positions ({where}); set max_length to {limit} or less",
            )
        )
    return problems


def answer_problems(
    recipe: Recipe, index: int, entry: ModelEntry, registry: Registry, labels: tuple[str, ...]
) -> list[Problem]:
    """What label words cannot do: head = 'label-words' needs a decoder and single-label data
    of one text per row, and no classification-head setting; label_words must name the data's
    labels, and give no two of them the same words (zero-shot and few-shot read them too)."""
    from zoo.prompts import answer_words, unknown_label_words
    from zoo.recipe import settings_for

    where = f"models[{index}]"
    problems = []
    unknown = unknown_label_words(labels, entry.label_words)
    if unknown:
        problems.append(
            Problem(
                f"{where}.label_words",
                f"names {', '.join(map(repr, unknown))}, which data.train has no rows of (its "
                f"labels: {', '.join(labels)}); name the data's labels",
            )
        )
    try:
        answer_words(labels, entry.label_words)
    except ValueError as exc:
        problems.append(Problem(f"{where}.label_words", str(exc)))
    if entry.answer_head != "label-words":
        return problems
    spec = registry.spec_for(recipe, entry)
    family = registry.families.claim(_model_type(spec)) if spec.engine is None else None
    if family is None or not family.decoder:
        kind = "has no transformer family" if family is None else f"is a {family.name} encoder"
        problems.append(
            Problem(
                f"{where}.head",
                f"{entry.model!r} {kind}: label words need a decoder (a causal LM) that can "
                "say them; remove head for a classification head",
            )
        )
    if spec.loader is not None:
        problems.append(
            Problem(
                f"{where}.head",
                f"the plugin of {entry.model!r} loads it with a loader of its own, which builds "
                "a classifier; label words need zoo's causal-LM loader: remove head",
            )
        )
    settings = settings_for(recipe, entry, spec)
    refused = (
        (recipe.data.label_separator is not None, "data.label_separator",
         "label words answer with one label per text, but the data is multi-label"),
        (recipe.data.pairs, "data.text_column",
         "label words read one text per row, but the data has text pairs"),
        (settings.class_weights is not None, _origin(recipe, index, entry, "class_weights"),
         "weighs a classification head's loss; label words are trained on their tokens"),
        (settings.train_embeddings == "sparse", _origin(recipe, index, entry, "train_embeddings"),
         "'sparse' is for a classification head: a decoder's LM head reads the whole "
         "embedding matrix; set true or false"),
        (settings.truncation is not None, _origin(recipe, index, entry, "truncation"),
         "label words cut a long text's end to fit the prompt; remove it"),
    )  # fmt: skip
    for wrong, setting, why in refused:
        if wrong:
            problems.append(Problem(setting, f"{why} (head = 'label-words' of {where})"))
    return problems


def _model_type(spec: ModelSpec) -> str | None:
    architecture = spec.resources.architecture
    return None if architecture is None else architecture.get("model_type")


def sparse_embedding_problems(
    recipe: Recipe, index: int, entry: ModelEntry, settings: Any
) -> list[Problem]:
    """train_embeddings = 'sparse': zoo's lazy AdamW step, so optimizer 'adamw' alone, eager
    PyTorch (sparse gradients under torch.compile are not verified), and one process."""
    if settings.train_embeddings != "sparse" or entry.training_method != "full":
        return []
    where = _origin(recipe, index, entry, "train_embeddings")
    problems = []
    if settings.optimizer != "adamw":
        problems.append(
            Problem(
                where,
                "'sparse' updates its rows with zoo's lazy AdamW, so it needs optimizer = "
                f"'adamw', not {settings.optimizer!r}; set train_embeddings = false (or true) "
                "for that optimizer",
            )
        )
    if settings.torch_compile:
        problems.append(
            Problem(
                where,
                "'sparse' is not combined with torch_compile (zoo has not verified sparse "
                "gradients under torch.compile); turn torch_compile off or set "
                "train_embeddings = false",
            )
        )
    if world()[1] > 1:  # each process of `zoo run --nproc N` checks before its model loads
        problems.append(
            Problem(
                where,
                "'sparse' trains in one process (its gradient clipping and row-wise AdamW step "
                "are not distributed); run without --nproc, or set train_embeddings = false "
                "(or true)",
            )
        )
    return problems


def chunk_problems(recipe: Recipe, index: int, entry: ModelEntry, settings: Any) -> list[Problem]:
    """training.chunk_stride: only with truncation = 'chunks', and at most half of max_length
    (more, and the windows would be nearly all overlap: many more of them to train on)."""
    stride = settings.chunk_stride
    if stride is None:
        return []
    where = _origin(recipe, index, entry, "chunk_stride")
    if settings.truncation != "chunks":
        return [
            Problem(
                where,
                f"applies to truncation = 'chunks', not {settings.truncation or 'head'!r}; set "
                "training.truncation = 'chunks' or remove it",
            )
        ]
    if stride > settings.max_length // 2:
        return [
            Problem(
                where,
                f"{stride} tokens shared is more than half of max_length "
                f"({settings.max_length}); use {settings.max_length // 2} or less",
            )
        ]
    return []


def pair_problems(
    recipe: Recipe, index: int, entry: ModelEntry, spec: Any, settings: Any
) -> list[Problem]:
    """What cannot read a text pair (data.text_column = [first, second]): zero-shot scoring and
    a custom engine that does not say it reads pairs (both would read the first texts alone),
    and a truncation other than the tokenizer's own pair cut."""
    pair = f"data.text_column names a text pair ({', '.join(recipe.data.text_columns)})"
    if not trains_weights(entry.training_method):
        return [
            Problem(
                f"models[{index}].method",
                f"{entry.training_method} scoring reads one text, but {pair}; fine-tune the "
                "model instead",
            )
        ]
    if spec.engine is not None:
        if spec.engine.text_pairs:
            return []
        return [
            Problem(
                f"models[{index}].model",
                f"{entry.model!r} reads one text a row (its engine takes no text pairs), but "
                f"{pair}; choose another model, or give data.text_column one column",
            )
        ]
    strategy = settings.truncation
    if strategy is not None and strategy != "head":
        return [
            Problem(
                _origin(recipe, index, entry, "truncation"),
                f"{strategy!r} cuts one text, but {pair}: the tokenizer cuts a pair, the longer "
                "text first ('head'); remove it",
            )
        ]
    return []


def position_limit(recipe: Recipe, entry: ModelEntry, spec: Any) -> tuple[int | None, str]:
    """How many tokens the model's position embeddings hold, and where that number comes from;
    (None, "") when the model has no such table or zoo cannot tell."""
    from zoo.memory.check import architecture

    config = architecture(recipe, entry, spec)  # a checkpoint's own config.json, else the plugin's
    checkpoint_config = recipe.path(entry.checkpoint) / "config.json" if entry.checkpoint else None
    if checkpoint_config is not None and checkpoint_config.is_file():
        where = f"max_position_embeddings in {checkpoint_config}"
    else:
        where = f"max_position_embeddings in the architecture of {spec.name!r}"
    if not isinstance(config, Mapping):
        return None, ""
    positions = readable_positions(config)
    return (None, "") if positions is None else (positions, where)


def readable_positions(config: Mapping[str, Any]) -> int | None:
    """How many tokens a transformers config's position embeddings hold (RoBERTa's offset
    taken off); None when it has no such table (rotary encodings) or does not say."""
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int) or any(key in config for key in ROTARY_KEYS):
        return None
    if config.get("model_type") in OFFSET_POSITIONS:
        pad = config.get("pad_token_id")
        return positions - (pad if isinstance(pad, int) else 1) - 1
    return positions
