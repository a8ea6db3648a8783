"""Benchmark 2: the original project's input pipeline against zoo's, one training epoch each.

original: `datasets.map` in 1,000-row batches with padding="longest" (every row padded to the
          longest row of its map batch), random batches;
zoo:      no padding at tokenization, DataCollatorWithPadding (each batch padded to its own
          longest row) and length-grouped batches (train_sampling_strategy="group_by_length").

    python benchmarks/input_pipeline.py [ROWS] [--gpu] [--bf16] [--model-dir DIR]

MiniLM, NSMC rows from ../shared/data, max length 200, batch 16, the same seed for both; on the
CPU in fp32 unless `--gpu` / `--bf16` (bf16 mixed precision) say otherwise. `--model-dir`: this
model directory instead of MiniLM's wheel (e.g. benchmarks/gpu_check.py's random-init stand-in).
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path

from common import nsmc_slice


def run(mode: str, texts: list[str], labels: list[int], model_dir: Path, *, gpu: bool = False,
        bf16: bool = False) -> dict:  # fmt: skip
    import transformers
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    transformers.logging.set_verbosity_error()
    transformers.set_seed(42)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    original = mode == "original"

    def tokenize(batch):
        padding = "longest" if original else False
        return tokenizer(batch["text"], truncation=True, max_length=200, padding=padding)

    table = Dataset.from_dict({"text": texts, "label": labels})
    table = table.map(tokenize, batched=True, batch_size=1000, remove_columns=["text"])
    inner = default_data_collator if original else DataCollatorWithPadding(tokenizer)
    counts = {"padded": 0, "real": 0}

    def collate(features):
        batch = inner(features)
        counts["padded"] += int(batch["input_ids"].numel())
        counts["real"] += int(batch["attention_mask"].sum())
        return batch

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, seed=42, num_train_epochs=1, learning_rate=1e-4,
            per_device_train_batch_size=16, save_strategy="no", eval_strategy="no",
            train_sampling_strategy="random" if original else "group_by_length",
            use_cpu=not gpu, bf16=bf16, report_to="none", disable_tqdm=True,
            logging_strategy="no",
        )  # fmt: skip
        trainer = Trainer(model=model, args=args, train_dataset=table, data_collator=collate)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    return {**counts, "seconds": seconds}


def main(rows: int, *, gpu: bool = False, bf16: bool = False, model: Path | None = None) -> None:
    if model is None:
        from zoo_plugins.minilm import model_dir

        model = model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        train, _test = nsmc_slice(Path(tmp), rows, 1)
        with train.open(encoding="utf-8", newline="") as f:
            data = list(csv.DictReader(f, delimiter="\t"))
    texts = [row["document"] for row in data]
    labels = [int(row["label"]) for row in data]
    results = {
        mode: run(mode, texts, labels, model, gpu=gpu, bf16=bf16) for mode in ("original", "zoo")
    }
    where = f"{'GPU' if gpu else 'CPU'}, {'bf16 mixed precision' if bf16 else 'fp32'}"
    print(f"{rows} NSMC training rows, 1 epoch, batch 16, max length 200 ({where})")
    print(
        "| pipeline | padded tokens | real tokens | epoch (s) | padded tokens/s | real tokens/s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for mode, r in results.items():
        print(
            f"| {mode} | {r['padded']:,} | {r['real']:,} | {r['seconds']:.1f} "
            f"| {r['padded'] / r['seconds']:,.0f} | {r['real'] / r['seconds']:,.0f} |"
        )
    speedup = results["original"]["seconds"] / results["zoo"]["seconds"]
    print(f"\nzoo's pipeline is {speedup:.2f}x faster per epoch")


if __name__ == "__main__":
    flags = {"--gpu", "--bf16"}
    args = sys.argv[1:]
    model = Path(args.pop(args.index("--model-dir") + 1)) if "--model-dir" in args else None
    args = [a for a in args if a != "--model-dir"]
    numbers = [a for a in args if a not in flags]
    main(int(numbers[0]) if numbers else 1000, gpu="--gpu" in args, bf16="--bf16" in args,
         model=model)  # fmt: skip
