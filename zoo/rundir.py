"""What a run directory holds: the file names, the run.json records, and the one reader.

`zoo run` writes a run directory; `zoo show`, `zoo report`, `zoo predict`, `zoo record` and
`zoo run --resume` read it through `read_run`, which checks what the caller needs and names
exactly what is missing or damaged. run.json is written three times in a run's life, always by
`run_record`: at the start (status "running": who the run is and what it started with, which is
what resuming must match and what a results-store record needs), and at its end ("ok", "failed",
"refused" or "interrupted").

Everything is written to a temporary file and renamed into place (zoo.files).
"""

from __future__ import annotations

import csv
import io
import json
import platform
import tomllib
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import attrs
import tomli_w

import zoo
from zoo.data import Splits
from zoo.errors import UsageError
from zoo.files import write_json, write_text
from zoo.metrics import BUILTIN_METRICS, MULTI_LABEL_METRICS, THRESHOLDS
from zoo.recipe import (
    LOGGING_KEYS,
    TRAINING_KEYS,
    ModelEntry,
    Recipe,
    TrainingConfig,
    recipe_to_dict,
)
from zoo.spec import METHODS, trains_weights
from zoo.store import FOLD_KEYS, STORE_NAME, TRIAL_KEYS, RunRecord

# The files of a run directory.
RECIPE = "recipe.toml"
RUN_JSON = "run.json"
METRICS = "metrics.json"
LABELS = "labels.json"
LOG_HISTORY = "log_history.json"
PREDICTIONS = "predictions.csv"
ERROR = "error.txt"
MODEL = "model"
CHECKPOINTS = "checkpoints"
# The prompt a zero-shot or few-shot run asked with ({text} where each row's text went).
PROMPT = "prompt.txt"
# Beside a label-words model (in MODEL): the prompt and each label's words it answers with.
LABEL_WORDS = "label_words.json"
# few-shot: the training rows its prompt shows (row, line, label, tokens kept), and why fewer.
SHOTS = "shots.json"

# Files one of which holds a saved model's weights (transformers, peft, the TF-IDF baseline).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "adapter_model.safetensors",
    "pytorch_model.bin",
    "weights.npz",
)
# The scores every finished run has (a plugin's metrics come on top, where it was installed).
SUMMARY_METRICS = tuple(sorted(m.name for m in BUILTIN_METRICS))
MULTI_LABEL_SUMMARY = tuple(sorted(m.name for m in MULTI_LABEL_METRICS))
# What a results-store record needs from run.json beyond the results (see RunIdentity).
IDENTITY_KEYS = ("recipe_name", "recipe_hash", "data_fingerprint", "model", "method", "seed")
# What run.json of an ensemble of fold models names: their run directories.
ENSEMBLE_OF = "ensemble_of"

RUN_DIR_HINT = (
    "give a run directory that 'zoo run' made: OUTPUT_DIR/RUN_NAME/MODEL-seedN-YYYYmmdd-HHMMSS"
)

Status = Literal["running", "ok", "failed", "refused", "interrupted"]
# What a command may need of a run directory besides run.json (always read):
#   recipe       recipe.toml, parsed
#   finished     status "ok"
#   metrics      metrics.json with complete scores, when the run finished (else there is none)
#   labels       labels.json
#   log_history  log_history.json
#   model        model/ with its weights
#   resumable    not finished, and a complete checkpoint to continue from
#   identity     what a results-store record needs (run.json's identity keys, a status that ended)
#   predictions  predictions.csv, each test row's label and prediction (a run with a test split)
Need = Literal[
    "recipe",
    "finished",
    "metrics",
    "labels",
    "log_history",
    "model",
    "resumable",
    "identity",
    "predictions",
]
PREDICTION_COLUMNS = ("row", "line", "text", "label", "predicted", "confidence")
# A run that read text pairs: the second text of each pair after the first.
PAIR_PREDICTION_COLUMNS = ("row", "line", "text", "pair", "label", "predicted", "confidence")


class RunDirError(UsageError):
    """A run directory that cannot serve the command: not there, damaged, or in the wrong state
    (exit code 2, as for any command-line argument that cannot be used)."""


