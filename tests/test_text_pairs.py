"""Sentence-pair tasks: `data.text_column = ["question", "reply"]` feeds both texts to the model
(the tokenizer's pair, sharing max_length), in training, the TF-IDF baseline and zoo predict.

The task's class is told by a keyword in the reply alone (the question is words that every
class shares), so a model that read only the questions would score a third: the scores below
say that the second text was read.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import pytest
from test_keyword_task import KEYWORDS, SHARED, TRAINING, keyword_text, run_json
from tiny_models import read_rows, zoo_predict

import zoo.cli
from zoo.data import read_input, read_table
from zoo.errors import DataError, RecipeError
from zoo.recipe import load_recipe


@pytest.fixture(scope="module")
def reply_task(tmp_path_factory) -> Path:
    """150 training and 60 test (question, reply) rows, the classes in turn."""
    directory = tmp_path_factory.mktemp("pairs")
    rng = random.Random(0)
    for name, count in (("train", 150), ("test", 60)):
        with (directory / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "question", "reply", "label"])
            for i in range(count):
                label = list(KEYWORDS)[i % len(KEYWORDS)]
                question = " ".join(rng.choices(SHARED, k=rng.randint(2, 5)))
                writer.writerow([f"q{i}", question, keyword_text(rng, label), label])
    return directory


def pair_run(directory: Path, name: str, models: str, text_column: str) -> dict:
    recipe = directory / f"{name}.toml"
    recipe.write_text(
        f'[run]\nname = "{name}"\nseed = 42\noutput_dir = "runs"\n'
        f'[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = 0.2\n'
        f"text_column = {text_column}\n{models}\n{TRAINING}",
        encoding="utf-8",
    )
    run = run_json(recipe)
    assert run["status"] == "ok"
    return run


PAIR = '["question", "reply"]'


# --- training and predict -------------------------------------------------------------------------


def test_the_tfidf_baseline_reads_both_texts_and_predict_reads_the_pairs(reply_task, capsys):
    alone = pair_run(reply_task, "questions", '[[models]]\nmodel = "tfidf"', '"question"')
    both = pair_run(reply_task, "pairs", '[[models]]\nmodel = "tfidf"', PAIR)
    assert alone["metrics"]["test"]["accuracy"] < 0.6  # the questions tell nothing
    assert both["metrics"]["test"]["accuracy"] >= 0.9
    run_dir = Path(both["run_dir"])
    recorded = read_rows(run_dir / "predictions.csv")
    tests = read_rows(reply_task / "test.csv")
    # Each test row's two texts, in the columns predictions.csv names.
    assert [(r["text"], r["pair"]) for r in recorded] == [
        (r["question"], r["reply"]) for r in tests
    ]
    predicted = [r["label"] for r in zoo_predict(run_dir, reply_task / "test.csv", capsys)]
    assert predicted == [row["predicted"] for row in recorded]
    # Other column names in the input: --text-column names both.
    renamed = reply_task / "renamed.csv"
    renamed.write_text(
        (reply_task / "test.csv").read_text(encoding="utf-8").replace("question,reply", "q,a", 1),
        encoding="utf-8",
    )
    again = [r["label"] for r in zoo_predict(run_dir, renamed, capsys, "--text-column", "q", "a")]
    assert again == predicted


@pytest.mark.slow
def test_a_tiny_bert_reads_the_pair_in_training_and_predict(reply_task, tiny_bert_128, capsys):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_keyword_task.one_thread
    try:
        entry = f'[[models]]\nmodel = "finbert"\ncheckpoint = "{tiny_bert_128}"'
        run = pair_run(reply_task, "bert-pairs", entry, PAIR)
    finally:
        torch.set_num_threads(threads)
    assert run["metrics"]["test"]["accuracy"] >= 0.9
    run_dir = Path(run["run_dir"])
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    # [CLS] question [SEP] reply [SEP]: the lengths count the pair's tokens, not the 3 specials.
    assert record["text_tokens"]["train"]["texts"] == 120
    predicted = [r["label"] for r in zoo_predict(run_dir, reply_task / "test.csv", capsys)]
    assert predicted == [row["predicted"] for row in read_rows(run_dir / "predictions.csv")]


@pytest.fixture(scope="module")
def tiny_bert_128(tmp_path_factory) -> Path:
    from tiny_models import demo_texts, save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-128"), demo_texts(), hidden=128)


def test_a_pair_is_cut_by_the_tokenizers_own_pair_truncation(tiny_bert):
    from transformers import AutoTokenizer

    from zoo.engine.truncation import encode_pairs, pair_specials

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    assert pair_specials(tokenizer) == 3  # [CLS] a [SEP] b [SEP]
    questions = ["서버가 계속 안 돼요 " * 4, "짧은 질문"]
    replies = ["재부팅 해 보세요", "코드를 보여 주세요 " * 6]
    ours = encode_pairs(tokenizer, questions, replies, max_length=20)
    theirs = tokenizer(questions, replies, truncation=True, max_length=20)
    assert ours["input_ids"] == theirs["input_ids"]
    assert ours["token_type_ids"] == theirs["token_type_ids"]
    assert all(len(ids) == 20 for ids in ours["input_ids"])  # both pairs are longer
    whole = tokenizer(questions, replies)["input_ids"]
    assert ours["text_tokens"] == [len(ids) - 3 for ids in whole]
    assert ours["text_row"] == [0, 1]


# --- reading --------------------------------------------------------------------------------------


def test_both_texts_are_read_as_exactly_as_one(tmp_path):
    # NFD, quotes and a line break in the reply; a pair whose reply is empty is a row with an
    # empty text, named by its line.
    import unicodedata

    path = tmp_path / "train.csv"
    path.write_text(
        "question,reply,label\n"
        f'"왜, 안 돼요?","{unicodedata.normalize("NFD", "서버")} 재시작\n""해 보세요""",a\n'
        "같은 질문,다른 답,b\n"
        "같은 질문,또 다른 답,b\n",
        encoding="utf-8",
    )
    read = read_table(
        path, text_column=["question", "reply"], label_column="label", setting="data.train"
    )
    assert read.rows.texts == ("왜, 안 돼요?", "같은 질문", "같은 질문")
    assert read.rows.pairs == ('서버 재시작\n"해 보세요"', "다른 답", "또 다른 답")
    assert read.rows.lines == (2, 4, 5)
    # Taking rows keeps each row's pair with it.
    assert read.rows.take([2, 0]).inputs == (("같은 질문", "또 다른 답"), read.rows.inputs[0])

    (tmp_path / "empty.csv").write_text("question,reply,label\n질문,,a\n질문,답,b\n")
    with pytest.raises(DataError, match=r"has 1 row with an empty text or label \(lines 2\)"):
        read_table(
            tmp_path / "empty.csv",
            text_column=["question", "reply"],
            label_column="label",
            setting="data.train",
        )
    (tmp_path / "missing.csv").write_text("question,label\n질문,a\n")
    with pytest.raises(DataError, match=r"has no column 'reply' \(columns: 'question', 'label'\)"):
        read_table(
            tmp_path / "missing.csv",
            text_column=["question", "reply"],
            label_column="label",
            setting="data.train",
        )


