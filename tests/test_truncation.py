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
from zoo.engine.truncation import (
    Lengths,
    chunk_positions,
    encode,
    kept_positions,
    per_text,
    special_tokens,
)

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


def test_chunks_cover_every_token_in_windows_that_share_the_stride():
    # 12 tokens: [CLS] t1 .. t10 [SEP]; room for 6, 2 shared: windows start at t1 and t5.
    assert chunk_positions(12, 8, (1, 1), stride=2) == [
        [0, 1, 2, 3, 4, 5, 6, 11],
        [0, 5, 6, 7, 8, 9, 10, 11],
    ]
    assert chunk_positions(6, 8, (1, 1), stride=2) == [[0, 1, 2, 3, 4, 5]]  # it fits
    # 20 tokens between the special ones: starts 0, 4, 8, 12 and then 14, which ends the text.
    windows = chunk_positions(22, 8, (1, 1), stride=2)
    assert [w[1] for w in windows] == [1, 5, 9, 13, 15]
    assert all(len(w) == 8 and w[0] == 0 and w[-1] == 21 for w in windows)
    assert sorted({p for w in windows for p in w}) == list(range(22))
    for earlier, later in zip(windows, windows[1:-1], strict=False):
        assert len(set(earlier[1:-1]) & set(later[1:-1])) == 2


