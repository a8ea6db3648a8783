"""The Hugging Face TrainingArguments a run trains with: those zoo sets from the recipe
(`ZOO_ARGUMENTS`, `training_arguments`), and those a recipe's [training.trainer] table adds.

A [training.trainer] table may set any other field of TrainingArguments (`max_grad_norm`,
`label_smoothing_factor`, `adam_beta2`, ...); `trainer_problems` checks its keys and the kinds of
its values against the dataclass before anything loads. transformers is imported only when a
table is there to check, or when a run builds its arguments.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from zoo.engine.distributed import trainer_arguments, world
from zoo.errors import Problem
from zoo.metrics import named

if TYPE_CHECKING:
    from zoo.engine.device import DeviceInfo
    from zoo.engine.jobs import TrainJob
    from zoo.recipe import TrainingConfig

# The recipe's optimizer -> TrainingArguments.optim. Fused AdamW runs on CPUs too (torch >= 2.4).
OPTIMIZERS = {
    "adamw": "adamw_torch_fused",
    "adamw-8bit": "adamw_bnb_8bit",
    "adafactor": "adafactor",
    "sgd": "sgd",
}

# Every TrainingArguments field that `training_arguments` sets (under any [distributed]
# strategy), and the recipe key that decides it; None where zoo alone decides. A
# [training.trainer] table may set none of these: it would fight zoo's own choice.
ZOO_ARGUMENTS: dict[str, str | None] = {
    "output_dir": None,  # the run directory's checkpoints/
    "seed": "run.seed",
    "num_train_epochs": "training.epochs",
    "max_steps": "training.max_steps",
    "learning_rate": "training.learning_rate",
    "per_device_train_batch_size": "training.batch_size",
    "per_device_eval_batch_size": "training.eval_batch_size",
    "gradient_accumulation_steps": "training.gradient_accumulation_steps",
    "lr_scheduler_type": "training.lr_scheduler",
    "warmup_steps": "training.warmup_ratio",
    "weight_decay": "training.weight_decay",
    "eval_strategy": "training.eval_every",
    "eval_steps": "training.eval_every",
    "save_strategy": "training.eval_every",
    "save_steps": "training.eval_every",
    "logging_strategy": "training.eval_every",
    "logging_steps": "training.eval_every",
    "save_total_limit": None,
    "save_only_model": None,
    "load_best_model_at_end": None,
    "metric_for_best_model": "training.metric",
    "greater_is_better": "training.metric",
    "logging_nan_inf_filter": None,
    "train_sampling_strategy": None,
    "ddp_backend": None,
    "fsdp": "distributed.strategy",
    "fsdp_config": "distributed.config",
    "deepspeed": "distributed.config",
    "bf16": "training.precision",
    "fp16": "training.precision",
    "tf32": None,
    "torch_compile": "training.torch_compile",
    "optim": "training.optimizer",
    "activation_checkpointing": "training.gradient_checkpointing",
    "gradient_checkpointing": "training.gradient_checkpointing",
    "use_cpu": None,
    "report_to": "training.report_to",
    "disable_tqdm": None,
}


def checkpointing_argument(on: bool) -> dict[str, bool]:
    """TrainingArguments' switch for activation (gradient) checkpointing: later transformers 5
    releases renamed gradient_checkpointing to activation_checkpointing and warn on the old name."""
    from transformers import TrainingArguments

    renamed = "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    return {"activation_checkpointing" if renamed else "gradient_checkpointing": on}


def eval_interval(settings: TrainingConfig, train_rows: int) -> int:
    """Optimizer steps between evaluations (and checkpoints): training.eval_every, where
    'epoch' (the default) is one epoch's steps; never more than the whole run, so that a run
    evaluates at least once."""
    rows_per_step = settings.batch_size * settings.gradient_accumulation_steps * world()[1]
    steps_per_epoch = math.ceil(train_rows / rows_per_step)
    total = settings.max_steps or settings.epochs * steps_per_epoch
    every = settings.eval_every
    return min(steps_per_epoch if every in (None, "epoch") else every, total)


def zoo_arguments(
    job: TrainJob, device: DeviceInfo, precision: str, output_dir: str
) -> dict[str, Any]:
    """What zoo itself passes to TrainingArguments: every key is one of `ZOO_ARGUMENTS`."""
    settings = job.settings
    every = eval_interval(settings, len(job.splits.train))
    arguments = dict(
        output_dir=output_dir,
        seed=job.seed,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps or -1,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size or 2 * settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_ratio,  # a float below 1 is a ratio in transformers 5
        weight_decay=settings.weight_decay,
        eval_strategy="steps",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=1,
        # Optimizer, scheduler and RNG states too: an interrupted run resumes exactly.
        save_only_model=False,
        load_best_model_at_end=True,
        metric_for_best_model=settings.metric,
        greater_is_better=named(job.metrics, settings.metric).higher_is_better,
        logging_strategy="steps",
        logging_steps=max(1, every // 4),
        # Log a NaN or infinite loss as it is, so that zoo can stop the run and say so.
        logging_nan_inf_filter=False,
        train_sampling_strategy="group_by_length",
        **trainer_arguments(
            job.distributed.strategy, job.distributed.config, cpu=device.kind == "cpu"
        ),
        bf16=precision == "bf16",
        tf32=True if device.tf32 else None,
        torch_compile=bool(settings.torch_compile),
        optim=OPTIMIZERS[settings.optimizer],
        **checkpointing_argument(bool(settings.gradient_checkpointing)),
        fp16=precision == "fp16",
        use_cpu=device.kind == "cpu",
        # The Trainer's own callbacks for these; zoo_plugins.mlflow_tracker logs zoo's results.
        report_to=list(settings.report_to) if settings.report_to else "none",
        disable_tqdm=True,
    )
    unlisted = sorted(arguments.keys() - ZOO_ARGUMENTS.keys())
    if unlisted:  # a programming error: [training.trainer] could set these too
        raise AssertionError(f"zoo sets {unlisted}, which ZOO_ARGUMENTS does not list")
    return arguments


def training_arguments(job: TrainJob, device: DeviceInfo, precision: str, output_dir: str) -> Any:
    """The TrainingArguments of a run: zoo's own, then the [training.trainer] table's.

    Raises `ZooError` when the table has a problem, or when TrainingArguments refuses a value.
    """
    from transformers import TrainingArguments

    from zoo.errors import ZooError

    table = dict(job.settings.trainer or {})
    problems = trainer_problems(table, "training.trainer")
    if problems:
        raise ZooError(
            "the [training.trainer] table cannot be passed to TrainingArguments: "
            + "; ".join(str(p) for p in problems)
        )
    try:
        return TrainingArguments(**zoo_arguments(job, device, precision, output_dir), **table)
    except (ValueError, TypeError) as exc:
        if not table:
            raise
        raise ZooError(
            f"TrainingArguments refused the settings of [training.trainer] "
            f"({', '.join(sorted(table))}): {exc}",
            hint="see the fields of transformers.TrainingArguments",
        ) from exc


# --- checking a [training.trainer] table -----------------------------------------------------


def trainer_problems(table: Mapping[str, Any] | None, path: str) -> list[Problem]:
    """What is wrong with a [training.trainer] table found at `path` (``training.trainer`` or
    ``models[N].trainer``): keys that TrainingArguments lacks (with a "did you mean"), keys zoo
    sets itself (naming the recipe key that decides them), values of the wrong kind."""
    if not table:
        return []
    from transformers import TrainingArguments

    fields = {f.name: f for f in dataclasses.fields(TrainingArguments) if f.init}
    hints = typing.get_type_hints(TrainingArguments)
    settable = sorted(set(fields) - ZOO_ARGUMENTS.keys())
    problems = []
    for key, value in table.items():
        where = f"{path}.{key}"
        if key in ZOO_ARGUMENTS:
            problems.append(Problem(where, _owned(key, path)))
        elif key not in fields:
            guess = difflib.get_close_matches(key, settable, n=1)
            hint = f"did you mean {guess[0]!r}?" if guess else "see transformers.TrainingArguments"
            problems.append(Problem(where, f"TrainingArguments has no field {key!r} ({hint})"))
        else:
            wrong = _kind_problem(hints.get(key, fields[key].type), value)
            if wrong is not None:
                problems.append(Problem(where, wrong))
    return problems


def trainer_field_hint(key: str, path: str) -> str | None:
    """For a key written straight into [training] or a model entry (`path`) that is a
    TrainingArguments field zoo does not set: where it belongs instead."""
    from transformers import TrainingArguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    if key not in fields or key in ZOO_ARGUMENTS:
        return None
    return f"a TrainingArguments field: set it as {path}.trainer.{key}"


def _owned(key: str, path: str) -> str:
    recipe_key = ZOO_ARGUMENTS[key]
    if recipe_key is None:
        return f"zoo sets {key} itself; a recipe cannot change it"
    if recipe_key.startswith("training.") and path.startswith("models["):
        entry = path.removesuffix(".trainer")
        local = f"{entry}.{recipe_key.removeprefix('training.')}"
        return f"zoo sets {key} from {recipe_key}: set {local} (or {recipe_key}) instead"
    return f"zoo sets {key} from {recipe_key}: set {recipe_key} instead"


def _options(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(o for arg in typing.get_args(annotation) for o in _options(arg))
    return (annotation,)


def _accepts(option: Any, value: Any) -> bool | None:
    """Whether `option` (one member of a field's type) takes this TOML value; None when it
    cannot come from TOML at all."""
    origin = typing.get_origin(option) or option
    if option is type(None):
        return False
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(option))
    if origin is bool:
        return isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is str:
        return isinstance(value, str)
    if origin is dict:
        return isinstance(value, dict)
    if origin is list:
        return isinstance(value, list)
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return isinstance(value, str) and value in {m.value for m in origin}
    if option is Any:
        return True
    return None


_KIND_NAMES = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    dict: "a table",
    list: "an array",
}


def _kind_problem(annotation: Any, value: Any) -> str | None:
    """What is wrong with `value` for a field of this type; None when it fits."""
    from zoo.recipe import describe_value

    options = _options(annotation)
    enums = [o for o in options if isinstance(o, type) and issubclass(o, enum.Enum)]
    if enums and isinstance(value, str):  # `SchedulerType | str`: a string names a member
        if value in {m.value for m in enums[0]}:
            return None
        listed = ", ".join(repr(m.value) for m in enums[0])
        guess = difflib.get_close_matches(value, [m.value for m in enums[0]], n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        return f"must be one of {listed}, got {describe_value(value)}{hint}"
    if any(_accepts(option, value) for option in options):
        return None
    names = []
    for option in options:
        origin = typing.get_origin(option) or option
        if origin in _KIND_NAMES and _KIND_NAMES[origin] not in names:
            names.append(_KIND_NAMES[origin])
        elif origin is typing.Literal:
            names += [str(a).lower() for a in typing.get_args(option)]
    if not names:
        return f"cannot be set from a recipe (TrainingArguments takes {annotation})"
    return f"expected {' or '.join(names)}, got {describe_value(value)}"
