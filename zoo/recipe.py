"""Recipes: the TOML files that define runs.

Structuring is strict and reports every problem at once, each with its dotted path: unknown keys
are rejected (with a "did you mean"), scalars are never coerced (2.5 epochs is an error, not 2),
choices are checked, and model and metric names are checked against the registries.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NewType, get_args

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from zoo.errors import Problem, RecipeError
from zoo.hub_models import hub_label, is_hub, repo_id
from zoo.metrics import BUILTIN_METRICS, DEFAULT_METRIC, unknown_metric_hint
from zoo.prompts import DEFAULT_SHOTS, label_words_problems, template_problem
from zoo.spec import Attention, Head, Method, ModelSpec, Precision, Truncation, trains_weights
from zoo.trackers import TRACKERS, unknown_tracker
from zoo.transforms import BUILTIN_TRANSFORMS

# Scalar types that carry their own constraint; the converter checks them.
PositiveInt = NewType("PositiveInt", int)
NonNegativeInt = NewType("NonNegativeInt", int)
PositiveFloat = NewType("PositiveFloat", float)
NonNegativeFloat = NewType("NonNegativeFloat", float)
Ratio = NewType("Ratio", float)  # 0 <= x < 1
ModelName = NewType("ModelName", str)
MetricName = NewType("MetricName", str)  # a registered zoo.Metric
RunName = NewType("RunName", str)
Seeds = NewType("Seeds", tuple[int, ...])
# true, false or "sparse" (only the rows a batch's tokens use: zoo.engine.sparse_embeddings).
EmbeddingTraining = NewType("EmbeddingTraining", bool | Literal["sparse"])
PromptTemplate = NewType("PromptTemplate", str)  # {text} once (zoo.prompts)
LabelWords = NewType("LabelWords", object)  # a table of label -> words

Scheduler = Literal["linear", "cosine", "constant", "constant_with_warmup"]
Encoding = Literal["auto", "utf-8", "utf-8-sig", "cp949", "euc-kr"]
Optimizer = Literal["adamw", "adamw-8bit", "adafactor", "sgd"]
# "balanced" or a tuple of floats, one per label (checked by `_class_weights`).
ClassWeights = NewType("ClassWeights", object)
# "epoch" or a positive number of optimizer steps (checked by `_eval_every`).
EvalEvery = NewType("EvalEvery", object)
# A table of TrainingArguments fields; its keys and values are checked against TrainingArguments
# by `zoo.engine.arguments.trainer_problems` (in `load_recipe`, when there is one).
TrainerTable = NewType("TrainerTable", object)
# A list of experiment trackers by name (checked by `_report_to` against zoo.trackers.TRACKERS).
TrackerNames = NewType("TrackerNames", object)
# A list of registered text transforms by name (hook register_text_transforms), in order.
TransformNames = NewType("TransformNames", object)
# data.text_column: one column's name, or the two of a text pair.
TextColumns = NewType("TextColumns", object)
# data.label_separator: a non-empty string without surrounding whitespace.
LabelSeparator = NewType("LabelSeparator", str)
# training.threshold: "tuned" or a probability strictly between 0 and 1.
Threshold = NewType("Threshold", object)
# [search] space: training key -> a list of values to choose from, or a SearchRange.
SearchSpace = NewType("SearchSpace", object)


def doc(text: str, **kwargs: Any) -> Any:
    """An attrs field with its documentation kept in the metadata."""
    return attrs.field(metadata={"doc": text}, **kwargs)


@attrs.frozen(kw_only=True)
class RunSection:
    name: RunName = doc("name of the run; run directories go under OUTPUT_DIR/NAME/")
    seed: int = doc("random seed, set before each model is built", default=42)
    seeds: Seeds | None = doc(
        "train every model once per seed (repeated runs: the leaderboard shows mean and "
        "standard deviation); replaces seed",
        default=None,
    )
    output_dir: str = doc("where run directories go, relative to the recipe", default="runs")

    @property
    def all_seeds(self) -> tuple[int, ...]:
        return self.seeds or (self.seed,)


@attrs.frozen(kw_only=True)
class Folds:
    """`data.validation = { folds = 5 }`: stratified k-fold cross-validation; each fold is the
    validation split of one run, trained on the other folds. `fold` runs that fold alone (what
    the run directory of one fold records, so that its recipe trains that fold again)."""

    folds: int = doc("how many folds (2 or more)")
    fold: int | None = doc("train only this fold (1 to folds)", default=None)

    @property
    def numbers(self) -> tuple[int, ...]:
        """The folds to train, numbered from 1."""
        return (self.fold,) if self.fold is not None else tuple(range(1, self.folds + 1))


@attrs.frozen(kw_only=True)
class DataSection:
    train: str = doc("training data file (CSV, TSV, .jsonl or .parquet), relative to the recipe")
    test: str | None = doc("test file (optional), as train", default=None)
    text_column: TextColumns = doc(
        "column with the text, or two columns with a text pair (['question', 'reply']: both "
        "read by the model as the tokenizer's pair, sharing max_length)",
        default="text",
    )
    label_column: str = doc("column with the label", default="label")
    label_separator: LabelSeparator | None = doc(
        "makes the data set multi-label: each label cell names a text's labels joined by this "
        "separator ('code;web'); a model then gives each label a probability of its own",
        default=None,
    )
    validation: Ratio | str | Folds = doc(
        "fraction of train held out (stratified), a file with the validation rows, or "
        "{ folds = K } for stratified K-fold cross-validation (one run per fold)",
        default=0.2,
    )
    encoding: Encoding = doc("file encoding; 'auto' tries utf-8 then cp949", default="auto")
    empty_texts: Literal["fail", "drop"] = doc(
        "rows with an empty text or label: 'fail' names them, 'drop' leaves them out and says "
        "how many",
        default="fail",
    )
    preprocess: TransformNames | None = doc(
        "text transforms applied in this order to every text as it is read, and by zoo "
        "predict: 'nfc', 'collapse-whitespace', 'mask-urls', 'mask-emails', 'mask-numbers' or a "
        "plugin's (zoo plugins lists them)",
        default=None,
    )

    @property
    def text_columns(self) -> tuple[str, ...]:
        """The text column, or the two columns of a text pair."""
        return (self.text_column,) if isinstance(self.text_column, str) else self.text_column

    @property
    def pairs(self) -> bool:
        return len(self.text_columns) == 2


@attrs.frozen(kw_only=True)
class TrainingConfig:
    """Training settings; None means "not set here" (see `resolve_training`)."""

    epochs: PositiveInt | None = doc("passes over the training data", default=None)
    max_steps: PositiveInt | None = doc("stop after this many optimizer steps", default=None)
    learning_rate: PositiveFloat | None = doc("peak learning rate", default=None)
    batch_size: PositiveInt | None = doc("training batch per device", default=None)
    eval_batch_size: PositiveInt | None = doc("evaluation batch per device", default=None)
    gradient_accumulation_steps: PositiveInt | None = doc(
        "batches per optimizer step", default=None
    )
    lr_scheduler: Scheduler | None = doc("learning-rate schedule", default=None)
    warmup_ratio: Ratio | None = doc("fraction of steps spent warming up", default=None)
    weight_decay: NonNegativeFloat | None = doc("the optimizer's weight decay", default=None)
    early_stopping_patience: NonNegativeInt | None = doc(
        "evaluations without improvement before stopping; 0 turns early stopping off", default=None
    )
    metric: MetricName | None = doc(
        "validation metric that picks the best checkpoint and drives early stopping: a "
        "registered metric's name",
        default=None,
    )
    precision: Precision | None = doc(
        "'auto': bf16/fp16 on a capable GPU, fp32 on CPU", default=None
    )
    max_length: PositiveInt | None = doc(
        "tokens per text; longer texts are truncated", default=None
    )
    truncation: Truncation | None = doc(
        "which tokens of a longer text the model reads: 'head' (the default: its first ones), "
        "'tail' (its last ones), 'head+tail' (a quarter of max_length from its start, the "
        "rest from its end) or 'chunks' (all of them, in overlapping windows of max_length: "
        "training reads every window with the text's label, a prediction is the mean of the "
        "windows' probabilities); zoo predict reads the same",
        default=None,
    )
    threshold: Threshold | None = doc(
        "multi-label data (data.label_separator): 'tuned' (the default: each label's decision "
        "threshold is the one that maximises its F1 on the validation split) or one "
        "probability, between 0 and 1, for every label",
        default=None,
    )
    chunk_stride: NonNegativeInt | None = doc(
        "with truncation = 'chunks': how many tokens consecutive windows share; default a "
        "quarter of max_length, at most half of it",
        default=None,
    )
    torch_compile: bool | None = doc(
        "compile the model with torch.compile (faster steps after a slow first one)", default=None
    )
    gradient_checkpointing: bool | None = doc(
        "recompute activations in the backward pass: much less activation memory for ~30% more "
        "compute",
        default=None,
    )
    train_embeddings: EmbeddingTraining | None = doc(
        "full fine-tuning: whether the word-embedding matrix trains. false freezes it (no "
        "gradient, no optimizer state: most of a multilingual encoder's parameters, so steps "
        "run faster); 'sparse' trains only the rows of the tokens each batch holds (sparse "
        "gradients, a lazy AdamW step on those rows: most of the speed, and the vocabulary "
        "still learns; one process, optimizer 'adamw'). Position and type embeddings and "
        "everything else still train. LoRA and QLoRA never train it. Default true (a model's "
        "plugin may set its own)",
        default=None,
    )
    optimizer: Optimizer | None = doc(
        "'adamw' (fused), 'adamw-8bit' (AdamW with 8-bit state, bitsandbytes, CUDA only), "
        "'adafactor' (factored second moments: little state memory) or 'sgd' (plain, no "
        "momentum: wants a far higher learning rate)",
        default=None,
    )
    attention: Attention | None = doc(
        "'sdpa': fused scaled-dot-product attention; 'eager': the plain softmax(QK^T)V, which "
        "keeps the whole attention matrix (tokens x tokens) in memory",
        default=None,
    )
    class_weights: ClassWeights | None = doc(
        "weights of the classes in the loss: 'balanced' (inverse to their frequency in the "
        "training rows) or one positive number per label, in label order",
        default=None,
    )
    eval_every: EvalEvery | None = doc(
        "'epoch' (the default: once an epoch, or once at the end when max_steps stops training "
        "sooner) or a number of optimizer steps: how often the validation split is evaluated "
        "and a checkpoint saved; early_stopping_patience counts these evaluations",
        default=None,
    )
    trainer: TrainerTable | None = doc(
        "[training.trainer]: more transformers.TrainingArguments fields (max_grad_norm, "
        "label_smoothing_factor, adam_beta2, ...), passed as they are; not those that zoo sets "
        "from its own keys. A [[models]] entry's table is merged key by key over [training]'s",
        default=None,
    )
    report_to: TrackerNames | None = doc(
        "experiment trackers to log the run to: 'tensorboard' (event files in the run "
        "directory's tensorboard/), 'mlflow' (OUTPUT_DIR/mlruns unless MLFLOW_TRACKING_URI says "
        "otherwise); default none. Each needs its extra: pip install -e '.[mlflow]'",
        default=None,
    )


# Training keys that change where a run is logged, not what it learns: runs that differ in
# them alone are one variant in `zoo compare`, and `zoo run --resume` may change them.
LOGGING_KEYS = frozenset({"report_to"})

DEFAULT_TRAINING = TrainingConfig(
    epochs=3,
    learning_rate=5e-5,
    batch_size=16,
    gradient_accumulation_steps=1,
    lr_scheduler="cosine",
    warmup_ratio=0.03,
    weight_decay=0.01,
    early_stopping_patience=3,
    metric=DEFAULT_METRIC,
    precision="auto",
    torch_compile=False,
    gradient_checkpointing=False,
    train_embeddings=True,
    optimizer="adamw",
    attention="sdpa",
)

TRAINING_KEYS = frozenset(f.name for f in attrs.fields(TrainingConfig))


@attrs.frozen(kw_only=True)
class LoraSettings:
    r: PositiveInt = doc("rank of the adapter matrices", default=8)
    alpha: PositiveInt = doc("scaling numerator: updates are scaled by alpha / r", default=16)
    dropout: Ratio = doc("dropout on the adapter's input", default=0.05)
    target_modules: tuple[str, ...] | None = doc(
        "module names to adapt; default: the model plugin's choice", default=None
    )


# A model entry may override any training setting for that model alone.
@attrs.frozen(kw_only=True)
class ModelEntry(TrainingConfig):
    model: ModelName = doc(
        "a registered model name (see 'zoo models'), or any hub model by id: 'hub:ORG/NAME'"
    )
    method: Method | None = doc(
        "'full' fine-tuning (default), 'lora', 'qlora' (4-bit base, CUDA); or, for a decoder, "
        "'zero-shot' (scores each label's words after the prompt, trains nothing) or "
        "'few-shot' (the same with `shots` training examples per class in the prompt)",
        default=None,
    )
    head: Head | None = doc(
        "what a fine-tuned model answers with: 'classifier', a fresh classification head "
        "(default), or, for a decoder, 'label-words': the model learns to say the label's "
        "words after the prompt, and predicts by scoring every label's words",
        default=None,
    )
    prompt: PromptTemplate | None = doc(
        "a decoder's prompt for label words, zero-shot and few-shot, with {text} once where "
        "the text goes and optionally {labels} (the label words, listed); default: the "
        "model plugin's",
        default=None,
    )
    label_words: LabelWords | None = doc(
        "the words a label is answered with, for labels whose names are not words, e.g. "
        '{0 = "일상", 1 = "이별"}; other labels are answered with their names',
        default=None,
    )
    shots: PositiveInt | None = doc(
        f"'few-shot': training examples per class in the prompt, chosen by the seed "
        f"(default {DEFAULT_SHOTS})",
        default=None,
    )
    lora: LoraSettings | None = doc("LoRA settings for 'lora' and 'qlora'", default=None)
    name: RunName | None = doc(
        "name for this entry; needed when a model appears twice (a 'hub:ORG/NAME' model is "
        "named NAME, lower-cased, unless given one)",
        default=None,
    )
    checkpoint: str | None = doc(
        "a local model directory to load instead of the source", default=None
    )
    allow_pickle: bool = doc(
        "load pickled .bin weights when a model has no safetensors (pickles can run code)",
        default=False,
    )
    trust_remote_code: bool = doc(
        "run Python code shipped with the model; needs the model's plugin to allow it too",
        default=False,
    )

    @property
    def label(self) -> str:
        return self.name or (hub_label(self.model) if is_hub(self.model) else self.model)

    @property
    def training_method(self) -> str:
        return self.method or "full"

    @property
    def answer_head(self) -> str:
        """'classifier' or 'label-words' (the `head` key, its default filled in)."""
        return self.head or "classifier"

    @property
    def prompted(self) -> bool:
        """Whether the model is asked with a prompt and scored on label words: the prompting
        methods and head = 'label-words' (what `prompt` and `label_words` apply to)."""
        return not trains_weights(self.training_method) or self.answer_head == "label-words"


@attrs.frozen(kw_only=True)
class DistributedSection:
    strategy: Literal["ddp", "fsdp", "deepspeed-zero2", "deepspeed-zero3"] = doc(
        "how several processes share the work: 'ddp' replicates the model; 'fsdp' and "
        "'deepspeed-zero3' shard weights, gradients and optimizer state; 'deepspeed-zero2' "
        "shards gradients and optimizer state",
        default="ddp",
    )
    config: dict[str, Any] | None = doc(
        "passed through to the Trainer: fsdp_config for 'fsdp', the DeepSpeed configuration "
        "(merged over zoo's ZeRO settings) for 'deepspeed-*'",
        default=None,
    )


@attrs.frozen(kw_only=True)
class SearchRange:
    """A range of one training key to search: floats, or integers when low and high are."""

    low: float
    high: float
    log: bool = False  # sample evenly on a log scale (learning rates)
    step: float | None = None  # only multiples of it from low

    @property
    def integer(self) -> bool:
        return all(type(v) is int for v in (self.low, self.high)) and type(self.step) in (
            int,
            type(None),
        )

    def grid(self) -> tuple[Any, ...] | None:
        """Every value of an integer range with a step (or step 1), or None: what a grid
        sampler can try."""
        if not self.integer or self.log:
            return None
        return tuple(range(int(self.low), int(self.high) + 1, int(self.step or 1)))


SAMPLERS = ("tpe", "random", "grid")


@attrs.frozen(kw_only=True)
class SearchSection:
    space: SearchSpace = doc(
        "the [training] keys to search: a list of values ({max_length = [128, 256]}) or a "
        "range ({learning_rate = { low = 1e-5, high = 1e-4, log = true }}; integers when low "
        "and high are; step for multiples)"
    )
    trials: PositiveInt | None = doc(
        "how many trials (runs with values from the space); default for grid: all of it",
        default=None,
    )
    sampler: Literal["tpe", "random", "grid"] = doc(
        "Optuna's sampler: 'tpe' (learns from the trials so far), 'random', or 'grid' (every "
        "combination of the lists), seeded by run.seed",
        default="tpe",
    )
    storage: Literal["memory", "journal"] = doc(
        "where the Optuna study lives: in memory, or a journal file in the output directory "
        "(OUTPUT_DIR/RUN_NAME/search.journal) that several processes can share",
        default="memory",
    )
    keep_models: Literal["best", "all"] = doc(
        "whose model weights to keep once the search has chosen: the best trial's (the others' "
        "model folders are removed) or every trial's",
        default="best",
    )
    pruner: Literal["none", "median"] = doc(
        "'median': stop a trial at an evaluation where its validation metric is worse than the "
        "median of the earlier trials' at the same step (after 2 trials; Optuna's "
        "MedianPruner); a pruned trial is recorded but never chosen. In this process only (not "
        "with --jobs or an executor)",
        default="none",
    )


@attrs.frozen(kw_only=True)
class ExecutorSection:
    name: str = doc(
        "what runs the work units: 'local' (subprocesses on this machine), 'submitit' (SLURM "
        "jobs), 'ray' (Ray tasks), or one a plugin registers; zoo run --executor overrides it",
        default="local",
    )
    jobs: PositiveInt | None = doc(
        "how many units run at once (zoo run --jobs overrides it)", default=None
    )
    partition: str | None = doc("submitit: the SLURM partition", default=None)
    gpus_per_unit: NonNegativeInt | None = doc(
        "submitit, ray: GPUs each unit asks for (a distributed unit: its --nproc)", default=None
    )
    cpus_per_unit: PositiveInt | None = doc("submitit, ray: CPUs each unit asks for", default=None)
    time_limit_minutes: PositiveInt | None = doc("submitit: each job's time limit", default=None)
    sbatch: dict[str, Any] | None = doc(
        "submitit: more sbatch options, e.g. { account = 'nlp', qos = 'high' }", default=None
    )
    cluster: Literal["slurm", "local", "debug"] | None = doc(
        "submitit: 'slurm', or 'local' to run the same path without a cluster (default: SLURM "
        "where sbatch is found)",
        default=None,
    )
    address: str | None = doc(
        "ray: the address of a running Ray cluster ('auto', 'ray://host:10001'); default: "
        "start a local one",
        default=None,
    )
    cpus: PositiveInt | None = doc("ray: CPUs of the local Ray it starts", default=None)


@attrs.frozen(kw_only=True)
class Recipe:
    run: RunSection
    data: DataSection
    models: tuple[ModelEntry, ...]
    training: TrainingConfig = TrainingConfig()
    distributed: DistributedSection = DistributedSection()
    search: SearchSection | None = None
    executor: ExecutorSection | None = None
    # Where the recipe came from; relative paths in it are relative to this folder.
    base_dir: Path = attrs.field(default=Path("."), metadata={"internal": True})
    # The file it was read from, as the user named it (for messages).
    source: str = attrs.field(default="recipe", eq=False, metadata={"internal": True})

    def path(self, relative: str) -> Path:
        return (self.base_dir / relative).resolve()


RECIPE_KEYS = frozenset(f.name for f in attrs.fields(Recipe) if not f.metadata.get("internal"))


# Keys whose tables are merged key by key across the layers of `resolve_training`.
MERGED_KEYS = frozenset({"trainer"})


def resolve_training(
    recipe: Recipe, entry: ModelEntry, model_defaults: Mapping[str, Any]
) -> TrainingConfig:
    """The settings one model trains with: its entry, then [training], then the model's
    plugin defaults, then zoo's defaults; the first that sets a key wins. A table
    (``trainer``) is merged key by key instead: the entry's keys over [training]'s over the
    plugin's."""
    layers = (attrs.asdict(entry), attrs.asdict(recipe.training), model_defaults)
    values = {}
    for key in sorted(TRAINING_KEYS):
        if key in MERGED_KEYS:
            merged = {k: v for layer in reversed(layers) for k, v in (layer.get(key) or {}).items()}
            values[key] = merged or getattr(DEFAULT_TRAINING, key)
            continue
        for layer in layers:
            if layer.get(key) is not None:
                values[key] = layer[key]
                break
        else:
            values[key] = getattr(DEFAULT_TRAINING, key)
    return TrainingConfig(**values)


