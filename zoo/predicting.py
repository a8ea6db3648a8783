"""Predicting with a finished run: a submission file in the input's row order."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import attrs
import numpy as np

from zoo.data import read_input
from zoo.errors import UsageError
from zoo.files import check_output, write_text
from zoo.multilabel import decide, joined
from zoo.recipe import Encoding
from zoo.registry import Registry
from zoo.rundir import RECIPE, RunDir, RunDirError, read_run
from zoo.spec import DEFAULT_TRUNCATION, TRUNCATIONS
from zoo.transforms import TransformRegistry, builtin_transforms

ENCODINGS: tuple[str, ...] = get_args(Encoding)


def predict_run(
    run_dir: Path,
    input_path: Path,
    output_path: Path,
    *,
    registry: Registry,
    progress: Any,
    transforms: TransformRegistry | None = None,
    id_column: str | None = None,
    text_column: str | Sequence[str] | None = None,
    encoding: str | None = None,
    proba: bool = False,
    overwrite: bool = False,
) -> int:
    """Write predictions for every row of `input_path`; returns the number of rows.

    `text_column` (one column, or two for a run that read text pairs) and `encoding` default
    to the run's recipe, whose data.preprocess is applied
    to every text as in training (from `transforms`, the registered text transforms; zoo's own
    when not given). Everything is checked before the model loads, and nothing is written
    unless every row was predicted.
    """
    check_output(output_path, overwrite=overwrite)
    run = read_run(run_dir, needs=PREDICT_NEEDS)
    data = _section(run, "data")
    label_column = _setting(run, data, "data", "label_column")
    if id_column is not None and id_column == label_column:
        raise UsageError(
            f"--id-column {id_column!r} is the run's label column: the output would have two "
            f"columns named {id_column!r}",
            hint="copy another column of the input, or leave --id-column out",
        )
    if encoding is not None and encoding not in ENCODINGS:
        raise UsageError(
            f"--encoding {encoding!r} is none of zoo's encodings",
            hint=f"use one of {', '.join(ENCODINGS)}",
        )
    # The same reading as training data (its hints name zoo predict's options).
    read = read_input(
        input_path,
        text_column=_text_columns(run, data, text_column),
        id_column=id_column,
        encoding=encoding or _setting(run, data, "data", "encoding"),
        setting="--input",
    )
    for notice in read.notices:
        print(f"{notice}", file=sys.stderr)
    predicted = predict_texts(
        run, read.texts, read.pairs, registry=registry, progress=progress, transforms=transforms
    )
    ids = None if read.ids is None else list(read.ids)
    write_text(output_path, _submission(ids, id_column, label_column, predicted, proba))
    return len(read.texts)


@attrs.frozen(kw_only=True)
class Predicted:
    """A run's predictions for some texts, in their order."""

    labels: tuple[str, ...]  # the run's labels, the columns of `probabilities`
    predicted: tuple[str, ...]  # each text's label (a multi-label run: its labels, joined)
    probabilities: Any  # texts x labels (numpy)


# What `predict_texts` needs of a run directory.
PREDICT_NEEDS = ("finished", "recipe", "labels", "model")


def predict_texts(
    run: RunDir,
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    registry: Registry,
    progress: Any,
    transforms: TransformRegistry | None = None,
) -> Predicted:
    """Classify `texts` (with `pairs`, their second texts, for a run that read text pairs)
    with the model of `run` (read with `PREDICT_NEEDS`), preprocessed and cut as training
    did."""
    data = _section(run, "data")
    names = data.get("preprocess") or []
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise RunDirError(
            f"{run.path / RECIPE}: data.preprocess is {names!r}, not a list of text transforms",
            hint="zoo run writes it as the recipe had it; restore it from a copy of the run "
            "directory",
        )
    where = f"{run.path / RECIPE}: data.preprocess"
    preprocess = (transforms or builtin_transforms()).pipeline(names, where=where)
    texts = [preprocess(text) if text else text for text in texts]
    pairs = None if pairs is None else [preprocess(t) if t else t for t in pairs]
    spec = registry.models.get(run.record.get("registered_model", ""))
    if spec is not None and spec.spec.engine is not None:
        inputs = texts if pairs is None else list(zip(texts, pairs, strict=True))
        probabilities = np.asarray(spec.spec.engine.predict(run.model_dir, inputs))
    else:
        training = _section(run, "training")
        batch_size = training.get("eval_batch_size") or 2 * _setting(
            run, training, "training", "batch_size"
        )
        from zoo.engine.inference import transformer_probabilities  # torch: only when needed

        strategy, stride = _cut(run, training)
        probabilities = transformer_probabilities(
            run.model_dir,
            texts,
            max_length=_setting(run, training, "training", "max_length"),
            truncation=strategy,
            chunk_stride=stride,
            batch_size=batch_size,
            progress=progress,
            pairs=pairs,
            multi_label=run.label_separator is not None,
            labels=run.labels,
            label_words=_label_words(run),
        )
    labels = run.labels
    assert labels is not None
    if run.label_separator is not None:  # multi-label: each label that reaches its threshold
        assert run.thresholds is not None
        decided = decide(probabilities, run.thresholds)
        named = tuple(joined(row, labels, run.label_separator) for row in decided)
    else:
        named = tuple(labels[int(row.argmax())] for row in probabilities)
    return Predicted(labels=labels, predicted=named, probabilities=probabilities)


