"""Fine-tuning one model with the Hugging Face Trainer."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from zoo.assets import cache_dir
from zoo.data import LabelledTexts
from zoo.engine import device as devices
from zoo.engine import truncation
from zoo.engine.adapters import apply_lora, is_adapter
from zoo.engine.arguments import training_arguments
from zoo.engine.distributed import is_main
from zoo.engine.jobs import (
    NOT_SCORED,
    Progress,
    TrainJob,
    TrainResult,
    score_split,
    softmax,
)
from zoo.engine.loading import LoadRequest, load_causal_lm, load_for_classification
from zoo.engine.metrics import ClassificationMetrics
from zoo.errors import ZooError
from zoo.events import RunEvents
from zoo.metrics import scores_of
from zoo.multilabel import DEFAULT_THRESHOLD, fixed_threshold, multi_hot, sigmoid
from zoo.rundir import MODEL
from zoo.spec import trains_weights
from zoo.trackers import TENSORBOARD_DIR

# Bump when what a cache file holds changes, so that no older file is read as a newer one.
TOKENIZED_CACHE_FORMAT = "tokens-v4"  # v4: which text each row is ("text_row", chunks)


def _dataset(
    rows: LabelledTexts,
    labels: tuple[str, ...],
    tokenize: Callable,
    tokenizer_key: str,
    separator: str | None = None,
) -> Any:
    """The tokenized rows (one a text, or with chunks one a window) with this run's label ids.

    Only the tokens are cached across runs (under zoo's cache directory), keyed by everything
    they depend on: the tokenizer and its settings, the texts, and the datasets version that
    wrote the file. Label ids are not cached: they
    depend on the run's label list (a validation file kept while the training labels change
    would otherwise come back with ids that now mean other labels).
    """
    import datasets

    # The file is datasets' own Arrow cache: another datasets version may not read it (4.x
    # writes feature types that 3.0 does not know), so each version keeps its own.
    digest = hashlib.sha256(
        f"{TOKENIZED_CACHE_FORMAT}\0datasets {datasets.__version__}\0{tokenizer_key}\0".encode()
    )
    columns = {"text": list(rows.texts)}
    if rows.pairs is not None:
        columns["pair"] = list(rows.pairs)
    for name, texts in columns.items():
        digest.update(f"{name}\0".encode())
        for text in texts:
            digest.update(f"{len(text)}:{text}".encode())
    cached = cache_dir() / "tokenized" / f"{digest.hexdigest()[:40]}.arrow"
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Several processes only pay off on large files; each one imports the tokenizer anew.
    workers = min(4, os.cpu_count() or 1) if len(rows) >= 20_000 else None
    tokens = datasets.Dataset.from_dict(columns).map(
        tokenize,
        batched=True,
        with_indices=True,  # TEXT_ROW: a window's text among all of the split's
        remove_columns=list(columns),
        cache_file_name=str(cached),
        load_from_cache_file=True,
        num_proc=workers,
    )
    if separator is not None:  # multi-label: each label's 0/1, as binary cross-entropy reads it
        targets = multi_hot(rows.labels, labels, separator).astype(np.float32).tolist()
    else:
        ids = {name: i for i, name in enumerate(labels)}
        targets = [ids[label] for label in rows.labels]
    return tokens.add_column("label", [targets[i] for i in tokens[truncation.TEXT_ROW]])


def _tokenizer_key(tokenizer: Any, settings: Any, keep: set[str], truncation: str) -> str:
    """What decides the tokens: the tokenizer's own definition and zoo's settings."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    definition = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab()))
    return "\0".join(
        [
            type(tokenizer).__name__,
            hashlib.sha256(definition.encode()).hexdigest(),
            str(settings.max_length),
            tokenizer.padding_side,
            getattr(tokenizer, "truncation_side", "right"),
            ",".join(sorted(keep)),
            truncation,
        ]
    )