def settings_for(recipe: Recipe, entry: ModelEntry, spec: ModelSpec) -> TrainingConfig:
    """The settings a model entry trains with, its model's plugin defaults included."""
    return resolve_training(recipe, entry, spec.training_defaults)


# --- strict structuring -------------------------------------------------------------------------

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def describe_value(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "float", str: "string"}.get(type(value))
    if kind is None:
        if isinstance(value, list):
            return "an array"
        return "a table" if isinstance(value, dict) else "a value"
    return f"{kind} {value!r}" if kind == "string" else f"{kind} {value}"


def _strict(kind: type) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _type: Any) -> Any:
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = (
                True,
                float(value),
            )  # 1 is a fine learning rate multiplier; 2.5 epochs is not
        if not ok:
            raise ValueError(f"expected {_TYPE_NAMES[kind]}, got {describe_value(value)}")
        if kind is float and not math.isfinite(value):  # TOML allows inf and nan
            raise ValueError(f"expected a finite number, got {describe_value(value)}")
        return value

    return structure


def _bounded(kind: type, check: Callable[[Any], bool], rule: str) -> Callable[[Any, Any], Any]:
    strict = _strict(kind)

    def structure(value: Any, type_: Any) -> Any:
        value = strict(value, type_)
        if not check(value):
            raise ValueError(f"must be {rule}, got {value}")
        return value

    return structure