def test_json_lines_read_pairs_and_keep_each_text_a_string(tmp_path):
    path = tmp_path / "input.jsonl"
    path.write_text(
        '{"question": "왜요?", "reply": "재시작", "label": "a"}\n'
        '{"question": "어떻게", "reply": 7, "label": "b"}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match="line 2 .*'reply'"):
        read_table(
            path, text_column=["question", "reply"], label_column="label", setting="data.train"
        )
    path.write_text('{"question": "왜요?", "reply": "재시작"}\n', encoding="utf-8")
    read = read_input(path, text_column=["question", "reply"], setting="--input")
    assert (read.texts, read.pairs) == (("왜요?",), ("재시작",))


def test_a_repeated_pair_is_a_duplicate_but_a_repeated_question_is_not(tmp_path):
    from zoo.data import load_splits
    from zoo.recipe import DataSection

    (tmp_path / "train.csv").write_text(
        "question,reply,label\n"
        + "".join(f"질문 {i},답 {i},{'ab'[i % 2]}\n" for i in range(10))
        + "질문 0,다른 답,a\n"  # the same question, another reply: no duplicate
        + "질문 1,답 1,b\n",  # the same pair again: a duplicate
        encoding="utf-8",
    )
    data = DataSection(train="train.csv", text_column=("question", "reply"), validation=0.3)
    notices = " ".join(load_splits(data, tmp_path, seed=1).notices)
    assert "1 row repeats an earlier row (e.g. line 13 repeats line 3)" in notices


# --- what is refused, before anything trains ------------------------------------------------------


def recipe_file(tmp_path: Path, data: str, models: str = '[[models]]\nmodel = "tfidf"\n') -> Path:
    (tmp_path / "train.csv").write_text(
        "question,reply,label\n" + "".join(f"q{i},r{i},{'ab'[i % 2]}\n" for i in range(6)),
        encoding="utf-8",
    )
    path = tmp_path / "recipe.toml"
    path.write_text(
        f'[run]\nname = "t"\n[data]\ntrain = "train.csv"\nvalidation = 0.5\n{data}\n{models}',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("text_column", "problem"),
    [
        ('["question"]', "data.text_column: a text pair is two columns, not 1: ['question']"),
        ('["q", "r", "s"]', "data.text_column: a text pair is two columns, not 3"),
        ('["question", "question"]', "data.text_column: names the column 'question' twice"),
        ("3", "data.text_column: expected a column name, or a list of two for a text pair"),
        (
            '["question", "label"]',
            "data.label_column: is a column of the text pair data.text_column (['question', "
            "'label']): a model would learn to read its answer",
        ),
    ],
)
def test_a_wrong_text_column_is_a_recipe_problem(tmp_path, text_column, problem):
    with pytest.raises(RecipeError) as raised:
        load_recipe(recipe_file(tmp_path, f"text_column = {text_column}"))
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    ("models", "problem"),
    [
        (
            '[[models]]\nmodel = "koalpaca-5.8b"\nmethod = "zero-shot"\n',
            "models[0].method: zero-shot scoring reads one text, but data.text_column names a "
            "text pair (question, reply); fine-tune the model instead",
        ),
        (
            '[[models]]\nmodel = "koalpaca-5.8b"\nmethod = "few-shot"\n',
            "models[0].method: few-shot scoring reads one text, but data.text_column names a "
            "text pair (question, reply); fine-tune the model instead",
        ),
        (
            '[[models]]\nmodel = "minilm"\ntruncation = "head+tail"\n',
            "models[0].truncation: 'head+tail' cuts one text, but data.text_column names a text "
            "pair (question, reply): the tokenizer cuts a pair, the longer text first ('head'); "
            "remove it",
        ),
    ],
)
def test_what_cannot_read_a_pair_is_refused_before_training(tmp_path, capsys, models, problem):
    path = recipe_file(tmp_path, f"text_column = {PAIR}", models)
    assert zoo.cli.main(["validate", str(path)]) == 2
    assert problem in " ".join(capsys.readouterr().err.split())