def versions() -> dict[str, str]:
    names = ("torch", "transformers", "datasets", "evaluate", "accelerate", "scikit-learn")
    found = {"python": platform.python_version(), "zoo": zoo.__version__}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# The effective recipe


def effective_recipe_data(
    recipe: Recipe, entry: ModelEntry, settings: TrainingConfig
) -> dict[str, Any]:
    """The recipe for this one model with every setting spelled out and absolute paths, so that
    `zoo run RUN_DIR/recipe.toml` trains it again: its entry keeps every key that is not a
    training setting (those are resolved into [training])."""
    data = recipe_to_dict(recipe)
    # A trial's run trains its trial's values (in [training]), not the whole search again,
    # and trains here: where the recipe's units ran is no part of this one run.
    data.pop("search", None)
    data.pop("executor", None)
    for key in ("train", "test"):
        if data["data"].get(key):
            data["data"][key] = str(recipe.path(data["data"][key]))
    if isinstance(recipe.data.validation, str):
        data["data"]["validation"] = str(recipe.path(recipe.data.validation))
    data["run"]["output_dir"] = str(recipe.path(recipe.run.output_dir))
    data["training"] = {k: v for k, v in attrs.asdict(settings).items() if v is not None}
    model = {
        field.name: getattr(entry, field.name)
        for field in attrs.fields(ModelEntry)
        if field.name not in TRAINING_KEYS
    }
    if entry.checkpoint is not None:  # relative to the recipe, which the run directory is not
        model["checkpoint"] = str(recipe.path(entry.checkpoint))
    if entry.lora is not None:
        model["lora"] = attrs.asdict(entry.lora)
    data["models"] = [_without_none(model)]
    return _without_none(data)


def effective_recipe(recipe: Recipe, entry: ModelEntry, settings: TrainingConfig) -> str:
    return tomli_w.dumps(effective_recipe_data(recipe, entry, settings))


