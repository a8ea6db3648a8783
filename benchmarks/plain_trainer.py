"""A hand-written Hugging Face Trainer script, the way one would write it without zoo: the
baseline of benchmark 1. Same split, tokenization and TrainingArguments as zoo's engine.

    python benchmarks/plain_trainer.py MODEL_DIR TRAIN TEST OUT.json [EPOCHS LR]
    python benchmarks/plain_trainer.py MODEL_DIR TRAIN TEST OUT.json --trainer-defaults
    ... [--gpu] [--bf16]

TRAIN and TEST: .tsv (text column `document`) or .csv (`text`), with a `label` column.
The first form sets what zoo sets (batch 16, cosine, warmup 3%, weight decay 0.01, length
grouping; 1 epoch and lr 1e-4 unless given). `--trainer-defaults` is the script one writes from
the Trainer's documentation: its defaults (3 epochs, lr 5e-5, batch 8, linear decay, no warmup,
no weight decay, random batches), evaluating and keeping the best checkpoint each epoch.
`--gpu` trains on the GPU (the default: the CPU, as the CPU benchmarks ran), `--bf16` in bf16
mixed precision (as zoo's precision = "bf16").
"""

from __future__ import annotations

import csv
import json
import sys
import time

started = time.perf_counter()

import numpy as np  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch.utils.data import SequentialSampler  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

SEED, MAX_LENGTH = 42, 128


def read(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="," if path.endswith(".csv") else "\t"))
    text = "document" if "document" in rows[0] else "text"
    return [r[text].strip() for r in rows], [r["label"].strip() for r in rows]


def label_order(labels):
    """As zoo orders them: numerically when every label is an integer, else alphabetically."""
    if all(label.isdigit() for label in labels):
        return sorted(set(labels), key=int)
    return sorted(set(labels))


class SequentialEvalTrainer(Trainer):
    def _get_eval_sampler(self, eval_dataset):
        return SequentialSampler(eval_dataset)


def main(model_dir, train_path, test_path, out_path, *settings):
    gpu, bf16 = "--gpu" in settings, "--bf16" in settings
    settings = tuple(s for s in settings if s not in {"--gpu", "--bf16"})
    transformers.logging.set_verbosity_error()
    texts, labels = read(train_path)
    test_texts, test_labels = read(test_path)
    names = label_order(labels)
    ids = {n: i for i, n in enumerate(names)}
    train_x, val_x, train_y, val_y = train_test_split(
        texts, labels, test_size=0.2, random_state=SEED, stratify=labels
    )
    transformers.set_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id=ids, ignore_mismatched_sizes=True,
    )  # fmt: skip

    def dataset(x, y):
        def tokenize(batch):
            return tokenizer(batch["text"], truncation=True, max_length=MAX_LENGTH)

        table = Dataset.from_dict({"text": list(x), "label": [ids[v] for v in y]})
        return table.map(tokenize, batched=True, remove_columns=["text"])

    train, val, test = (
        dataset(train_x, train_y),
        dataset(val_x, val_y),
        dataset(test_texts, test_labels),
    )
    if settings == ("--trainer-defaults",):
        batch = 8
        steps = -(-len(train) // batch)
        chosen = dict(num_train_epochs=3, per_device_train_batch_size=batch)
    else:
        batch = 16
        steps = -(-len(train) // batch)
        epochs, lr = (int(settings[0]), float(settings[1])) if settings else (1, 1e-4)
        chosen = dict(
            num_train_epochs=epochs, learning_rate=lr, per_device_train_batch_size=batch,
            lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.01,
            train_sampling_strategy="group_by_length", logging_nan_inf_filter=False,
        )  # fmt: skip
    args = TrainingArguments(
        output_dir=f"{out_path}.checkpoints", seed=SEED, per_device_eval_batch_size=2 * batch,
        eval_strategy="steps", eval_steps=steps, save_strategy="steps", save_steps=steps,
        save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="f1_macro",
        logging_steps=max(1, steps // 4), use_cpu=not gpu, bf16=bf16, report_to="none",
        disable_tqdm=True, **chosen,
    )  # fmt: skip

    def metrics(p):
        predicted = p.predictions.argmax(-1)
        return {"f1_macro": f1_score(p.label_ids, predicted, average="macro")}

    trainer = SequentialEvalTrainer(
        model=model, args=args, train_dataset=train, eval_dataset=val,
        data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
        compute_metrics=metrics,
    )  # fmt: skip
    trainer.train()
    trainer.predict(val)  # as zoo does: report the restored best model on validation too
    predicted = np.asarray(trainer.predict(test).predictions).argmax(-1)
    trainer.save_model(f"{out_path}.model")
    reference = [ids[v] for v in test_labels]
    result = {
        "accuracy": float(accuracy_score(reference, predicted)),
        "f1_macro": float(f1_score(reference, predicted, average="macro")),
        "f1_weighted": float(f1_score(reference, predicted, average="weighted")),
        "wall_seconds": time.perf_counter() - started,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:])