def _label_words(run: RunDir) -> bool | None:
    """Whether run.json says the run trained label words (None: a run from before zoo wrote
    its head, which trained a classification head)."""
    head = run.record.get("head")
    return None if head is None else head == "label-words"


def _section(run: RunDir, name: str) -> dict[str, Any]:
    section = (run.recipe or {}).get(name)
    if not isinstance(section, dict):
        raise RunDirError(
            f"{run.path / RECIPE} has no [{name}] section",
            hint="zoo run writes every setting into it; restore it from a copy of the run "
            "directory",
        )
    return section


def _text_columns(
    run: RunDir, data: dict[str, Any], given: str | Sequence[str] | None
) -> str | tuple[str, str]:
    """The input's text column (or the two of a text pair): as given, else as the run read
    its training data; a run that read pairs needs two, one that read single texts one."""
    recorded = _setting(run, data, "data", "text_column")
    pair = (
        isinstance(recorded, list)
        and len(recorded) == 2
        and all(isinstance(c, str) for c in recorded)
    )
    if not (isinstance(recorded, str) or pair):
        raise RunDirError(
            f"{run.path / RECIPE}: data.text_column is {recorded!r}, not a column name or the "
            "two of a text pair",
            hint="zoo run writes it as the recipe had it; restore it from a copy of the run "
            "directory",
        )
    if given is None:
        return (recorded[0], recorded[1]) if pair else recorded
    names = [given] if isinstance(given, str) else list(given)
    if len(names) != (2 if pair else 1):
        what = f"text pairs ({', '.join(recorded)})" if pair else "one text a row"
        raise UsageError(
            f"--text-column names {len(names)} {'column' if len(names) == 1 else 'columns'}, "
            f"but the run read {what}",
            hint=f"give --text-column {'the two columns of each pair' if pair else 'one column'}",
        )
    return (names[0], names[1]) if pair else names[0]


def _cut(run: RunDir, training: dict[str, Any]) -> tuple[str, int | None]:
    """How training cut the texts (training.truncation and chunk_stride), checked: a damaged
    value would cut them another way."""
    strategy = training.get("truncation", DEFAULT_TRUNCATION)
    stride = training.get("chunk_stride")
    wrong = None
    if strategy not in TRUNCATIONS:
        wrong = f"training.truncation is {strategy!r}, none of {', '.join(TRUNCATIONS)}"
    elif stride is not None and (type(stride) is not int or stride < 0):
        wrong = f"training.chunk_stride is {stride!r}, not a number of tokens"
    if wrong:
        raise RunDirError(
            f"{run.path / RECIPE}: {wrong}",
            hint="zoo run writes it as training used it; restore it from a copy of the run "
            "directory",
        )
    return strategy, stride


def _setting(run: RunDir, section: dict[str, Any], name: str, key: str) -> Any:
    if key not in section:
        raise RunDirError(
            f"{run.path / RECIPE} has no {name}.{key}",
            hint="zoo run writes every setting into it; restore it from a copy of the run "
            "directory",
        )
    return section[key]


def _submission(ids, id_column, label_column, predicted: Predicted, proba: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ([id_column] if id_column else []) + [label_column]
    header += [f"proba_{label}" for label in predicted.labels] if proba else []
    writer.writerow(header)
    for i, row in enumerate(predicted.probabilities):
        cells = ([ids[i]] if ids is not None else []) + [predicted.predicted[i]]
        cells += [f"{p:.6f}" for p in row] if proba else []
        writer.writerow(cells)
    return out.getvalue()