def _without_none(value: Any) -> Any:
    """TOML has no null: leave None out, and make tuples lists (as JSON gives them back)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# run.json


@attrs.frozen(kw_only=True)
class RunIdentity:
    """Who a run is: what a results-store record needs besides the results. Written into run.json
    at the start, so that `zoo record RUN_DIR` can record a run that the store missed."""

    recipe_name: str
    # sha256 of the whole recipe as loaded (all its models), and of the data files' bytes.
    recipe_hash: str
    data_fingerprint: str
    output_dir: str
    model: str  # the entry's label (its name, else the model)
    registered_model: str
    method: str
    seed: int
    # With cross-validation: the fold (1 to folds) and how many; an ensemble has folds alone.
    fold: int | None = None
    folds: int | None = None
    # A trial of a search: its number and the values it tried (the record's `best` is set
    # once the search has chosen).
    trial: int | None = None
    params: dict[str, Any] | None = None


def start_record(
    identity: RunIdentity,
    *,
    settings: TrainingConfig,
    started_with: Mapping[str, Any],
    checkpoints: bool,
) -> dict[str, Any]:
    """run.json as a run starts. `started_with` is what resuming must match (see
    `resume_problems`); `checkpoints`: whether the run saves Trainer checkpoints to resume
    from (a custom engine such as the TF-IDF baseline, or zero-shot and few-shot scoring,
    saves none)."""
    return run_record(
        {
            **attrs.asdict(identity),
            "status": "running",
            "started": now(),
            "settings": attrs.asdict(settings),
            "checkpoints": checkpoints,
            "started_with": dict(started_with),
        },
        "running",
    )


def run_record(start: Mapping[str, Any], status: Status, **facts: Any) -> dict[str, Any]:
    """Every run.json zoo writes: the start record, the status, and what happened; a record that
    ends a run says when ("ended", also the results store's `recorded_at`)."""
    record = {**start, "status": status}
    if status != "running":
        record["ended"] = now()
    return record | facts


def write_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    write_json(run_dir / RUN_JSON, dict(record))


def interrupted_record(run_dir: Path, start: Mapping[str, Any]) -> dict[str, Any]:
    """run.json of a run stopped by Ctrl-C or SIGTERM: how to go on, by a command that works."""
    reason = "interrupted by the user (Ctrl-C or SIGTERM)"
    why = why_not_resumable(run_dir, start)
    if why is None:
        return run_record(start, "interrupted", reason=reason, resume=resume_command(run_dir))
    return run_record(
        start,
        "interrupted",
        reason=f"{reason}; {why}, so it cannot be resumed",
        restart=restart_command(run_dir),
    )


def why_not_resumable(run_dir: Path, record: Mapping[str, Any]) -> str | None:
    if not record.get("checkpoints"):
        return "it saves no checkpoints"
    if not complete_checkpoints(run_dir):
        return "it had no checkpoint yet"
    return None


def resume_command(run_dir: Path) -> str:
    return f"zoo run --resume {run_dir}"


def restart_command(run_dir: Path) -> str:
    return f"zoo run {run_dir / RECIPE}"


def record_command(run_dirs: Collection[Path]) -> str:
    return "zoo record " + " ".join(str(path) for path in run_dirs)


# ---------------------------------------------------------------------------------------------
# Writing the results


def predictions_csv(splits: Splits, predicted: tuple[int, ...], probabilities) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # row and line point at the test file: its data row (0 = the first below the header,
    # counting rows left out) and the line where that row starts.
    test = splits.test
    assert test is not None
    writer.writerow(PREDICTION_COLUMNS if test.pairs is None else PAIR_PREDICTION_COLUMNS)
    for i, text in enumerate(test.texts):
        p = predicted[i]
        if splits.separator is None:
            named, confidence = splits.labels[p], f"{probabilities[i][p]:.6f}"
        else:  # multi-label: the labels chosen, and the least probability among them
            named = splits.separator.join(splits.labels[j] for j in p)
            confidence = f"{min(probabilities[i][j] for j in p):.6f}"
        texts = [text] if test.pairs is None else [text, test.pairs[i]]
        writer.writerow([test.rows[i], test.lines[i], *texts, test.labels[i], named, confidence])
    return out.getvalue()


def labels_json(splits: Splits, thresholds: tuple[float, ...] | None) -> dict[str, Any]:
    """labels.json: the label of each class id; multi-label, also what joins a row's labels
    and each label's decision threshold (what zoo predict needs)."""
    found: dict[str, Any] = {"id2label": dict(enumerate(splits.labels))}
    if splits.separator is not None:
        assert thresholds is not None, "a multi-label run has its thresholds"
        found["label_separator"] = splits.separator
        found["thresholds"] = list(thresholds)
    return found


def write_outputs(
    run_dir: Path,
    recipe: Recipe,
    entry: ModelEntry,
    settings: TrainingConfig,
    splits: Splits,
    result: Any,
    record: dict[str, Any],
) -> None:
    """The results of a finished run; run.json last, so that "ok" means every file is there."""
    write_text(run_dir / RECIPE, effective_recipe(recipe, entry, settings))
    write_json(run_dir / LABELS, labels_json(splits, result.thresholds))
    write_json(run_dir / METRICS, {"validation": result.validation, "test": result.test})
    write_json(run_dir / LOG_HISTORY, result.log_history)
    if result.test_predictions is not None:
        write_text(
            run_dir / PREDICTIONS,
            predictions_csv(splits, result.test_predictions, result.test_probabilities),
        )
    write_record(run_dir, record)


def complete_checkpoints(run_dir: Path) -> list[Path]:
    return [
        path
        for path in (run_dir / CHECKPOINTS).glob("checkpoint-*")
        if (path / "trainer_state.json").exists()  # written last: the checkpoint is whole
        and path.name.rsplit("-", 1)[1].isdigit()
    ]


def last_checkpoint(run_dir: Path) -> Path:
    """The newest complete Trainer checkpoint of an interrupted run directory."""
    complete = complete_checkpoints(run_dir)
    if not complete:
        raise RunDirError(
            f"{run_dir} has no checkpoint to resume from (it stopped before its first one)",
            hint=f"start it again: {restart_command(run_dir)}",
        )
    return max(complete, key=lambda path: int(path.name.rsplit("-", 1)[1]))


# ---------------------------------------------------------------------------------------------
# Reading


@attrs.frozen(kw_only=True)
class PredictionsCsv:
    """predictions.csv: each test row in file order, where it is in the test file, its label
    and the run's prediction (label names)."""

    rows: tuple[int, ...]
    lines: tuple[int, ...]
    labels: tuple[str, ...]
    predicted: tuple[str, ...]


@attrs.frozen(kw_only=True)
class RunDir:
    """A run directory as `read_run` found it; the parts the caller did not need are None."""

    path: Path
    record: dict[str, Any]
    recipe: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    labels: tuple[str, ...] | None = None
    # Multi-label runs (read with "labels"): what joins a row's labels, and each label's
    # decision threshold in label order; None for single-label ones.
    label_separator: str | None = None
    thresholds: tuple[float, ...] | None = None
    log_history: list[dict[str, Any]] | None = None
    predictions: PredictionsCsv | None = None

    @property
    def status(self) -> str:
        return str(self.record.get("status"))

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL


def read_run(run_dir: Path | str, *, needs: Collection[Need] = ()) -> RunDir:
    """Read a run directory, checking run.json and what `needs` names; raise `RunDirError`
    naming the first thing that is missing or damaged."""
    unknown = set(needs) - set(Need.__args__)  # type: ignore[attr-defined]
    assert not unknown, f"unknown needs {unknown}"
    path = Path(run_dir)
    if not path.exists():
        raise RunDirError(f"run directory {path} does not exist", hint=RUN_DIR_HINT)
    if not path.is_dir():
        raise RunDirError(f"{path} is a file, not a run directory", hint=RUN_DIR_HINT)
    if not (path / RUN_JSON).exists():
        raise RunDirError(
            f"{path} is not a zoo run directory: it has no {RUN_JSON}", hint=RUN_DIR_HINT
        )
    record = _json_object(path, RUN_JSON)
    parts: dict[str, Any] = {}
    if "finished" in needs:
        _check_finished(path, record)
    if "resumable" in needs:
        _check_resumable(path, record)
    if "identity" in needs:
        _check_identity(path, record)
    if "recipe" in needs:
        parts["recipe"] = _recipe(path)
    finished = record.get("status") == "ok"
    if ("metrics" in needs or "identity" in needs) and finished:
        parts["metrics"] = _metrics(path, record)
    if "labels" in needs:
        parts["labels"], parts["label_separator"], parts["thresholds"] = _labels(path)
    if "log_history" in needs:
        parts["log_history"] = _log_history(path)
    if "model" in needs:
        _check_model(path, record)
    if "predictions" in needs:
        parts["predictions"] = _predictions(path)
    return RunDir(path=path, record=record, **parts)


def _restore_hint(path: Path) -> str:
    return (
        "zoo writes this itself; restore it from a copy of the run directory, or train the run "
        f"again with {restart_command(path)}"
    )


def _damaged(path: Path, name: str, what: str) -> RunDirError:
    return RunDirError(f"{path / name} is damaged: {what}", hint=_restore_hint(path))


def _text(path: Path, name: str) -> str:
    raw = (path / name).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        what = f"not UTF-8 (byte 0x{raw[exc.start]:02x} on line {line})"
        raise _damaged(path, name, what) from None


def _kind(value: Any) -> str:
    names = {list: "a list", str: "a string", int: "a number", float: "a number", dict: "an object"}
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _json(path: Path, name: str, *, missing: str) -> Any:
    if not (path / name).is_file():
        raise RunDirError(f"{path / name} is missing{missing}", hint=_restore_hint(path))
    try:
        return json.loads(_text(path, name))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise _damaged(path, name, f"not JSON ({where}: {exc.msg})") from None


def _json_object(path: Path, name: str, *, missing: str = "") -> dict[str, Any]:
    value = _json(path, name, missing=missing)
    if not isinstance(value, dict):
        raise _damaged(path, name, f"{_kind(value)}, not a JSON object")
    return value


def _check_finished(path: Path, record: dict[str, Any]) -> None:
    status = record.get("status")
    if status == "ok":
        return
    reason = f": {record['reason']}" if record.get("reason") else ""
    if status == "running":
        hint = (
            "it is still training, or its process was killed; if it was killed, continue it "
            f"with {resume_command(path)}"
        )
    elif record.get("resume"):
        hint = f"continue it with {record['resume']}"
    elif (path / ERROR).exists():
        hint = f"see {path / ERROR}; train it again with {restart_command(path)}"
    else:
        hint = f"train it again with {restart_command(path)}"
    raise RunDirError(
        f"{path} holds a run that did not finish (status {status!r}{reason}): it has no results",
        hint=hint,
    )


def _check_resumable(path: Path, record: dict[str, Any]) -> None:
    if record.get("status") == "ok":
        raise RunDirError(
            f"{path} holds a finished run (status 'ok'): there is nothing to resume",
            hint=f"'zoo show {path}' shows its results; {restart_command(path)} trains it again "
            "in a new run directory",
        )
    if record.get("checkpoints") is False:
        raise RunDirError(
            f"{path} cannot be resumed: {record.get('model')!r} (method "
            f"{record.get('method')!r}) saves no checkpoints",
            hint=f"start it again: {restart_command(path)}",
        )
    last_checkpoint(path)


def _check_identity(path: Path, record: dict[str, Any]) -> None:
    missing = [key for key in IDENTITY_KEYS if key not in record]
    if missing:
        raise RunDirError(
            f"{path / RUN_JSON} lacks what a results-store record needs "
            f"({', '.join(missing)}): an older zoo made it",
            hint=f"train it again with {restart_command(path)} to have it in the store",
        )
    wrong = [
        key
        for key in IDENTITY_KEYS
        if type(record[key]) is not (int if key == "seed" else str)  # bool is not an int here
    ]
    if wrong:
        key = wrong[0]
        expected = "an integer" if key == "seed" else "a string"
        raise _damaged(path, RUN_JSON, f"{key} is {_kind(record[key])}, not {expected}")
    if record["method"] not in METHODS:
        raise _damaged(path, RUN_JSON, f"method {record['method']!r} is none of zoo's")
    for key in FOLD_KEYS:
        value = record.get(key)
        if value is not None and (type(value) is not int or value < 1):
            raise _damaged(path, RUN_JSON, f"{key} is {_kind(value)}, not a positive integer")
    if not isinstance(record.get("settings", {}), dict):
        raise _damaged(path, RUN_JSON, f"settings is {_kind(record['settings'])}, not an object")
    trial, params, best = (record.get(key) for key in TRIAL_KEYS)
    if trial is not None and (type(trial) is not int or trial < 1):
        raise _damaged(path, RUN_JSON, f"trial is {_kind(trial)}, not a positive integer")
    if params is not None and not isinstance(params, dict):
        raise _damaged(path, RUN_JSON, f"params is {_kind(params)}, not an object")
    if best is not None and type(best) is not bool:
        raise _damaged(path, RUN_JSON, f"best is {_kind(best)}, not true or false")
    if record.get("status") not in ("ok", "failed", "refused", "interrupted"):
        raise RunDirError(
            f"{path} holds a run that has not ended (status {record.get('status')!r}): there "
            "is nothing to record yet",
            hint="it is still training, or its process was killed; if it was killed, continue "
            f"it with {resume_command(path)} (that records it)",
        )


def _recipe(path: Path) -> dict[str, Any]:
    if not (path / RECIPE).is_file():
        raise RunDirError(
            f"{path / RECIPE} is missing",
            hint="zoo run writes it as the run starts; restore it from a copy of the run directory",
        )
    try:
        return tomllib.loads(_text(path, RECIPE))
    except tomllib.TOMLDecodeError as exc:
        raise _damaged(path, RECIPE, f"not TOML ({exc})") from None


def _split_problem(split: str, report: Any) -> str | None:
    """What is wrong with one split's scores in metrics.json, or None."""
    if not isinstance(report, dict):
        return f"the {split} scores are {_kind(report)}, not an object"
    multi_label = THRESHOLDS in report  # a multi-label split: its thresholds, no confusion matrix
    for key in MULTI_LABEL_SUMMARY if multi_label else SUMMARY_METRICS:
        value = report.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"the {split} scores have no {key}"
    if not isinstance(report.get("per_class"), dict):
        return f"the {split} scores have no per_class table"
    if multi_label:
        if not isinstance(report[THRESHOLDS], dict) or set(report[THRESHOLDS]) != set(
            report["per_class"]
        ):
            return f"the {split} thresholds and per_class table name different labels"
        return None
    matrix = report.get("confusion_matrix")
    try:
        labels, rows = matrix["labels"], matrix["matrix"]
        square = len(rows) == len(labels) and all(len(row) == len(labels) for row in rows)
    except (KeyError, TypeError):
        return f"the {split} scores have no confusion_matrix with labels and matrix"
    if not square:
        return f"the {split} confusion matrix is not {len(labels)} x {len(labels)}"
    if set(labels) != set(report["per_class"]):
        return f"the {split} confusion matrix and per_class table name different labels"
    return None


def _metrics(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    metrics = _json_object(path, METRICS, missing=", though run.json says the run finished")
    if ENSEMBLE_OF in record:  # fold models averaged: test scores only, no validation split
        if not metrics.get("test"):
            raise _damaged(path, METRICS, "the test scores of the ensemble are missing")
    elif not metrics.get("validation"):
        raise _damaged(path, METRICS, "the validation scores are missing")
    for split in ("validation", "test"):
        if metrics.get(split) is not None:
            problem = _split_problem(split, metrics[split])
            if problem:
                raise _damaged(path, METRICS, problem)
    return metrics


def _labels(path: Path) -> tuple[tuple[str, ...], str | None, tuple[float, ...] | None]:
    """labels.json: the label names in id order, and for a multi-label run its separator and
    each label's threshold (a probability between 0 and 1), all checked."""
    data = _json_object(path, LABELS)
    id2label = data.get("id2label")
    try:
        names = tuple(id2label[str(i)] for i in range(len(id2label)))  # type: ignore[arg-type]
        ok = (
            bool(names) and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)
        )
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise _damaged(path, LABELS, "no id2label map from 0, 1, ... to distinct label names")
    if "label_separator" not in data and "thresholds" not in data:
        return names, None, None
    separator, thresholds = data.get("label_separator"), data.get("thresholds")
    if not isinstance(separator, str) or not separator:
        raise _damaged(path, LABELS, f"label_separator is {separator!r}, not a separator")
    if (
        not isinstance(thresholds, list)
        or len(thresholds) != len(names)
        or not all(type(t) in (int, float) and 0 <= t <= 1 for t in thresholds)
    ):
        what = f"thresholds are not {len(names)} probabilities, one per label: {thresholds!r}"
        raise _damaged(path, LABELS, what)
    return names, separator, tuple(float(t) for t in thresholds)


def _log_history(path: Path) -> list[dict[str, Any]]:
    history = _json(path, LOG_HISTORY, missing="")
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise _damaged(path, LOG_HISTORY, "not a list of log entries")
    return history


def _predictions(path: Path) -> PredictionsCsv:
    if not (path / PREDICTIONS).is_file():
        raise RunDirError(
            f"{path / PREDICTIONS} is missing: the run has no test predictions (a recipe "
            "without a test file, or an older zoo)",
            hint=_restore_hint(path),
        )
    reader = csv.reader(io.StringIO(_text(path, PREDICTIONS), newline=""))
    header = tuple(next(reader, ()))
    if header not in (PREDICTION_COLUMNS, PAIR_PREDICTION_COLUMNS):
        what = f"line 1 is not the header {','.join(PREDICTION_COLUMNS)}"
        raise _damaged(path, PREDICTIONS, what)
    columns: list[list[Any]] = [[], [], [], []]
    for fields in reader:
        where = f"line {reader.line_num}"
        if len(fields) != len(header):
            what = f"{where} has {len(fields)} fields, not {len(header)}"
            raise _damaged(path, PREDICTIONS, what)
        (row, line), (label, predicted, confidence) = fields[:2], fields[-3:]
        try:
            numbers = int(row), int(line)
            float(confidence)
        except ValueError:
            what = f"{where}: row, line and confidence must be numbers, got {row!r}, {line!r}, "
            raise _damaged(path, PREDICTIONS, what + repr(confidence)) from None
        for column, value in zip(columns, (*numbers, label, predicted), strict=True):
            column.append(value)
    rows, lines, labels, predicted_labels = (tuple(c) for c in columns)
    return PredictionsCsv(rows=rows, lines=lines, labels=labels, predicted=predicted_labels)


def _check_model(path: Path, record: dict[str, Any]) -> None:
    model_dir = path / MODEL
    if ENSEMBLE_OF in record:
        raise RunDirError(
            f"{path} holds the ensemble of {len(record[ENSEMBLE_OF])} fold models, not a model "
            "of its own",
            hint="predict with the run directory of one fold (run.json's ensemble_of lists them)",
        )
    if not trains_weights(record.get("method") or "full"):
        raise RunDirError(
            f"{path} holds no trained model: a {record['method']} run trains and saves nothing",
            hint="predict with a run that trained a model (method full, lora or qlora)",
        )
    if not model_dir.is_dir():
        raise RunDirError(
            f"{model_dir} is missing: the run's trained model is not there",
            hint=_restore_hint(path),
        )
    if not any((model_dir / name).is_file() for name in WEIGHT_FILES):
        raise RunDirError(
            f"{model_dir} holds no weights (none of {', '.join(WEIGHT_FILES)})",
            hint=_restore_hint(path),
        )


# ---------------------------------------------------------------------------------------------
# Resuming


def resume_problems(started_with: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between what a run started with and what resuming it would use now: each
    recipe setting (from what to what), each data file that changed, the label list."""
    problems = []
    then_recipe, now_recipe = _flat(started_with.get("recipe", {})), _flat(current["recipe"])
    for key in sorted(set(then_recipe) | set(now_recipe)):
        if key.startswith("training.") and key.removeprefix("training.") in LOGGING_KEYS:
            # Where a run logs to, not what it learns: resuming may change it.
            continue
        before, after = then_recipe.get(key, "(not set)"), now_recipe.get(key, "(not set)")
        if before != after:
            problems.append(f"{key}: {_show(before)} when the run started, {_show(after)} now")
    # A file named differently shows as a recipe setting above; here: the same file, new bytes.
    then_files, now_files = started_with.get("data_files", {}), current["data_files"]
    for key in sorted(set(then_files) & set(now_files)):
        before, after = then_files[key], now_files[key]
        if before["path"] == after["path"] and before["sha256"] != after["sha256"]:
            problems.append(
                f"{key}: {after['path']} changed since the run started (sha256 "
                f"{before['sha256'][:12]} then, {after['sha256'][:12]} now)"
            )
    then_labels, now_labels = list(started_with.get("labels", [])), list(current["labels"])
    if then_labels != now_labels:
        problems.append(f"labels: {then_labels} when the run started, {now_labels} now")
    return problems


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= _flat(value, f"{name}.")
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, item in enumerate(value):
                flat |= _flat(item, f"{name}[{i}].")
        else:
            flat[name] = value
    return flat


def _show(value: Any) -> str:
    return value if value == "(not set)" else json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# Recording


def store_record(run: RunDir) -> RunRecord:
    """The results-store record of a run directory read with needs=("identity",): what `zoo run`
    records as the run ends, and `zoo record RUN_DIR` later (the same, so it is added once)."""
    record = run.record
    return RunRecord(
        **{key: record[key] for key in IDENTITY_KEYS},
        status=record["status"],
        reason=record.get("reason"),
        settings=record.get("settings") or {},
        metrics=run.metrics or {},
        train_seconds=record.get("train_seconds"),
        peak_memory_bytes=record.get("peak_memory_bytes"),
        parameters=record.get("parameters"),
        run_dir=str(run.path.resolve()),
        recorded_at=record.get("ended") or record.get("started") or now(),
        **{key: record.get(key) for key in FOLD_KEYS},  # absent or null: no cross-validation
        **{key: record.get(key) for key in TRIAL_KEYS},  # absent or null: no search
    )


def store_path(run: RunDir) -> Path:
    """The results store a run directory belongs to: OUTPUT_DIR of OUTPUT_DIR/RUN_NAME/RUN_DIR
    (where it lies now, should the whole output directory have moved)."""
    path = run.path.resolve()
    if path.parent.name != run.record.get("recipe_name"):
        raise RunDirError(
            f"{run.path} is not inside OUTPUT_DIR/{run.record.get('recipe_name')}/, where "
            "'zoo run' put it: zoo cannot tell which results store it belongs to",
            hint="move it back under its output directory's folder for that run name",
        )
    return path.parent.parent / STORE_NAME
