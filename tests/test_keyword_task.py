"""A task that any working model learns: the label is told by a keyword in the text.

Everything else can go wrong and still look right. With the label ids reversed in training, a
run trains, evaluates, writes every file, agrees with itself and scores one third; so these
tests ask for the score itself. The texts are short Korean questions in which a keyword (서버,
코드, 화면) names the class among words that all classes share; a 2-layer random-init BERT of
hidden size 128 learns them through zoo's own engine in 80 steps (seconds on a CPU), and the
TF-IDF baseline in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score
from tiny_models import read_rows

import zoo.cli

KEYWORDS = {"system": "서버", "code": "코드", "web": "화면"}
SHARED = ("오늘", "갑자기", "계속", "어떻게", "해야", "하나요", "왜", "그런지", "모르겠어요",
          "도와주세요", "질문", "있어요", "학교", "과제", "중인데", "급해요")  # fmt: skip


def keyword_text(rng: random.Random, label: str) -> str:
    """A few shared words with the label's keyword among them, once or more."""
    words = rng.choices(SHARED, k=rng.randint(0, 3))
    for _ in range(rng.randint(1, 3)):
        words.insert(rng.randint(0, len(words)), KEYWORDS[label])
    return " ".join(words)


@pytest.fixture(scope="module")
def keyword_task(tmp_path_factory) -> Path:
    """150 training and 60 test rows, the classes in turn."""
    directory = tmp_path_factory.mktemp("keywords")
    rng = random.Random(0)
    for name, count in (("train", 150), ("test", 60)):
        with (directory / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            for i in range(count):
                label = list(KEYWORDS)[i % len(KEYWORDS)]
                writer.writerow([keyword_text(rng, label), label])
    return directory


# Chosen over 56 seeds (0-23, 1230-1253, 42 and seven more), each of which reached >= 0.96:
# with hidden size 32 or 64, a larger learning rate or a decaying one, one seed in ten to
# twenty stays stuck with two classes merged (accuracy 2/3) for a hundred steps and more.
TRAINING = """
[training]
max_steps = 80
batch_size = 16
learning_rate = 1e-3
lr_scheduler = "constant"
max_length = 32
early_stopping_patience = 0
"""


@pytest.fixture(scope="module")
def tiny_bert_128(tmp_path_factory) -> Path:
    """A 2-layer random-init BERT of hidden size 128 with the demo data's characters."""
    from tiny_models import demo_texts, save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-128"), demo_texts(), hidden=128)


def zoo_run(directory: Path, name: str, models: str) -> dict:
    """`zoo run --json` of a recipe `name` with these [[models]] on the keyword task: its run."""
    recipe = directory / f"{name}.toml"
    recipe.write_text(
        f"""
[run]
name = "{name}"
seed = 42
output_dir = "runs"

[data]
train = "train.csv"
test = "test.csv"
validation = 0.2

{models}
{TRAINING}
""",
        encoding="utf-8",
    )
    return run_json(recipe)


def run_json(recipe: Path) -> dict:
    """`zoo run --json` of a recipe of one model, with the built-in plugins alone and its own
    cache beside the recipe (tokenized there, not in a shared cache): that run's record."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ZOO_CACHE", str(recipe.parent / "cache"))
        env.setenv("ZOO_PLUGINS", "")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert zoo.cli.main(["run", str(recipe), "--json"]) == 0
    (run,) = json.loads(out.getvalue())["runs"]
    return run


@pytest.fixture
def one_thread():
    """A model this small gains nothing from a second thread, and beside another busy process
    two threads mostly wait on each other (this test: 5 s on one thread, 110 s on two)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def accuracy_from_predictions(run_dir: Path) -> float:
    rows = read_rows(run_dir / "predictions.csv")
    return accuracy_score([r["label"] for r in rows], [r["predicted"] for r in rows])


@pytest.mark.slow
def test_a_tiny_bert_learns_the_keyword_task_through_zoos_engine(
    keyword_task, tiny_bert_128, one_thread
):
    # The finbert plugin's entry with the tiny model's folder as its checkpoint.
    entry = f'[[models]]\nmodel = "finbert"\ncheckpoint = "{tiny_bert_128}"'
    run = zoo_run(keyword_task, "bert", entry)
    assert run["status"] == "ok"
    assert run["metrics"]["test"]["accuracy"] >= 0.9
    assert accuracy_from_predictions(Path(run["run_dir"])) == run["metrics"]["test"]["accuracy"]
    # The saved model names its classes as the data does.
    config = json.loads((Path(run["run_dir"]) / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "code", "1": "system", "2": "web"}


def test_the_tfidf_baseline_learns_the_keyword_task(keyword_task):
    run = zoo_run(keyword_task, "tfidf", '[[models]]\nmodel = "tfidf"')
    assert run["status"] == "ok"
    assert run["metrics"]["test"]["accuracy"] >= 0.9
    assert accuracy_from_predictions(Path(run["run_dir"])) == run["metrics"]["test"]["accuracy"]


def test_every_keyword_text_names_exactly_one_class():
    """The task is learnable as written: no text carries two classes' keywords."""
    rng = random.Random(1)
    for label in KEYWORDS:
        for _ in range(50):
            words = keyword_text(rng, label).split()
            assert {KEYWORDS[label]} == set(words) & set(KEYWORDS.values())