def test_a_custom_engine_that_does_not_read_pairs_is_refused(tmp_path):
    import attrs

    from zoo.plugins import get_plugin_manager
    from zoo.preflight import check_before_training
    from zoo.registry import RegisteredModel, collect_models

    registry = collect_models(get_plugin_manager())
    spec = registry.models["tfidf"].spec
    single = attrs.evolve(spec, engine=attrs.evolve(spec.engine, text_pairs=False))
    registry.models["tfidf"] = RegisteredModel(single, "test")
    recipe = load_recipe(recipe_file(tmp_path, f"text_column = {PAIR}"))
    with pytest.raises(RecipeError, match=r"'tfidf' reads one text a row \(its engine takes no"):
        check_before_training(recipe, registry, ("a", "b"))


def test_predict_wants_as_many_text_columns_as_the_run_read(reply_task, tmp_path, capsys):
    run = pair_run(reply_task, "pairs-columns", '[[models]]\nmodel = "tfidf"', PAIR)
    output = tmp_path / "out.csv"
    argv = ["predict", run["run_dir"], "--input", str(reply_task / "test.csv")]
    assert zoo.cli.main([*argv, "--output", str(output), "--text-column", "question"]) == 2
    assert capsys.readouterr().err == (
        "error: --text-column names 1 column, but the run read text pairs (question, reply)\n"
        "  hint: give --text-column the two columns of each pair\n"
    )
    # A run directory whose recipe no longer names a pair is refused, not read as single texts.
    damaged = tmp_path / "run"
    shutil.copytree(run["run_dir"], damaged)
    recipe = damaged / "recipe.toml"
    recipe.write_text(recipe.read_text().replace("text_column = [", "text_column = [ 3,", 1))
    assert zoo.cli.main(["predict", str(damaged), "--input", argv[3], "--output", str(output)]) == 2
    assert "data.text_column is [3, 'question', 'reply'], not a column name" in (
        capsys.readouterr().err
    )
    assert not output.exists()


def test_a_pair_column_named_twice_is_refused_with_both_places(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("question,reply,reply,label\n질문,답,다른 답,a\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"has 2 columns named 'reply' \(columns 2, 3 of the"):
        read_table(
            path, text_column=["question", "reply"], label_column="label", setting="data.train"
        )
