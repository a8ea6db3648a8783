"""The engine end to end on a tiny random-init BERT: a few training steps on a CPU."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from tiny_models import DEMO_DATA, read_rows

import zoo
from zoo.errors import ZooError
from zoo.plugins import get_plugin_manager
from zoo.recipe import load_recipe
from zoo.registry import collect_models
from zoo.runner import run_recipe


class SilentProgress:
    def __init__(self) -> None:
        self.steps = 0
        self.messages: list[str] = []

    def start(self, description: str, total: int) -> None:
        self.total = total

    def advance(self, steps: int = 1) -> None:
        self.steps += steps

    def message(self, text: str) -> None:
        self.messages.append(text)

    def stop(self) -> None:
        pass


@pytest.fixture
def data_slice(tmp_path) -> Path:
    """120 training rows and 40 test rows of the demo data, every class present."""
    for name, count in (("train", 120), ("test", 40)):
        rows = read_rows(DEMO_DATA / f"{name}.csv")
        by_label: dict[str, list] = {}
        for row in rows:
            by_label.setdefault(row["label"], []).append(row)
        picked = [r for group in by_label.values() for r in group[:3]]  # rare classes first
        picked += [r for r in rows if r not in picked][: count - len(picked)]
        with (tmp_path / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "label"])
            writer.writeheader()
            writer.writerows(picked)
    return tmp_path


@pytest.fixture
def keyword_data(tmp_path) -> Path:
    """Texts of very different lengths whose label is told by their syllable: a tiny model
    learns it in a few dozen steps, so its predictions differ from row to row."""
    import random

    rng = random.Random(3)
    for name, count in (("train", 150), ("test", 60)):
        with (tmp_path / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            for i in range(count):
                label, syllable = [("a", "가"), ("b", "나"), ("c", "다")][i % 3]
                writer.writerow(
                    [
                        " ".join(syllable * rng.randint(1, 4) for _ in range(rng.randint(1, 15))),
                        label,
                    ]
                )
    return tmp_path


def make_registry(tiny_bert: Path, *, broken: bool = False, loader=None):
    class TinyPlugin:
        @zoo.hookimpl
        def register_models(self, register):
            register(
                zoo.ModelSpec(
                    name="tiny-bert",
                    description="2-layer random BERT",
                    source=zoo.LocalSource(path=tiny_bert),
                    family="bert",
                    defaults={"learning_rate": 1e-3},
                )
            )
            if broken:

                def fail(_request):
                    raise OSError("disk on fire")

                register(
                    zoo.ModelSpec(
                        name="broken",
                        description="its loader fails",
                        source=zoo.LocalSource(path=tiny_bert),
                        family="bert",
                        loader=loader or fail,
                    )
                )

    pm = get_plugin_manager(entry_points=False, builtins=False)
    pm.register(TinyPlugin(), name="tiny")
    return collect_models(pm)


def write_recipe(directory: Path, models: str, **training) -> Path:
    settings = {"max_steps": 6, "batch_size": 8, "max_length": 64, **training}
    lines = "\n".join(f"{k} = {v!r}" for k, v in settings.items()).replace("'", '"')
    path = directory / "recipe.toml"
    path.write_text(
        f"""
[run]
name = "engine-test"
seed = 7
output_dir = "out"

[data]
train = "train.csv"
test = "test.csv"
validation = 0.25

{models}