def test_a_texts_probabilities_are_the_mean_of_its_windows():
    import numpy as np

    windows = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.5, 0.5]])
    texts = per_text(windows, [0, 1, 1, 2], texts=3)
    np.testing.assert_allclose(texts, [[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])
    assert per_text(windows, [0, 1, 2, 3], texts=4) is windows  # one row a text: as it is
    with pytest.raises(ValueError, match="no rows for texts"):
        per_text(windows, [0, 0, 2, 2], texts=3)


def test_chunks_encode_each_text_as_consecutive_windows(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = ["짧은 질문", "오늘 갑자기 서버가 계속 안 돼요 " * 5]
    full = tokenizer(texts)["input_ids"]
    encoded = encode(tokenizer, texts, max_length=16, strategy="chunks", stride=4)
    rows = zip(encoded["input_ids"], encoded["text_row"], strict=True)
    long_windows = [ids for ids, row in rows if row == 1]
    assert encoded["input_ids"][0] == full[0] and encoded["text_row"][0] == 0
    assert len(long_windows) == len(chunk_positions(len(full[1]), 16, (1, 1), 4)) > 1
    content = full[1][1:-1]
    for window in long_windows:
        assert len(window) <= 16 and window[0] == full[1][0] and window[-1] == full[1][-1]
        inner = window[1:-1]  # a slice of the text's own tokens
        assert any(content[i : i + len(inner)] == inner for i in range(len(content)))
    assert long_windows[-1][1:-1] == content[-14:]  # the last window ends where the text ends
    # Every window says how long its text was: one length a text.
    lengths = Lengths.of(encoded["text_tokens"], 16, 2, encoded["text_row"])
    assert (lengths.texts, lengths.cut, lengths.windows) == (2, 1, 1 + len(long_windows))
    assert lengths.longest == len(content)
    assert lengths.warning("train", "chunks") is None  # nothing lost: nothing to warn of


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
    with pytest.raises(
        RecipeError, match=r"models\[0\]\.truncation: zero-shot scoring cuts the text"
    ):
        load_recipe(path, model_methods={"koalpaca-5.8b": ("zero-shot",)})


# --- the deciding words at the end ----------------------------------------------------------------


@pytest.fixture(scope="module")
def keyword_at_the_end(tmp_path_factory) -> Path:
    """Long inquiries whose class is told by a keyword in their last words only: 14 shared
    words, then the keyword (the keyword task's words, moved to the end)."""
    directory = tmp_path_factory.mktemp("late-keywords")
    rng = random.Random(0)
    for name, count in (("train", 150), ("test", 60)):
        with (directory / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            for i in range(count):
                label = list(KEYWORDS)[i % len(KEYWORDS)]
                words = rng.choices(SHARED, k=14) + [KEYWORDS[label], rng.choice(SHARED)]
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
def test_head_tail_and_chunks_read_the_end_that_head_cuts_off(
    keyword_at_the_end, tiny_bert_128, capsys
):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_keyword_task.one_thread
    try:
        head, said = run_with(keyword_at_the_end, tiny_bert_128, "head")
        both, _ = run_with(keyword_at_the_end, tiny_bert_128, "head+tail")
        chunks, _ = run_with(keyword_at_the_end, tiny_bert_128, "chunks")
    finally:
        torch.set_num_threads(threads)
    # The same texts cut another way are tokenized anew: train, validation and test thrice.
    assert len(list((keyword_at_the_end / "cache" / "tokenized").iterdir())) == 9
    assert head["metrics"]["test"]["accuracy"] < 0.6  # the keyword is never read: near 1/3
    assert both["metrics"]["test"]["accuracy"] >= 0.9
    # Chunks learn from windows without the keyword too (labelled with the text's class), which
    # costs them some accuracy: 0.92 here, 0.87 at seed 7, where head gets 0.37 and 0.30.
    assert chunks["metrics"]["test"]["accuracy"] >= 0.8

    # Every text was cut, and the run said so and recorded it.
    said = " ".join(said.split())  # as one line, however the console wrapped it
    assert "120 of 120 train texts (100%) are longer than max_length 24 tokens" in said
    assert "('head': their ends are lost)" in said
    record = json.loads((Path(both["run_dir"]) / "run.json").read_text(encoding="utf-8"))
    assert record["truncation"] == "head+tail"
    train = record["text_tokens"]["train"]
    assert train["cut"] == train["texts"] == train["windows"] == 120
    assert train["max_length"] == 24
    # With chunks, each text is read in windows: more rows than texts, none of them lost.
    record = json.loads((Path(chunks["run_dir"]) / "run.json").read_text(encoding="utf-8"))
    assert record["truncation"] == "chunks" and record["settings"]["chunk_stride"] is None
    train = record["text_tokens"]["train"]
    assert train["texts"] == 120 and train["windows"] > 2 * 120

    # zoo predict cuts as training did: its labels are those of the run's own test predictions.
    test_csv = keyword_at_the_end / "test.csv"
    for run in (both, chunks):
        run_dir = Path(run["run_dir"])
        output = run_dir.parent / f"{run_dir.name}-submission.csv"
        argv = ["predict", str(run_dir), "--input", str(test_csv), "--output", str(output)]
        assert zoo.cli.main(argv) == 0
        capsys.readouterr()
        predicted = [row["label"] for row in read_rows(output)]
        recorded = read_rows(run_dir / "predictions.csv")
        assert predicted == [row["predicted"] for row in recorded]
        assert accuracy_score([row["label"] for row in recorded], predicted) >= 0.8


@pytest.mark.parametrize(
    ("training", "problem"),
    [
        (
            "chunk_stride = 8",
            "training.chunk_stride: applies to truncation = 'chunks', not 'head'; set "
            "training.truncation = 'chunks' or remove it",
        ),
        (
            'truncation = "chunks"\nmax_length = 32\nchunk_stride = 17',
            "training.chunk_stride: 17 tokens shared is more than half of max_length (32); use "
            "16 or less",
        ),
    ],
)
def test_a_chunk_stride_that_cannot_work_is_refused_before_training(
    tmp_path, capsys, training, problem
):
    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\nc,x\nd,y\n", encoding="utf-8")
    path = tmp_path / "recipe.toml"
    path.write_text(
        '[run]\nname = "t"\n[data]\ntrain = "train.csv"\nvalidation = 0.5\n'
        f'[[models]]\nmodel = "minilm"\n[training]\n{training}\n',
        encoding="utf-8",
    )
    assert zoo.cli.main(["validate", str(path)]) == 2
    assert problem in capsys.readouterr().err