def _trainer_class(*, sparse: bool = False):
    import torch
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

    class ZooTrainer(Trainer):
        def evaluation_loop(self, *args, **kwargs):
            # Out of memory while evaluating: halve the evaluation batch and try again, without
            # touching the training batch.
            while True:
                try:
                    return super().evaluation_loop(*args, **kwargs)
                except torch.OutOfMemoryError:
                    if self.args.per_device_eval_batch_size <= 1:
                        raise
                    self.args.per_device_eval_batch_size //= 2
                    torch.cuda.empty_cache()

        def _get_eval_sampler(self, eval_dataset):
            # transformers 5 length-groups evaluation too when training is length-grouped, which
            # reorders predictions against the input file. Keep evaluation in file order.
            if eval_dataset is not None and self.args.world_size <= 1:
                return SequentialSampler(eval_dataset)
            return super()._get_eval_sampler(eval_dataset)

    class SparseEmbeddingsTrainer(ZooTrainer):
        """train_embeddings = "sparse": torch's clip_grad_norm_ cannot read the embedding's
        sparse gradient, so the norm (and the clipping) are zoo's, after the same unscaling."""

        def _clip_grad_norm(self, model, max_norm=None):
            from zoo.engine.sparse_embeddings import clip_grad_norm

            self.accelerator.unscale_gradients()
            limit = self.args.max_grad_norm if max_norm is None else max_norm
            return clip_grad_norm(model.parameters(), limit)

        def _get_grad_norm(self, model, grad_norm=None):
            if grad_norm is None:  # max_grad_norm = 0: the norm for the logs, no clipping
                grad_norm = self._clip_grad_norm(model, float("inf"))
            return super()._get_grad_norm(model, grad_norm=grad_norm)

    return SparseEmbeddingsTrainer if sparse else ZooTrainer