def _choice(value: Any, type_: Any) -> Any:
    options = get_args(type_)
    if value in options and type(value) is type(options[0]):
        return value
    listed = ", ".join(repr(o) for o in options)
    guess = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    raise ValueError(f"must be one of {listed}, got {describe_value(value)}{hint}")


def _embedding_training(value: Any, _type: Any) -> bool | str:
    if isinstance(value, bool) or value == "sparse":
        return value
    near = isinstance(value, str) and value.strip().lower() == "sparse"
    hint = " (did you mean 'sparse'?)" if near else ""
    raise ValueError(f"must be true, false or 'sparse', got {describe_value(value)}{hint}")


def _prompt_template(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string with {{text}} in it, got {describe_value(value)}")
    problem = template_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _label_words(value: Any, _type: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(f'expected a table of label = "words", got {describe_value(value)}')
    problems = label_words_problems(value)
    if problems:
        raise ValueError("; ".join(problems))
    return {str(label): words.strip() for label, words in value.items()}


def _validation(conv: cattrs.Converter) -> Callable[[Any, Any], float | str | Folds]:
    def structure(value: Any, _type: Any) -> float | str | Folds:
        if isinstance(value, str):
            return value
        if isinstance(value, float | int) and not isinstance(value, bool) and 0 < value < 1:
            return float(value)
        if isinstance(value, Mapping):
            folds = conv.structure(dict(value), Folds)  # its problems: data.validation.KEY
            if folds.folds < 2:
                raise ValueError(f"folds must be 2 or more, got {folds.folds}")
            if folds.fold is not None and not 1 <= folds.fold <= folds.folds:
                raise ValueError(f"fold must be 1 to {folds.folds}, got {folds.fold}")
            return folds
        raise ValueError(
            "must be a fraction between 0 and 1, a file path or { folds = K }, got "
            f"{describe_value(value)}"
        )

    return structure


def _class_weights(value: Any, _type: Any) -> str | tuple[float, ...]:
    if value == "balanced":
        return value
    numbers = isinstance(value, list | tuple) and value
    if numbers and all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value
    ):
        return tuple(float(v) for v in value)
    got = describe_value(value)
    raise ValueError(f"must be 'balanced' or a list of positive numbers, one per label, got {got}")


def _eval_every(value: Any, _type: Any) -> str | int:
    if value == "epoch" or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    close = isinstance(value, str) and difflib.get_close_matches(value.lower(), ["epoch"], n=1)
    guess = " (did you mean 'epoch'?)" if close else ""
    raise ValueError(
        f"must be 'epoch' or a positive number of steps, got {describe_value(value)}{guess}"
    )


def _trainer_table(value: Any, _type: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(
            f"expected a table of TrainingArguments fields, got {describe_value(value)}"
        )
    return copy.deepcopy(value)


def _report_to(value: Any, _type: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(
            f"expected a list of tracker names such as ['tensorboard', 'mlflow'], got "
            f"{describe_value(value)}"
        )
    unknown = [name for name in value if name not in TRACKERS]
    if unknown:
        raise ValueError("; ".join(unknown_tracker(name) for name in unknown))
    if len(set(value)) != len(value):
        raise ValueError(f"names a tracker twice: {list(value)}")
    return tuple(value)


def _seeds(value: Any, _type: Any) -> tuple[int, ...]:
    ints = isinstance(value, list | tuple) and value
    ints = ints and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ints or len(set(value)) != len(value):
        raise ValueError(f"must be a list of distinct integers, got {describe_value(value)}")
    return tuple(value)


# Files that zoo keeps beside the run folders of an output directory (the results store).
RESERVED_NAMES = frozenset(
    f"zoo-results.sqlite{suffix}" for suffix in ("", "-wal", "-shm", "-journal")
)


def _run_name(value: Any, type_: Any) -> str:
    """A name that is one folder name on every system zoo runs on, and not a file zoo keeps."""
    value = _strict(str)(value, type_)
    if not value or value in {".", ".."} or any(c in value for c in "/\\:"):
        raise ValueError(f"must be a plain name without '/', '\\' or ':', got {value!r}")
    if any(not c.isprintable() for c in value) or value != value.strip():
        raise ValueError(
            f"must be a folder name without control characters or spaces at either end, "
            f"got {value!r}"
        )
    if len(value.encode("utf-8")) > 200:  # folders hold 255 bytes; run folders add a suffix
        raise ValueError(f"must be at most 200 bytes as UTF-8, got {len(value.encode())} bytes")
    if value.lower() in RESERVED_NAMES:
        raise ValueError(f"{value!r} is the name of zoo's results store; choose another name")
    return value


def make_converter(
    model_names: Collection[str] | None = None,
    metric_names: Sequence[str] | None = None,
    transform_names: Sequence[str] | None = None,
) -> cattrs.Converter:
    """A converter that checks types strictly and, when given, model names against a registry;
    metric and text-transform names are checked against the registered ones (zoo's built-ins
    when not given)."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for kind in (int, float, str, bool):
        conv.register_structure_hook(kind, _strict(kind))
    conv.register_structure_hook(PositiveInt, _bounded(int, lambda v: v >= 1, "at least 1"))
    conv.register_structure_hook(NonNegativeInt, _bounded(int, lambda v: v >= 0, "0 or more"))
    conv.register_structure_hook(PositiveFloat, _bounded(float, lambda v: v > 0, "above 0"))
    conv.register_structure_hook(NonNegativeFloat, _bounded(float, lambda v: v >= 0, "0 or more"))
    conv.register_structure_hook(
        Ratio, _bounded(float, lambda v: 0 <= v < 1, "at least 0 and below 1")
    )
    conv.register_structure_hook(Ratio | str | Folds, _validation(conv))
    conv.register_structure_hook(RunName, _run_name)
    conv.register_structure_hook(ClassWeights, _class_weights)
    conv.register_structure_hook(Seeds, _seeds)
    conv.register_structure_hook(EmbeddingTraining, _embedding_training)
    conv.register_structure_hook(PromptTemplate, _prompt_template)
    conv.register_structure_hook(LabelWords, _label_words)
    conv.register_structure_hook(EvalEvery, _eval_every)
    conv.register_structure_hook(TrainerTable, _trainer_table)
    conv.register_structure_hook(TrackerNames, _report_to)
    conv.register_structure_hook_func(lambda t: getattr(t, "__origin__", None) is Literal, _choice)

    def model_name(value: Any, type_: Any) -> str:
        value = _strict(str)(value, type_)
        if is_hub(value):
            repo_id(value)  # a malformed id raises ValueError: the problem at models[N].model
            return value
        if model_names is not None and value not in model_names:
            guess = difflib.get_close_matches(value, sorted(model_names), n=1)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            raise ValueError(f"unknown model {value!r} ({hint}see 'zoo models')")
        return value

    conv.register_structure_hook(ModelName, model_name)
    known_metrics = [m.name for m in BUILTIN_METRICS] if metric_names is None else metric_names

    def metric_name(value: Any, type_: Any) -> str:
        value = _strict(str)(value, type_)
        if value not in known_metrics:
            raise ValueError(
                f"unknown metric {value!r} ({unknown_metric_hint(value, known_metrics)})"
            )
        return value

    conv.register_structure_hook(MetricName, metric_name)
    known_transforms = (
        [t.name for t in BUILTIN_TRANSFORMS] if transform_names is None else transform_names
    )
    conv.register_structure_hook(TransformNames, _transform_names(known_transforms))
    conv.register_structure_hook(TextColumns, _text_columns)
    conv.register_structure_hook(LabelSeparator, _label_separator)
    conv.register_structure_hook(Threshold, _threshold)
    conv.register_structure_hook(SearchSpace, _search_space(conv))
    return conv


# Keys a search cannot vary: tables, names of other things, and where runs are logged.
UNSEARCHABLE = frozenset({"trainer", "report_to", "metric"})


def _search_space(conv: cattrs.Converter) -> Callable[[Any, Any], dict[str, Any]]:
    def structure(value: Any, _type: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping) or not value:
            raise ValueError(
                "must be a table of [training] keys, e.g. "
                "{ learning_rate = { low = 1e-5, high = 1e-4, log = true } }"
            )
        space: dict[str, Any] = {}
        for key, values in value.items():
            if key not in TRAINING_KEYS or key in UNSEARCHABLE:
                guess = difflib.get_close_matches(key, sorted(TRAINING_KEYS - UNSEARCHABLE), n=1)
                hint = f" (did you mean {guess[0]!r}?)" if guess else ""
                raise ValueError(f"{key!r} is no [training] key a search can vary{hint}")
            space[key] = _search_values(conv, key, values)
        return space

    return structure


def _search_values(conv: cattrs.Converter, key: str, values: Any) -> Any:
    """A list of values of `key`, or a SearchRange of them, each checked as [training] would."""

    def check(value: Any, what: str) -> None:
        try:
            conv.structure({key: value}, TrainingConfig)
        except (ClassValidationError, ForbiddenExtraKeysError) as exc:
            wrong = "; ".join(p.message for p in _problems(exc, "", {key: value}))
            raise ValueError(f"{key}: {what} {describe_value(value)}: {wrong}") from None

    if isinstance(values, list):
        if not values:
            raise ValueError(f"{key}: an empty list of values")
        for i, value in enumerate(values):
            check(value, f"value {i + 1}")
        if len({json.dumps(v) for v in values}) < len(values):
            raise ValueError(f"{key}: a value is listed twice")
        return tuple(values)
    if not isinstance(values, Mapping):
        raise ValueError(
            f"{key}: must be a list of values or {{ low = ..., high = ... }}, got "
            f"{describe_value(values)}"
        )
    numbers = {k: v for k, v in values.items() if k in ("low", "high", "step")}
    for name, number in numbers.items():
        if type(number) not in (int, float):
            raise ValueError(f"{key}.{name} must be a number, got {describe_value(number)}")
    try:
        found = conv.structure(
            {k: float(v) if k in numbers else v for k, v in values.items()}, SearchRange
        )
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        wrong = "; ".join(str(p) for p in _problems(exc, key, values))
        raise ValueError(wrong) from None
    found = attrs.evolve(found, **numbers)  # integers stay integers
    if not found.low < found.high:
        raise ValueError(f"{key}: low ({found.low}) must be below high ({found.high})")
    if found.log and found.low <= 0:
        raise ValueError(f"{key}: a log range needs low above 0, got {found.low}")
    if found.log and found.step is not None:
        raise ValueError(f"{key}: give log or step, not both")
    if found.step is not None and found.step <= 0:
        raise ValueError(f"{key}: step must be above 0, got {found.step}")
    check(found.low, "low")
    check(found.high, "high")
    if not found.integer and not _takes_fractions(conv, key):
        raise ValueError(f"{key} takes whole numbers: give low and high (and step) as integers")
    return found


def _takes_fractions(conv: cattrs.Converter, key: str) -> bool:
    """Whether a training key takes a value like 0.5 (a float range samples such values)."""
    try:
        conv.structure({key: 0.5}, TrainingConfig)
    except (ClassValidationError, ForbiddenExtraKeysError):
        return False
    return True


def search_problems(recipe: Recipe) -> list[Problem]:
    """What a [search] cannot do as written: a grid over a continuous range, more trials than
    the grid has, no trial count for a sampler that needs one, cross-validation."""
    search = recipe.search
    if search is None:
        return []
    problems = []
    if search.sampler == "grid":
        continuous = [
            k for k, v in search.space.items() if isinstance(v, SearchRange) and v.grid() is None
        ]
        if continuous:
            problems.append(
                Problem(
                    "search.space",
                    f"a grid needs lists of values (or integer ranges): {', '.join(continuous)} "
                    "is a continuous range; give its values as a list",
                )
            )
        else:
            size = math.prod(len(grid_values(v)) for v in search.space.values())
            if search.trials is not None and search.trials > size:
                problems.append(
                    Problem(
                        "search.trials", f"{search.trials} trials, but the grid has {size} points"
                    )
                )
    elif search.trials is None:
        problems.append(
            Problem("search.trials", f"the {search.sampler!r} sampler needs a number of trials")
        )
    if isinstance(recipe.data.validation, Folds):
        problems.append(
            Problem(
                "search",
                "a search with cross-validation (data.validation = { folds = K }) is not "
                "supported yet: search on a validation fraction or file",
            )
        )
    return problems


def grid_values(values: Any) -> tuple[Any, ...]:
    """The values a grid tries for one key: its list, or an integer range's every step."""
    if isinstance(values, SearchRange):
        found = values.grid()
        assert found is not None
        return found
    return tuple(values)


def _label_separator(value: Any, _type: Any) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ValueError(
            "expected the characters that join a text's labels, such as ';' or '|' (not empty, "
            f"no surrounding spaces), got {describe_value(value)}"
        )
    return value


def _threshold(value: Any, _type: Any) -> str | float:
    if value == "tuned":
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1:
        return float(value)
    raise ValueError(
        f"expected 'tuned' or a probability between 0 and 1 (such as 0.5), got "
        f"{describe_value(value)}"
    )


def _text_columns(value: Any, _type: Any) -> str | tuple[str, str]:
    if isinstance(value, str):
        return value
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(
            "expected a column name, or a list of two for a text pair such as "
            f"['question', 'reply'], got {describe_value(value)}"
        )
    if len(value) != 2:
        raise ValueError(
            f"a text pair is two columns, not {len(value)}: {list(value)}; give one column, or two"
        )
    first, second = value
    if first.strip() == second.strip():
        raise ValueError(f"names the column {first!r} twice: a pair needs two columns")
    return first, second


def _transform_names(known: Sequence[str]) -> Callable[[Any, Any], tuple[str, ...]]:
    def structure(value: Any, _type: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(
                "expected a list of text transform names such as ['nfc', 'mask-urls'], got "
                f"{describe_value(value)}"
            )
        for name in value:
            if name not in known:
                guess = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {guess[0]!r}? " if guess else ""
                raise ValueError(
                    f"unknown text transform {name!r} ({hint}known: {', '.join(known)}; "
                    "a plugin can add more)"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"names a transform twice: {list(value)}")
        return tuple(value)

    return structure


# --- turning cattrs' exception groups into dotted-path problems ---------------------------------


def _field_names(cls: type) -> list[str]:
    return [f.name for f in attrs.fields(cls) if not f.metadata.get("internal")]


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _missing(cls: type, name: str) -> str:
    """What to write for a required key (or section) that a table lacks."""
    doc = attrs.fields_dict(cls)[name].metadata.get("doc")
    if doc is None:
        return f"required section is missing: add a [{name}] table"
    return f"required key is missing: {doc}"


def _part(value: Any, part: str | int) -> Any:
    """The value at `part` of a table or an array, if there is one."""
    if isinstance(part, str):
        return value.get(part) if isinstance(value, Mapping) else None
    return value[part] if isinstance(value, list) and part < len(value) else None


def _problems(exc: BaseException, path: str, value: Any = None) -> Iterable[Problem]:
    """The problems in `exc`, raised when structuring `value` (found at `path`)."""
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without_notes = exc.group_exceptions()
        for sub, note in with_notes:
            part = note.name if hasattr(note, "name") else note.index
            if isinstance(sub, KeyError) and isinstance(exc, ClassValidationError):
                yield Problem(_join(path, part), _missing(exc.cl, part))
                continue
            yield from _problems(sub, _join(path, part), _part(value, part))
        for sub in without_notes:
            yield from _problems(sub, path, value)
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = _field_names(exc.cl)
        for key in sorted(exc.extra_fields):
            guess = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            if not path:
                sections = ", ".join(f"[{k}]" for k in known)
                hint = hint or f" (expected {sections})"
                yield Problem(key, f"unknown section{hint}")
            else:
                if not hint and "trainer" in known:  # [training] or a [[models]] entry
                    from zoo.engine.arguments import trainer_field_hint

                    field = trainer_field_hint(key, path)
                    hint = f" ({field})" if field else ""
                hint = hint or f" (expected one of: {', '.join(known)})"
                yield Problem(_join(path, key), f"unknown key{hint}")
    elif isinstance(exc, KeyError):
        yield Problem(path, "required key is missing")
    elif isinstance(exc, AttributeError | TypeError) and not isinstance(value, Mapping):
        # cattrs met something else where a table ([data], lora = { ... }) belongs.
        yield Problem(path, f"expected a table, got {describe_value(value)}")
    elif isinstance(exc, ValueError | TypeError):
        yield Problem(path, str(exc) or type(exc).__name__)
    else:
        yield Problem(path, f"{type(exc).__name__}: {exc}")


def _natural(problem: Problem) -> list[Any]:
    # models[2] before models[10]
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", problem.path)]


def _check_model_entries(models: Any) -> list[Problem]:
    if models is not None and not isinstance(models, list):
        return [Problem("models", f"expected [[models]] tables, got {describe_value(models)}")]
    if not models:
        return [Problem("models", "add at least one [[models]] table naming a model to train")]
    problems, seen = [], {}
    for i, entry in enumerate(models):
        if not isinstance(entry, dict):
            continue
        label = entry.get("name", entry.get("model"))
        if isinstance(label, str) and "name" not in entry and is_hub(label):
            label = hub_label(label)
        if isinstance(label, str) and label in seen:
            problems.append(
                Problem(
                    f"models[{i}]",
                    f"{label!r} appears twice (first at models[{seen[label]}]); "
                    'give each entry its own name = "..."',
                )
            )
        seen.setdefault(label, i)
    return problems


def structure_recipe(
    raw: Mapping[str, Any],
    source: str,
    base_dir: Path,
    model_names: Collection[str] | None,
    metric_names: Sequence[str] | None = None,
    transform_names: Sequence[str] | None = None,
) -> Recipe:
    """Turn a parsed TOML document into a `Recipe`, or raise `RecipeError` listing every problem."""
    conv = make_converter(model_names, metric_names, transform_names)
    problems = _check_model_entries(raw.get("models"))
    try:
        recipe = conv.structure(dict(raw), Recipe)
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        found = _problems(exc, "", raw)
        if isinstance(raw.get("models"), list) and raw["models"]:
            problems += [p for p in found if p.path != "models"]
        else:  # _check_model_entries said what is wrong with them
            problems += [p for p in found if not p.path.startswith("models")]
        recipe = None
    if problems:
        raise RecipeError(source, sorted(problems, key=_natural))
    return attrs.evolve(recipe, base_dir=base_dir, source=source)


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = f"TOML syntax error: {exc}{_unquoted(text, str(exc))}"
        raise RecipeError(source, [Problem("", message)]) from None


def _unquoted(text: str, error: str) -> str:
    """A hint for the commonest TOML mistake, text without quotes (``model = minilm``)."""
    where = re.fullmatch(r"Invalid value \(at line (\d+), column (\d+)\)", error)
    if where is None:
        return ""
    lines, line, column = text.splitlines(), int(where[1]), int(where[2])
    if line > len(lines):
        return ""
    before, value = lines[line - 1][: column - 1], lines[line - 1][column - 1 :]
    value = value.split("#")[0].strip()
    if not re.fullmatch(r"[A-Za-z_][\w.\-/]*", value):
        return ""
    return f'; text needs quotes: {before.strip()} "{value}"'


_OVERRIDE_PART = re.compile(r"([A-Za-z_][\w-]*)(?:\[(\d+)\])?")


def _override_path(key: str) -> list[tuple[str, int | None]] | None:
    """``models[0].lora.r`` -> [("models", 0), ("lora", None), ("r", None)]; None if malformed."""
    parts = []
    for text in key.strip().split("."):
        match = _OVERRIDE_PART.fullmatch(text)
        if match is None:
            return None
        parts.append((match[1], None if match[2] is None else int(match[2])))
    return parts if len(parts) >= 2 and parts[-1][1] is None else None


def _set_override(
    raw: dict[str, Any], path: list[tuple[str, int | None]], value: Any
) -> str | None:
    """Put `value` at `path` in `raw`, making tables on the way; what is wrong, or None."""
    table, where = raw, ""
    for name, index in path[:-1]:
        where = _join(where, name)
        if index is None:
            if isinstance(table.get(name), list):
                return f"{where} is a list of [[{name}]] tables; name one by its index: {where}[0]"
            table = table.setdefault(name, {})
            if not isinstance(table, dict):
                return f"{where} is not a table"
            continue
        entries = table.get(name)
        if not isinstance(entries, list):
            return f"{where} is not a list of [[{name}]] tables"
        if index >= len(entries):
            count = len(entries)
            return f"the recipe has {count} [[{name}]] tables ({where}[0] to {where}[{count - 1}])"
        where = _join(where, index)
        table = entries[index]
        if not isinstance(table, dict):
            return f"{where} is not a table"
    table[path[-1][0]] = value
    return None


def apply_overrides(
    raw: dict[str, Any], overrides: Sequence[str] | Mapping[str, Any], source: str
) -> dict[str, Any]:
    """Apply overrides: ``--set KEY=VALUE`` strings, KEY a dotted path into the recipe
    (``training.epochs``, ``models[0].learning_rate``, ``models[1].lora.r``) and VALUE TOML
    (``epochs=1``, ``name="x"``; a bare word that is not valid TOML is taken as a string,
    ``data.train=other.csv``), or a mapping of such keys to values (the Python API's
    ``overrides={"training.epochs": 1}``).
    """
    raw = copy.deepcopy(raw)
    problems = []
    for where, key, value in _override_items(overrides, problems):
        path = _override_path(key)
        if path is None:
            problems.append(Problem(where, "expected SECTION.KEY=VALUE (or models[N].KEY=VALUE)"))
            continue
        wrong = _set_override(raw, path, value)
        if wrong is not None:
            problems.append(Problem(where, wrong))
    if problems:
        raise RecipeError(source, problems)
    return raw


def _override_items(
    overrides: Sequence[str] | Mapping[str, Any], problems: list[Problem]
) -> Iterable[tuple[str, str, Any]]:
    """(where, key, value) of each override; a --set without '=' is a problem."""
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            yield f"overrides[{key!r}]", str(key), value
        return
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            problems.append(
                Problem(f"--set {item}", "expected SECTION.KEY=VALUE (or models[N].KEY=VALUE)")
            )
            continue
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        yield f"--set {item}", key, value


def method_problems(recipe: Recipe, methods: Mapping[str, Sequence[str]]) -> list[Problem]:
    """Training methods that a model does not support, and LoRA settings without LoRA."""
    problems = []
    for i, entry in enumerate(recipe.models):
        supported = methods.get(entry.model)
        if supported is not None and entry.training_method not in supported:
            listed = ", ".join(repr(m) for m in supported)
            problems.append(
                Problem(
                    f"models[{i}].method",
                    f"{entry.model!r} supports {listed}, not {entry.training_method!r}",
                )
            )
        method = entry.training_method
        if not trains_weights(method) and entry.truncation is not None:
            problems.append(
                Problem(
                    f"models[{i}].truncation",
                    f"{method} scoring cuts the text to fit its prompt (training.truncation "
                    "applies to fine-tuned models, and their run.json says what it cut): "
                    "remove it here",
                )
            )
        if entry.head is not None and not trains_weights(method):
            problems.append(
                Problem(
                    f"models[{i}].head",
                    f"{method} trains no head: it scores each label's words after the prompt "
                    "already; remove head, or fine-tune (method = 'full', 'lora' or 'qlora')",
                )
            )
        for key in ("prompt", "label_words"):
            if getattr(entry, key) is not None and not entry.prompted:
                problems.append(
                    Problem(
                        f"models[{i}].{key}",
                        f"{key} is read by head = 'label-words', 'zero-shot' and 'few-shot', "
                        f"not by a classification head; remove it, or set one of those",
                    )
                )
        if entry.shots is not None and method != "few-shot":
            problems.append(
                Problem(
                    f"models[{i}].shots",
                    f"shots is the number of examples per class of method = 'few-shot', "
                    f"not of {method!r}: remove it, or set method = 'few-shot'",
                )
            )
        if entry.lora is not None and entry.training_method not in {"lora", "qlora"}:
            problems.append(
                Problem(
                    f"models[{i}].lora",
                    f"LoRA settings need method = 'lora' or 'qlora', not "
                    f"{entry.training_method!r}; set the method or remove the LoRA settings",
                )
            )
    return problems


def load_recipe(
    path: str | Path,
    *,
    model_names: Collection[str] | None = None,
    model_methods: Mapping[str, Sequence[str]] | None = None,
    metric_names: Sequence[str] | None = None,
    transform_names: Sequence[str] | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> Recipe:
    """Read, override and validate a recipe file.

    `model_names` are the registered models; `model_methods` maps each to the training methods
    it supports. Either may be left out to skip that check. `metric_names` and
    `transform_names` are the registered metrics and text transforms (zoo's built-ins when
    left out).
    """
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecipeError(source, [Problem("", "file not found")]) from None
    except OSError as exc:
        raise RecipeError(source, [Problem("", f"cannot read the file: {exc}")]) from None
    try:
        # A byte-order mark (Windows Notepad writes one) is not part of the recipe.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text: line {line} has the byte 0x{raw[exc.start]:02x}"
        raise RecipeError(source, [Problem("", f"{message}; save the recipe as UTF-8")]) from None
    return recipe_from_raw(
        parse_toml(text, source),
        source,
        path.resolve().parent,
        overrides=overrides,
        model_names=model_names,
        model_methods=model_methods,
        metric_names=metric_names,
        transform_names=transform_names,
    )


def recipe_from_raw(
    raw: Mapping[str, Any],
    source: str,
    base_dir: Path,
    *,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    model_names: Collection[str] | None = None,
    model_methods: Mapping[str, Sequence[str]] | None = None,
    metric_names: Sequence[str] | None = None,
    transform_names: Sequence[str] | None = None,
) -> Recipe:
    """Override and validate a parsed recipe (a TOML document's tables, or the Python API's
    dict) whose relative paths are relative to `base_dir`; `source` names it in messages."""
    if not isinstance(raw, Mapping):
        raise RecipeError(
            source, [Problem("", f"expected a table of sections, got {type(raw).__name__}")]
        )
    raw = apply_overrides(dict(raw), overrides, source)
    recipe = structure_recipe(
        raw, source, base_dir.resolve(), model_names, metric_names, transform_names
    )
    problems = missing_files(recipe) + column_problems(recipe.data) + trainer_table_problems(recipe)
    problems += search_problems(recipe)
    if model_methods is not None:
        problems += method_problems(recipe, model_methods)
    if problems:
        raise RecipeError(source, problems)
    return recipe


def trainer_table_problems(recipe: Recipe) -> list[Problem]:
    """What is wrong with the recipe's [training.trainer] tables (checked against
    transformers.TrainingArguments, which is imported only when the recipe has such a table)."""
    tables = [("training.trainer", recipe.training.trainer)]
    tables += [(f"models[{i}].trainer", entry.trainer) for i, entry in enumerate(recipe.models)]
    if not any(table for _path, table in tables):
        return []
    from zoo.engine.arguments import trainer_problems

    return [problem for path, table in tables for problem in trainer_problems(table, path)]


def data_paths(recipe: Recipe) -> dict[str, Path]:
    """The data files the recipe names, by setting (paths are relative to the recipe)."""
    named = {"data.train": recipe.data.train, "data.test": recipe.data.test}
    if isinstance(recipe.data.validation, str):
        named["data.validation"] = recipe.data.validation
    return {key: recipe.path(value) for key, value in named.items() if value is not None}


def missing_files(recipe: Recipe) -> list[Problem]:
    """Data files the recipe names that do not exist or are folders, and checkpoint folders
    that are not folders."""
    problems = []
    for key, path in data_paths(recipe).items():
        if path.is_dir():
            problems.append(Problem(key, f"{path} is a folder, not a file: name a CSV or TSV file"))
        elif not path.is_file():
            problems.append(Problem(key, f"file not found: {path}"))
    for index, entry in enumerate(recipe.models):
        if entry.checkpoint is None:
            continue
        path = recipe.path(entry.checkpoint)
        if not path.is_dir():
            what = "is a file" if path.exists() else "does not exist"
            problems.append(
                Problem(
                    f"models[{index}].checkpoint",
                    f"{path} {what}: name the folder that holds the model's config.json and "
                    "weights",
                )
            )
    return problems


def column_problems(data: DataSection) -> list[Problem]:
    """Column settings that cannot describe a labelled table."""
    if data.label_column in data.text_columns:
        where = (
            f"is a column of the text pair data.text_column ({list(data.text_columns)})"
            if data.pairs
            else f"is the same column as data.text_column ({data.text_column!r})"
        )
        return [
            Problem(
                "data.label_column",
                f"{where}: a model would learn to read its answer; name the column that holds "
                "the labels",
            )
        ]
    return []


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe as TOML-ready data (None values left out, as TOML has no null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    data = attrs.asdict(recipe, filter=lambda a, _v: not a.metadata.get("internal"))
    return clean(data)