[training]
{lines}
""",
        encoding="utf-8",
    )
    return path


def run(recipe_path: Path, registry):
    recipe = load_recipe(recipe_path, model_names=registry.names())
    failures = []
    runs = run_recipe(
        recipe, registry, lambda _label: SilentProgress(), lambda m, e: failures.append((m, e))
    )
    return runs, failures


def test_a_run_writes_every_output_file(tiny_bert, data_slice):
    registry = make_registry(tiny_bert)
    runs, failures = run(write_recipe(data_slice, '[[models]]\nmodel = "tiny-bert"'), registry)

    assert failures == []
    [result] = runs
    assert result.status == "ok"
    files = sorted(p.name for p in result.run_dir.iterdir())
    assert files == [
        "labels.json",
        "log_history.json",
        "metrics.json",
        "model",
        "predictions.csv",
        "recipe.toml",
        "run.json",
    ]
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    for split in ("validation", "test"):
        report = metrics[split]
        assert set(report) >= {"accuracy", "f1_macro", "f1_weighted", "per_class"}
        assert sorted(report["per_class"]) == ["code", "remote", "system", "theory", "web"]
        matrix = report["confusion_matrix"]["matrix"]
        assert sum(map(sum, matrix)) == (40 if split == "test" else 30)
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["status"] == "ok"
    assert record["rows"] == {"train": 90, "validation": 30, "test": 40}
    assert record["settings"]["learning_rate"] == 1e-3  # the plugin's default
    assert record["peak_memory_bytes"] > 0
    assert {"torch", "transformers", "zoo", "python"} <= set(record["versions"])
    history = json.loads((result.run_dir / "log_history.json").read_text())
    assert any("eval_f1_macro" in entry for entry in history)
    # The effective recipe reproduces the run: it validates as it stands.
    again = load_recipe(result.run_dir / "recipe.toml", model_names=registry.names())
    assert again.training.learning_rate == 1e-3
    assert again.training.max_steps == 6


def test_the_saved_model_loads_with_plain_transformers_and_predicts_the_file_in_order(
    tiny_bert, keyword_data
):
    registry = make_registry(tiny_bert)
    recipe = write_recipe(
        keyword_data,
        '[[models]]\nmodel = "tiny-bert"',
        max_steps=120,
        learning_rate=5e-3,
        early_stopping_patience=0,
    )
    [result], _ = run(recipe, registry)

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(result.run_dir / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(result.run_dir / "model")
    predictions = read_rows(result.run_dir / "predictions.csv")
    test_rows = read_rows(keyword_data / "test.csv")
    assert [p["text"] for p in predictions] == [r["text"] for r in test_rows]
    assert [p["label"] for p in predictions] == [r["label"] for r in test_rows]
    # A model that predicts one class everywhere would hide a reordering.
    assert len({p["predicted"] for p in predictions}) >= 2
    # Row by row, one text at a time: no batching or sampler order can line them up by luck.
    for row in predictions:
        encoded = tokenizer(row["text"], truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            logits = model(**encoded).logits[0]
        assert model.config.id2label[int(logits.argmax())] == row["predicted"]


def test_runs_never_overwrite_each_other(tiny_bert, data_slice):
    registry = make_registry(tiny_bert)
    recipe = write_recipe(data_slice, '[[models]]\nmodel = "tiny-bert"', max_steps=1)
    [first], _ = run(recipe, registry)
    [second], _ = run(recipe, registry)
    assert first.run_dir != second.run_dir
    assert first.run_dir.parent == second.run_dir.parent
    assert (first.run_dir / "model").is_dir()


def test_a_failing_model_is_recorded_and_the_others_still_run(tiny_bert, data_slice):
    registry = make_registry(tiny_bert, broken=True)
    models = '[[models]]\nmodel = "broken"\n\n[[models]]\nmodel = "tiny-bert"'
    runs, failures = run(write_recipe(data_slice, models, max_steps=2), registry)

    assert [(r.model, r.status) for r in runs] == [("broken", "failed"), ("tiny-bert", "ok")]
    assert runs[0].reason == "OSError: disk on fire"
    assert runs[0].run_dir is None  # it failed while loading: nothing was written
    assert [m for m, _ in failures] == ["broken"]


def test_the_same_seed_gives_the_same_metrics(tiny_bert, data_slice):
    registry = make_registry(tiny_bert)
    recipe = write_recipe(data_slice, '[[models]]\nmodel = "tiny-bert"', max_steps=3)
    [first], _ = run(recipe, registry)
    [second], _ = run(recipe, registry)
    assert first.metrics == second.metrics


def test_a_missing_checkpoint_directory_fails_that_model_with_a_clear_reason(tiny_bert, data_slice):
    # The recipe check refuses a checkpoint folder that is not there; one that goes away after
    # the check (or a recipe built without it) still fails that model with a clear reason.
    registry = make_registry(tiny_bert)
    models = '[[models]]\nmodel = "tiny-bert"\ncheckpoint = "nowhere"'
    (data_slice / "nowhere").mkdir()
    recipe = load_recipe(write_recipe(data_slice, models), model_names=registry.names())
    (data_slice / "nowhere").rmdir()
    failures = []
    [result] = run_recipe(
        recipe, registry, lambda _label: SilentProgress(), lambda m, e: failures.append((m, e))
    )
    assert result.status == "failed"
    assert result.reason.startswith("checkpoint for 'tiny-bert' is not a directory: ")
    assert isinstance(failures[0][1], ZooError)
    assert not (data_slice / "out" / "engine-test").exists()  # no run directory


def test_a_model_that_fails_after_loading_records_why_in_its_run_directory(tiny_bert, data_slice):
    class NotATokenizer:
        pass

    registry = make_registry(
        tiny_bert, broken=True, loader=lambda _request: (object(), NotATokenizer())
    )
    [result], _ = run(write_recipe(data_slice, '[[models]]\nmodel = "broken"'), registry)

    assert result.status == "failed"
    assert result.reason.startswith("AttributeError: ")
    # The recipe is written as the directory is made; the failure beside it.
    assert sorted(p.name for p in result.run_dir.iterdir()) == [
        "error.txt",
        "recipe.toml",
        "run.json",
    ]
    record = json.loads((result.run_dir / "run.json").read_text())
    status = {key: record[key] for key in ("model", "status", "reason")}
    assert status == {"model": "broken", "status": "failed", "reason": result.reason}
    assert "Traceback" in (result.run_dir / "error.txt").read_text()


def test_tokenization_is_cached_across_runs(tiny_bert, data_slice, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    registry = make_registry(tiny_bert)
    recipe = write_recipe(data_slice, '[[models]]\nmodel = "tiny-bert"', max_steps=1)
    run(recipe, registry)
    cached = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "tokenized").iterdir()}
    assert len(cached) == 3  # train, validation, test

    run(recipe, registry)
    again = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "tokenized").iterdir()}
    assert again == cached  # read back, not written again

    longer = write_recipe(data_slice, '[[models]]\nmodel = "tiny-bert"', max_steps=1, max_length=32)
    run(longer, registry)
    assert len(list((tmp_path / "cache" / "tokenized").iterdir())) == 6  # new settings, new files


def test_another_preprocess_list_tokenizes_anew(tiny_bert, data_slice, tmp_path, monkeypatch):
    # The cache is keyed by the texts as data.preprocess leaves them: a list that changes the
    # texts of a split gets new tokens for it; a split it leaves as it was keeps its tokens.
    from zoo.data import load_units
    from zoo.transforms import builtin_transforms

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    tokenized = tmp_path / "cache" / "tokenized"
    registry = make_registry(tiny_bert)
    recipe = write_recipe(data_slice, '[[models]]\nmodel = "tiny-bert"', max_steps=1)
    run(recipe, registry)
    before = set(tokenized.iterdir())
    assert len(before) == 3  # train, validation, test

    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(
        text.replace("validation = 0.25", 'validation = 0.25\npreprocess = ["mask-numbers"]'),
        encoding="utf-8",
    )
    masked = load_recipe(recipe, model_names=registry.names())
    [plain], [changed] = (
        load_units(masked.data, data_slice, (7,), builtin_transforms().pipeline(names)).values()
        for names in ((), ("mask-numbers",))
    )
    differs = [
        part
        for part in ("train", "validation", "test")
        if getattr(plain, part).texts != getattr(changed, part).texts
    ]
    assert differs  # the demo inquiries carry numbers (error codes, versions, ports)
    [result], _ = run(recipe, registry)
    assert result.status == "ok"
    assert len(set(tokenized.iterdir()) - before) == len(differs)


def test_another_datasets_version_keeps_its_own_token_cache(tmp_path, monkeypatch):
    # A cache file is datasets' Arrow file: datasets 3.0 cannot read the feature types that
    # 4.x writes, so a tox env of the lowest versions must not find the newest env's files.
    import datasets

    from zoo.data import LabelledTexts
    from zoo.engine.train import _dataset

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    rows = LabelledTexts(("first", "second"), ("a", "b"))

    def tokenize(batch, indices):
        return {"input_ids": [[len(text)] for text in batch["text"]], "text_row": indices}

    _dataset(rows, ("a", "b"), tokenize, "key")
    # Another version than the installed one, whichever tox env this is (3.0.0 in the lowest).
    monkeypatch.setattr(datasets, "__version__", f"{datasets.__version__}.other")
    _dataset(rows, ("a", "b"), tokenize, "key")
    assert len(list((tmp_path / "cache" / "tokenized").iterdir())) == 2


def test_cached_tokens_take_the_label_ids_of_the_run_that_reads_them(tmp_path, monkeypatch):
    # One validation file, kept while the training labels change from (a, b, c) to (a, c, d):
    # the second run must see c = 1 and d = 2, not the ids the first run cached.
    from zoo.data import LabelledTexts
    from zoo.engine.train import _dataset

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    validation = LabelledTexts(("first", "second", "third"), ("a", "c", "c"))

    def tokenize(batch, indices):
        return {"input_ids": [[len(text)] for text in batch["text"]], "text_row": indices}

    first = _dataset(validation, ("a", "b", "c"), tokenize, "key")
    again = _dataset(validation, ("a", "c", "d"), tokenize, "key")
    assert first["label"] == [0, 2, 2]
    assert again["label"] == [0, 1, 1]
    assert again["input_ids"] == first["input_ids"] == [[5], [6], [5]]
    assert len(list((tmp_path / "cache" / "tokenized").iterdir())) == 1  # the tokens, once