def _progress_callback(progress: Progress):
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            progress.start("training", state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            progress.advance()

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics:
                name = f"eval_{args.metric_for_best_model}"
                progress.message(
                    f"step {state.global_step}: validation {args.metric_for_best_model} "
                    f"{metrics.get(name, float('nan')):.4f}, loss {metrics.get('eval_loss', 0):.4f}"
                )

        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                raise ZooError(
                    f"the training loss became {loss} at step {state.global_step}",
                    hint="lower the learning rate, or train in fp32 (training.precision = 'fp32')",
                )

        def on_train_end(self, args, state, control, **kwargs):
            progress.stop()

    return ProgressCallback()


def _events_callback(events: RunEvents):
    """Tells the run listeners of each evaluation during training (hook
    register_run_listeners)."""
    from transformers import TrainerCallback

    timing = {"runtime", "samples_per_second", "steps_per_second"}

    class EventsCallback(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            scores = {
                name.removeprefix("eval_"): value
                for name, value in (metrics or {}).items()
                if name.startswith("eval_") and name.removeprefix("eval_") not in timing
            }
            if events.evaluated(step=state.global_step, epoch=state.epoch, metrics=scores):
                control.should_training_stop = True  # a search pruned this trial

    return EventsCallback()


@contextlib.contextmanager
def tensorboard_logging_dir(path: Path) -> Iterator[None]:
    """While the Trainer is built: its TensorBoard callback (training.report_to) writes its
    event files to `path`, in the run directory. It reads TENSORBOARD_LOGGING_DIR when it is
    made; the default, under output_dir, would go with the checkpoints when they are removed."""
    before = os.environ.get("TENSORBOARD_LOGGING_DIR")
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
        else:
            os.environ["TENSORBOARD_LOGGING_DIR"] = before


def multi_label_loss(positive_weights: np.ndarray | None):
    """A Trainer `compute_loss_func` for multi-label data: binary cross-entropy of each label
    (sigmoid outputs), its positive rows weighted by `positive_weights` when given."""
    import torch

    table = None if positive_weights is None else torch.tensor(positive_weights)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weight = None if table is None else table.to(device=logits.device, dtype=logits.dtype)
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels.to(logits.dtype), pos_weight=weight
        )

    return loss


def weighted_loss(weights: np.ndarray):
    """A Trainer `compute_loss_func`: cross-entropy with per-class weights (a weighted mean)."""
    import torch

    table = torch.tensor(weights, dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weight = table.to(device=logits.device, dtype=logits.dtype)
        return torch.nn.functional.cross_entropy(
            logits.view(-1, logits.shape[-1]), labels.view(-1), weight=weight
        )

    return loss


def quiet_libraries() -> None:
    """zoo draws its own progress; the libraries' bars and log lines would interleave with it."""
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def train_model(
    job: TrainJob, make_run_dir: Callable[[], Path], progress: Progress
) -> tuple[Path, TrainResult]:
    """Load, fine-tune, evaluate and save one model (or, for zero-shot and few-shot, only evaluate).

    The run directory is made only once the model has loaded, so a model that cannot be found
    leaves nothing behind. Returns the run directory and what the run produced.
    """
    quiet_libraries()
    device = job.device if job.device is not None else devices.detect()
    precision = devices.choose_precision(job.settings.precision, device)
    if not trains_weights(job.method):  # zero-shot, few-shot
        from zoo.engine.zero_shot import run_zero_shot

        return run_zero_shot(job, device, precision, make_run_dir, progress)
    if job.head == "label-words":
        from zoo.engine.label_words import run_label_words

        return run_label_words(job, device, precision, make_run_dir, progress)
    devices.check_training(job.method, job.settings, device)
    if job.settings.trainer:
        # Built once before the model loads, so that a value TrainingArguments refuses (from
        # [training.trainer]) fails the run before anything loads or is written.
        training_arguments(job, device, precision, output_dir="not-made-yet")
    model, tokenizer, request = load_model(job, device, precision)
    run_dir = make_run_dir()
    datasets = tokenize_splits(job, tokenizer, request, progress)
    checkpoints = run_dir / "checkpoints"
    args = training_arguments(job, device, precision, output_dir=str(checkpoints))
    with tensorboard_logging_dir(run_dir / TENSORBOARD_DIR):
        trainer = build_trainer(job, model, tokenizer, args, datasets, progress)
    outcome = train_and_evaluate(job, trainer, datasets, device, progress)
    save_model(trainer, model, run_dir, checkpoints)
    result = TrainResult.scored(
        outcome.validation,
        outcome.test,
        log_history=list(trainer.state.log_history),
        parameters=sum(p.numel() for p in model.parameters()),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        train_seconds=outcome.train_seconds,
        peak_memory_bytes=outcome.peak.peak,
        peak_memory_kind=outcome.peak.kind,
        device=device.name,
        precision=precision,
        text_tokens=datasets.lengths,
        thresholds=outcome.thresholds,
    )
    return run_dir, result


def load_model(
    job: TrainJob, device: Any, precision: str, *, causal_lm: bool = False
) -> tuple[Any, Any, LoadRequest]:
    """The model (with its LoRA adapters for 'lora' and 'qlora'), its tokenizer, and what was
    asked of the loader; the classification head is seeded with the run's seed. `causal_lm`
    (head = "label-words"): the decoder with its own LM head, through zoo's causal-LM loader
    (a plugin's loader builds a classifier; preflight refuses label words with one)."""
    import transformers

    settings = job.settings
    # The classification head is initialised at random: seed before it is built.
    transformers.set_seed(job.seed)
    request = LoadRequest(
        spec=job.spec,
        location=job.location,
        revision=job.revision,
        labels=job.splits.labels,
        tokenizer=attrs.evolve(job.spec.tokenizer, max_length=settings.max_length),
        quantize_4bit=job.method == "qlora",
        allow_pickle=job.allow_pickle,
        trust_remote_code=job.trust_remote_code,
        dtype=devices.weights_dtype(job.method, precision, device.kind),
        attention=settings.attention,
    )
    loader = load_causal_lm if causal_lm else job.spec.loader or load_for_classification
    model, tokenizer = loader(request)
    if job.multi_label:  # saved with the model: sigmoid outputs, one per label
        model.config.problem_type = "multi_label_classification"
    if job.method in {"lora", "qlora"}:
        quantized = job.method == "qlora"
        model = apply_lora(model, job.spec, job.lora, quantized=quantized, causal_lm=causal_lm)
    elif settings.train_embeddings is False:
        # No gradient, so no optimizer state either: the Trainer's AdamW skips frozen weights.
        model.get_input_embeddings().weight.requires_grad_(False)
    elif settings.train_embeddings == "sparse":
        from zoo.engine.sparse_embeddings import make_sparse

        make_sparse(model)
    return model, tokenizer, request


@attrs.frozen
class TokenizedSplits:
    train: Any
    validation: Any
    test: Any | None
    # How long each split's texts were in tokens, and how many max_length cut (Lengths.to_json).
    lengths: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    # Which text of its split each row is, by split ("train", ...): one row a text, or with
    # chunks one a window (truncation.per_text turns the rows' probabilities into the texts').
    text_rows: dict[str, np.ndarray] = attrs.field(factory=dict)


def tokenize_splits(
    job: TrainJob, tokenizer: Any, request: LoadRequest, progress: Progress
) -> TokenizedSplits:
    """The splits as the model reads them: token ids (cached across runs), cut to max_length
    by training.truncation, and label ids; and how long the texts were (said when many were
    cut)."""
    splits = job.splits
    added = {truncation.TEXT_TOKENS, truncation.TEXT_ROW}
    keep = set(tokenizer.model_input_names) | added
    if not request.tokenizer.token_type_ids:
        keep.discard("token_type_ids")
    max_length = request.tokenizer.max_length
    strategy = job.settings.truncation or truncation.DEFAULT
    stride = truncation.stride_for(max_length, job.settings.chunk_stride)
    pairs = splits.train.pairs is not None
    if pairs and strategy != "head":  # preflight refuses it; this says why here
        raise ValueError(f"a text pair is cut by the tokenizer ('head'), not {strategy!r}")
    # Found once, not once a batch: [CLS] a [SEP] is 2, [CLS] a [SEP] b [SEP] 3.
    specials = truncation.special_tokens(tokenizer)
    specials_count = truncation.pair_specials(tokenizer) if pairs else sum(specials)

    def tokenize(batch, indices):
        if pairs:
            encoded = truncation.encode_pairs(
                tokenizer,
                batch["text"],
                batch["pair"],
                max_length=max_length,
                specials=specials_count,
            )
        else:
            encoded = truncation.encode(
                tokenizer,
                batch["text"],
                max_length=max_length,
                strategy=strategy,
                specials=specials,
                stride=stride,
            )
        # encode numbers the batch's texts from 0; the split's numbers are the map's indices
        encoded[truncation.TEXT_ROW] = [indices[i] for i in encoded[truncation.TEXT_ROW]]
        return {k: v for k, v in encoded.items() if k in keep}

    progress.message("tokenizing")
    cut = truncation.cache_key(strategy, stride)
    key = _tokenizer_key(tokenizer, request.tokenizer, keep, cut)
    parts = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    found, lengths, text_rows = {}, {}, {}
    for name, rows in parts.items():
        if rows is None:
            found[name] = None
            continue
        dataset = _dataset(rows, splits.labels, tokenize, key, splits.separator)
        text_rows[name] = np.asarray(dataset[truncation.TEXT_ROW], dtype=np.int64)
        measured = truncation.Lengths.of(
            dataset[truncation.TEXT_TOKENS], max_length, specials_count, text_rows[name]
        )
        lengths[name] = measured.to_json()
        warning = measured.warning(name, strategy)
        if warning:
            progress.message(f"warning: {warning}")
        found[name] = dataset.remove_columns(sorted(added))
    return TokenizedSplits(**found, lengths=lengths, text_rows=text_rows)


def zoo_callbacks(job: TrainJob, progress: Progress) -> list[Any]:
    """The progress bar, the run listeners' events and early stopping, as every zoo Trainer
    has them."""
    from transformers import EarlyStoppingCallback

    callbacks = [_progress_callback(progress), _events_callback(job.events)]
    if job.settings.early_stopping_patience:
        # Counts evaluations (training.eval_every), not epochs.
        callbacks.append(EarlyStoppingCallback(job.settings.early_stopping_patience))
    return callbacks


def build_trainer(
    job: TrainJob,
    model: Any,
    tokenizer: Any,
    args: Any,
    datasets: TokenizedSplits,
    progress: Progress,
) -> Any:
    """zoo's Trainer: its metrics, its loss (class weights), its callbacks (progress, run
    events, early stopping), nothing printed on stdout."""
    from transformers import DataCollatorWithPadding, PrinterCallback

    settings, splits = job.settings, job.splits
    metric = ClassificationMetrics()
    rows = len(splits.validation)
    if not job.multi_label:
        ids = {name: i for i, name in enumerate(splits.labels)}
        references = np.asarray([ids[label] for label in splits.validation.labels])

    def compute_metrics(prediction) -> dict[str, float]:
        # Scored by text: with chunks, the mean of each text's windows.
        text_rows = datasets.text_rows["validation"]
        if job.multi_label:
            # During training at a fixed threshold; the tuned ones come from the best checkpoint.
            fixed = fixed_threshold(settings.threshold)
            probabilities = truncation.per_text(sigmoid(prediction.predictions), text_rows, rows)
            thresholds = (DEFAULT_THRESHOLD if fixed is None else fixed,) * len(splits.labels)
            report, _, _ = score_split(
                probabilities,
                splits.validation.labels,
                splits.labels,
                job.metrics,
                separator=splits.separator,
                thresholds=thresholds,
            )
            return scores_of(report)
        probabilities = truncation.per_text(softmax(prediction.predictions), text_rows, rows)
        return metric.compute(
            predictions=probabilities.argmax(axis=-1),
            references=references,
            probabilities=probabilities,
            labels=splits.labels,
            metrics=job.metrics,
        )

    weights = job.class_weights()
    if job.multi_label:
        loss = multi_label_loss(weights)
    else:
        loss = weighted_loss(weights) if weights is not None else None
    callbacks = zoo_callbacks(job, progress)
    sparse = settings.train_embeddings == "sparse" and job.method == "full"
    extra = {}
    if sparse:  # AdamW, with the lazy step for the embedding's rows (preflight: adamw alone)
        from transformers import Trainer

        if args.world_size > 1:
            raise ZooError(
                "training.train_embeddings = 'sparse' trains in one process: its gradient "
                "clipping and row-wise AdamW step are not distributed",
                hint="run without --nproc, or set train_embeddings = false (or true)",
            )
        from zoo.engine.sparse_embeddings import LazyAdamW

        _, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
        extra["optimizer_cls_and_kwargs"] = (LazyAdamW, kwargs)
    trainer = _trainer_class(sparse=sparse)(
        model=model,
        args=args,
        data_collator=DataCollatorWithPadding(tokenizer),
        train_dataset=datasets.train,
        eval_dataset=datasets.validation,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        compute_loss_func=loss,
        callbacks=callbacks,
        **extra,
    )
    # With tqdm off, the Trainer prints every log line to stdout; zoo keeps stdout for results.
    trainer.remove_callback(PrinterCallback)
    return trainer


@attrs.frozen
class Trained:
    validation: Any
    test: Any
    train_seconds: float
    peak: devices.PeakMemory
    thresholds: tuple[float, ...] | None = None


def train_and_evaluate(
    job: TrainJob, trainer: Any, datasets: TokenizedSplits, device: Any, progress: Progress
) -> Trained:
    """Train (from the checkpoint to resume from, if any), then score the best checkpoint on
    the validation and test splits; the peak memory covers both."""
    splits = job.splits
    with devices.PeakMemory(device) as peak:
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(job.resume_from) if job.resume_from else None)
        train_seconds = time.perf_counter() - started
        progress.message("evaluating the best checkpoint")
        # compute_metrics scores the validation split during training; these final scores come
        # from score_split, text by text, for each split.
        trainer.compute_metrics = None
        validation = _probabilities(trainer, datasets, "validation", job)
        test = _probabilities(trainer, datasets, "test", job) if splits.test else None
    # Multi-label: each label's threshold, tuned on the validation split (training.threshold).
    thresholds = job.thresholds(validation)

    def scored(split: str, probabilities: np.ndarray):
        rows = getattr(splits, split)
        return score_split(
            probabilities,
            rows.labels,
            splits.labels,
            job.metrics,
            separator=splits.separator,
            thresholds=thresholds,
        )

    return Trained(
        validation=scored("validation", validation),
        test=scored("test", test) if test is not None else NOT_SCORED,
        train_seconds=train_seconds,
        peak=peak,
        thresholds=thresholds,
    )


def save_model(
    trainer: Any,
    model: Any,
    run_dir: Path,
    checkpoints: Path,
    beside: Mapping[str, str] | None = None,
) -> None:
    """The best model into run_dir/model (with the text files `beside` names), then the
    checkpoints removed.

    Saved beside, then renamed into place: a full disk leaves no half-written model behind
    (and the best checkpoint stays in checkpoints/ until the save has succeeded).
    """
    saving = run_dir / ".model.partial"
    if is_main():
        shutil.rmtree(saving, ignore_errors=True)  # what an earlier failed save left
    trainer.save_model(str(saving))  # on the main process only, under torchrun
    if is_main():
        if is_adapter(model):
            # Beside the adapter and head: the labels and pad token that reloading needs.
            model.base_model.model.config.save_pretrained(saving)
        for name, text in (beside or {}).items():  # in place with the model, never after it
            (saving / name).write_text(text, encoding="utf-8")
        saving.replace(run_dir / MODEL)
    if is_main():
        shutil.rmtree(checkpoints, ignore_errors=True)


def _probabilities(trainer: Any, datasets: TokenizedSplits, split: str, job: TrainJob):
    """One split's probabilities by text (with chunks, the mean of each text's windows):
    a softmax over the labels, or multi-label each label's sigmoid."""
    rows: LabelledTexts = getattr(job.splits, split)
    logits = trainer.predict(getattr(datasets, split)).predictions
    probabilities = sigmoid(logits) if job.multi_label else softmax(logits)
    return truncation.per_text(probabilities, datasets.text_rows[split], len(rows))
