"""Long texts: `training.truncation` decides which tokens a model reads, every run says how long
its texts were, and zoo predict cuts as training did."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score
from test_keyword_task import KEYWORDS, SHARED
from tiny_models import read_rows

import zoo.cli
from zoo.engine.truncation import Lengths, encode, kept_positions, special_tokens

# --- which positions ------------------------------------------------------------------------------


def test_a_text_that_fits_is_kept_whole():
    assert kept_positions(6, 8, "head+tail", (1, 1)) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("strategy", "kept"),
    [
        # 12 tokens: [CLS] t1 .. t10 [SEP], room for 6 of the 10
        ("head", [0, 1, 2, 3, 4, 5, 6, 11]),
        ("tail", [0, 5, 6, 7, 8, 9, 10, 11]),
        ("head+tail", [0, 1, 6, 7, 8, 9, 10, 11]),  # a quarter of 6 (1) from the start
    ],
)
def test_each_strategy_keeps_the_special_tokens_and_its_part(strategy, kept):
    assert kept_positions(12, 8, strategy, (1, 1)) == kept


def test_a_tokenizer_without_special_tokens_is_cut_the_same_way():
    assert kept_positions(10, 4, "tail", (0, 0)) == [6, 7, 8, 9]


def test_head_is_what_the_tokenizers_own_truncation_keeps(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    assert special_tokens(tokenizer) == (1, 1)
    texts = ["오늘 갑자기 서버가 계속 안 돼요 " * 5, "짧은 질문"]
    ours = encode(tokenizer, texts, max_length=16, strategy="head")
    theirs = tokenizer(texts, truncation=True, max_length=16)
    assert ours["input_ids"] == theirs["input_ids"]
    assert ours["attention_mask"] == theirs["attention_mask"]
    full = tokenizer(texts)["input_ids"]
    assert ours["text_tokens"] == [len(ids) - 2 for ids in full]
    tail = encode(tokenizer, texts, max_length=16, strategy="tail")["input_ids"][0]
    assert tail == [full[0][0], *full[0][-15:]]  # [CLS] and the last 14 tokens and [SEP]


def test_lengths_say_how_many_were_cut():
    # 30 tokens and 2 special ones fit in 32; 31 do not.
    assert Lengths.of([30], max_length=32, specials=2).cut == 0
    lengths = Lengths.of([10, 20, 31, 200], max_length=32, specials=2)
    assert (lengths.texts, lengths.median, lengths.longest, lengths.cut) == (4, 25.5, 200, 2)
    assert lengths.warning("train", "head") == (
        "2 of 4 train texts (50%) are longer than max_length 32 tokens (median 25.5, 95th "
        "percentile 200, longest 200) and are cut ('head': their ends are lost); a larger "
        "training.max_length or another training.truncation may read more"
    )
    assert Lengths.of([10] * 20 + [100], max_length=32, specials=2).warning("test", "head") is None


def test_zero_shot_refuses_a_truncation_of_its_own(tmp_path):
    from zoo.errors import RecipeError
    from zoo.recipe import load_recipe

    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    path = tmp_path / "recipe.toml"
    path.write_text(
        '[run]\nname = "t"\n[data]\ntrain = "train.csv"\n'
        '[[models]]\nmodel = "koalpaca-5.8b"\nmethod = "zero-shot"\ntruncation = "tail"\n',
        encoding="utf-8",
    )
    with pytest.raises(RecipeError, match=r"models\[0\]\.truncation: zero-shot scoring keeps"):
        load_recipe(path, model_methods={"koalpaca-5.8b": ("zero-shot",)})


# --- the deciding words at the end ----------------------------------------------------------------


@pytest.fixture(scope="module")
def keyword_at_the_end(tmp_path_factory) -> Path:
    """Long inquiries whose class is told by a keyword in their last words only: 30 shared
    words, then the keyword (the keyword task's words, moved to the end)."""
    directory = tmp_path_factory.mktemp("late-keywords")
    rng = random.Random(0)
    for name, count in (("train", 150), ("test", 60)):
        with (directory / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            for i in range(count):
                label = list(KEYWORDS)[i % len(KEYWORDS)]
                words = rng.choices(SHARED, k=30) + [KEYWORDS[label], rng.choice(SHARED)]
                writer.writerow([" ".join(words), label])
    return directory


@pytest.fixture(scope="module")
def tiny_bert_128(tmp_path_factory) -> Path:
    from tiny_models import demo_texts, save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-128"), demo_texts(), hidden=128)


def run_with(directory: Path, model: Path, truncation: str) -> tuple[dict, str]:
    recipe = directory / f"{truncation}.toml"
    recipe.write_text(
        f'[run]\nname = "late"\nseed = 42\noutput_dir = "runs"\n'
        '[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = 0.2\n'
        f'[[models]]\nmodel = "finbert"\ncheckpoint = "{model}"\n'
        f'[training]\ntruncation = "{truncation}"\nmax_steps = 80\nbatch_size = 16\n'
        'learning_rate = 1e-3\nlr_scheduler = "constant"\nmax_length = 24\n'
        "early_stopping_patience = 0\n",
        encoding="utf-8",
    )
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ZOO_CACHE", str(directory / "cache"))
        env.setenv("ZOO_PLUGINS", "")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert zoo.cli.main(["run", str(recipe), "--json"]) == 0
    (run,) = json.loads(out.getvalue())["runs"]
    return run, err.getvalue()


@pytest.mark.slow
def test_head_tail_reads_the_end_that_head_cuts_off(keyword_at_the_end, tiny_bert_128, capsys):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_keyword_task.one_thread
    try:
        head, said = run_with(keyword_at_the_end, tiny_bert_128, "head")
        both, _ = run_with(keyword_at_the_end, tiny_bert_128, "head+tail")
    finally:
        torch.set_num_threads(threads)
    # The same texts cut another way are tokenized anew: train, validation and test twice.
    assert len(list((keyword_at_the_end / "cache" / "tokenized").iterdir())) == 6
    assert head["metrics"]["test"]["accuracy"] < 0.6  # the keyword is never read: near 1/3
    assert both["metrics"]["test"]["accuracy"] >= 0.9

    # Every text was cut, and the run said so and recorded it.
    said = " ".join(said.split())  # as one line, however the console wrapped it
    assert "120 of 120 train texts (100%) are longer than max_length 24 tokens" in said
    assert "('head': their ends are lost)" in said
    record = json.loads((Path(both["run_dir"]) / "run.json").read_text(encoding="utf-8"))
    assert record["truncation"] == "head+tail"
    train = record["text_tokens"]["train"]
    assert train["cut"] == train["texts"] == 120 and train["max_length"] == 24

    # zoo predict cuts as training did: its labels are those of the run's own test predictions.
    run_dir = Path(both["run_dir"])
    output = keyword_at_the_end / "submission.csv"
    test_csv = keyword_at_the_end / "test.csv"
    assert (
        zoo.cli.main(["predict", str(run_dir), "--input", str(test_csv), "--output", str(output)])
        == 0
    )
    capsys.readouterr()
    predicted = [row["label"] for row in read_rows(output)]
    recorded = read_rows(run_dir / "predictions.csv")
    assert predicted == [row["predicted"] for row in recorded]
    assert accuracy_score([row["label"] for row in recorded], predicted) >= 0.9
