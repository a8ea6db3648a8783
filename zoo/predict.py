"""Predicting with a finished run: a submission file in the input's row order."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import read_texts
from zoo.errors import ZooError
from zoo.files import write_text
from zoo.registry import Registry


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ZooError(
            f"{path.parent} is not a finished zoo run directory ({path.name}: {exc})",
            hint="give a directory that 'zoo run' made, e.g. runs/NAME/MODEL-DATE",
        ) from None


def transformer_probabilities(
    model_dir: Path, texts: list[str], *, max_length: int, batch_size: int, progress: Any
) -> np.ndarray:
    """Class probabilities from a saved transformer (a full model or LoRA adapters)."""
    import torch

    from zoo.engine.loading import load_trained
    from zoo.engine.train import quiet_libraries

    quiet_libraries()
    model, tokenizer = load_trained(model_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    rows = []
    progress.start("predicting", len(texts))
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with torch.no_grad():
            logits = model(**batch).logits.float()
        rows.append(torch.softmax(logits, dim=-1).cpu().numpy())
        progress.advance(len(rows[-1]))
    progress.stop()
    return np.concatenate(rows)


def predict_run(
    run_dir: Path,
    input_path: Path,
    output_path: Path,
    *,
    registry: Registry,
    progress: Any,
    id_column: str | None = None,
    proba: bool = False,
    overwrite: bool = False,
) -> int:
    """Write predictions for every row of `input_path`; returns the number of rows."""
    if output_path.exists() and not overwrite:
        raise ZooError(
            f"{output_path} exists already; zoo does not overwrite it",
            hint="choose another --output, or add --force to replace it",
        )
    record = _read_json(run_dir / "run.json")
    labels = [
        name
        for _, name in sorted(
            _read_json(run_dir / "labels.json")["id2label"].items(), key=lambda item: int(item[0])
        )
    ]
    recipe = tomllib.loads((run_dir / "recipe.toml").read_text(encoding="utf-8"))
    data, settings = recipe["data"], recipe["training"]
    model_dir = run_dir / "model"
    if not model_dir.is_dir():
        raise ZooError(
            f"{run_dir} holds no trained model (method {record.get('method', 'full')!r})",
            hint="zero-shot runs train nothing; predict with a run that trained a model",
        )
    texts, ids = read_texts(
        input_path,
        text_column=data.get("text_column", "text"),
        id_column=id_column,
        encoding=data.get("encoding", "auto"),
        setting="--input",
    )
    spec = registry.models.get(record.get("registered_model", ""))
    if spec is not None and spec.spec.engine is not None:
        probabilities = np.asarray(spec.spec.engine.predict(model_dir, texts))
    else:
        probabilities = transformer_probabilities(
            model_dir,
            texts,
            max_length=settings["max_length"],
            batch_size=settings.get("eval_batch_size") or 2 * settings["batch_size"],
            progress=progress,
        )
    write_text(output_path, _submission(ids, id_column, data, labels, probabilities, proba))
    return len(texts)


def _submission(ids, id_column, data, labels, probabilities, proba: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    label_column = data.get("label_column", "label")
    header = ([id_column] if id_column else []) + [label_column]
    header += [f"proba_{label}" for label in labels] if proba else []
    writer.writerow(header)
    for i, row in enumerate(probabilities):
        cells = ([ids[i]] if ids is not None else []) + [labels[int(row.argmax())]]
        cells += [f"{p:.6f}" for p in row] if proba else []
        writer.writerow(cells)
    return out.getvalue()
