"""head = "label-words": a decoder fine-tuned to answer with its label's words, and the label
scoring that zero-shot, few-shot and label words predict with.

The keyword task (tests/test_keyword_task.py) is learnt by a tiny random-init decoder only if
everything holds: the prompt and answer tokens line up, the loss is on the answer alone, the
end-of-text token is a target where it ends an answer, and prediction scores every label's
words after the same prompt.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from test_keyword_task import KEYWORDS, keyword_task, one_thread, run_json  # noqa: F401
from tiny_models import demo_texts, read_rows

import zoo.cli

PROMPT = "질문: {text}\n분류: "
WORDS = {"code": "코드 질문", "system": "서버 문제", "web": "화면"}


@pytest.fixture(scope="module")
def decoders(tmp_path_factory) -> dict[str, Path]:
    """Tiny random-init decoders with the demo data's characters."""
    from tiny_models import save_tiny_decoder, save_tiny_gpt_neox

    texts = demo_texts() + [" ".join(WORDS.values())]
    return {
        "gpt-neox": save_tiny_gpt_neox(tmp_path_factory.mktemp("neox"), texts, hidden=64),
        "llama": save_tiny_decoder(
            tmp_path_factory.mktemp("llama"), texts, "llama", hidden=64, bos=True
        ),
    }


def load(directory: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(directory), tokenizer


# --- scoring ------------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["gpt-neox", "llama"])
@pytest.mark.parametrize("end", [False, True])
def test_the_shared_prompt_cache_gives_the_scores_of_each_pair_run_whole(
    decoders, architecture, end
):
    from zoo.engine import label_scoring
    from zoo.prompts import Prompt

    model, tokenizer = load(decoders[architecture])
    words = ["코드", "웹 개발", "이론", "시스템 운영"]  # one to five tokens: padded answers
    prompt = Prompt.from_template("질문: {text}\n분류({labels}): ", words)
    answers = label_scoring.answer_ids(tokenizer, words, end=end)
    # Prompts of different lengths: the cached pass left-pads them.
    prompts = [label_scoring.prompt_ids(tokenizer, prompt, t, 80) for t in demo_texts()[:5]]
    assert len(set(map(len, prompts))) > 1
    cached = label_scoring._cached_scores(model, tokenizer, prompts, answers)
    whole = label_scoring._whole_scores(model, tokenizer, prompts, answers)
    np.testing.assert_allclose(cached, whole, atol=1e-5)


def test_a_batch_of_rows_scores_each_row_as_it_scores_alone(decoders):
    from zoo.engine.label_scoring import label_scores
    from zoo.prompts import Prompt

    model, tokenizer = load(decoders["llama"])
    words = ["코드", "웹 개발", "이론"]
    prompt = Prompt.from_template(PROMPT, words)
    texts = demo_texts()[:6]
    together = label_scores(model, tokenizer, prompt, texts, words, max_length=96, batch_size=18)
    for row, text in enumerate(texts):
        alone = label_scores(model, tokenizer, prompt, [text], words, max_length=96)
        np.testing.assert_allclose(together[row], alone[0], atol=1e-5)


def test_a_prompt_keeps_its_instructions_and_answer_cue_when_the_text_is_cut(decoders):
    from zoo.engine.label_scoring import prompt_ids, token_ids
    from zoo.prompts import Prompt

    _, tokenizer = load(decoders["llama"])
    prompt = Prompt.from_template("지시 {labels}: {text} 답:", ["가", "나"])
    text = demo_texts()[0] * 5
    ids = prompt_ids(tokenizer, prompt, text, 40)
    assert len(ids) == 40
    before, after = token_ids(tokenizer, prompt.before), token_ids(tokenizer, prompt.after)
    assert ids[0] == tokenizer.bos_token_id  # the tokenizer's own start, as in pretraining
    assert ids[1 : 1 + len(before)] == before
    assert ids[-len(after) :] == after


def test_a_prompt_that_leaves_the_text_no_room_is_refused_with_the_length_it_needs(decoders):
    from zoo.engine.label_scoring import PromptTooLong, prompt_ids
    from zoo.prompts import Prompt

    _, tokenizer = load(decoders["gpt-neox"])
    prompt = Prompt.from_template("아주 긴 지시문입니다 " * 5 + "{text} 답:", [])
    with pytest.raises(PromptTooLong) as refused:
        prompt_ids(tokenizer, prompt, "텍스트", 10)
    assert "raise training.max_length by at least" in str(refused.value)


def test_braces_in_texts_and_label_words_are_never_placeholders():
    from zoo.prompts import Prompt

    prompt = Prompt.from_template('"{labels}" 중: {text} 답:', ["{text}", "웹"])
    assert prompt.render("a {labels} b {text}") == '"{text}, 웹" 중: a {labels} b {text} 답:'


# --- training -----------------------------------------------------------------------------------


def label_words_run(directory: Path, name: str, entry: str, **training) -> dict:
    settings = {
        "max_steps": 120,
        "batch_size": 16,
        "learning_rate": 3e-3,
        "lr_scheduler": "constant",
        "max_length": 48,
        "early_stopping_patience": 0,
        **training,
    }
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
    words = ", ".join(f'{label} = "{w}"' for label, w in WORDS.items())
    recipe = directory / f"{name}.toml"
    recipe.write_text(
        f'[run]\nname = "{name}"\nseed = 42\noutput_dir = "runs"\n\n'
        f'[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = 0.2\n\n'
        f'[[models]]\n{entry}\nhead = "label-words"\nprompt = {json.dumps(PROMPT)}\n'
        f"label_words = {{ {words} }}\n\n[training]\n{lines}\n",
        encoding="utf-8",
    )
    return run_json(recipe)


@pytest.mark.slow
def test_a_tiny_gpt_neox_learns_the_keyword_task_with_label_words(
    keyword_task,  # noqa: F811
    decoders,
    one_thread,  # noqa: F811
    tmp_path,
):
    entry = f'model = "koalpaca-5.8b"\ncheckpoint = "{decoders["gpt-neox"]}"'
    run = label_words_run(keyword_task, "neox-words", entry)
    assert run["status"] == "ok"
    assert run["metrics"]["test"]["accuracy"] >= 0.9
    run_dir = Path(run["run_dir"])
    rows = read_rows(run_dir / "predictions.csv")
    assert {r["predicted"] for r in rows} <= set(KEYWORDS)
    saved = json.loads((run_dir / "model" / "label_words.json").read_text(encoding="utf-8"))
    assert saved["words"] == [WORDS[label] for label in sorted(KEYWORDS)]
    assert saved["template"] == PROMPT

    # zoo predict scores the saved model's label words as the run did.
    texts = tmp_path / "texts.csv"
    test_rows = read_rows(keyword_task / "test.csv")
    with texts.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["text"], *[[r["text"]] for r in test_rows]])
    out = tmp_path / "predicted.csv"
    args = ["predict", str(run_dir), "--input", str(texts), "--output", str(out), "--proba"]
    assert zoo.cli.main(args) == 0
    predicted = read_rows(out)
    assert [r["label"] for r in predicted] == [r["predicted"] for r in rows]
    for row in predicted:
        total = sum(float(row[f"proba_{label}"]) for label in KEYWORDS)
        assert total == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_a_tiny_llama_learns_the_keyword_task_with_label_words(
    keyword_task,  # noqa: F811
    decoders,
    one_thread,  # noqa: F811
):
    entry = f'model = "llama-3.2-1b"\ncheckpoint = "{decoders["llama"]}"'
    run = label_words_run(keyword_task, "llama-words", entry)
    assert run["status"] == "ok"
    assert run["metrics"]["test"]["accuracy"] >= 0.9
    rows = read_rows(Path(run["run_dir"]) / "predictions.csv")
    assert {r["predicted"] for r in rows} <= set(KEYWORDS)


def test_the_loss_reads_the_answer_and_its_end_token_and_never_the_padding(decoders):
    from zoo.engine.label_words import IGNORED, AnswerCollator, Answers, training_rows
    from zoo.prompts import Prompt

    _, tokenizer = load(decoders["gpt-neox"])
    answers = Answers(Prompt.from_template(PROMPT, list(WORDS.values())), tuple(WORDS.values()))
    rows = training_rows(tokenizer, answers, ["서버 왜", "코드"], [1, 0], max_length=48)
    batch = AnswerCollator(tokenizer.pad_token_id)(rows)
    eos = tokenizer.eos_token_id
    assert tokenizer.pad_token_id == eos  # GPT-NeoX pads with its end-of-text token
    for row, label in zip(range(2), (1, 0), strict=True):
        targets = [t for t in batch["labels"][row].tolist() if t != IGNORED]
        words = tokenizer(list(WORDS.values())[label], add_special_tokens=False)["input_ids"]
        assert targets == words + [eos]  # the answer, then the one end-of-text token it ends with
    # The shorter row's padding is the same token, but masked out of attention and of the loss.
    short = int(batch["attention_mask"][1].sum())
    assert short < batch["input_ids"].shape[1]
    assert (batch["labels"][1, short:] == IGNORED).all()
    assert (batch["input_ids"][1, short:] == eos).all()


# --- refused before anything loads ------------------------------------------------------------


def check_problems(tmp_path: Path, entry: str) -> list[str]:
    """The problems zoo finds before training in a recipe with this [[models]] entry."""
    from tiny_models import write_demo_slice

    from zoo.errors import RecipeError
    from zoo.plugins import get_plugin_manager
    from zoo.preflight import check_before_training
    from zoo.recipe import load_recipe
    from zoo.registry import collect_models

    write_demo_slice(tmp_path, train=40, test=10)
    path = tmp_path / "recipe.toml"
    path.write_text(
        f'[run]\nname = "r"\noutput_dir = "out"\n\n[data]\ntrain = "train.csv"\n'
        f'test = "test.csv"\n\n[[models]]\n{entry}\n',
        encoding="utf-8",
    )
    registry = collect_models(get_plugin_manager(entry_points=False))
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    try:
        check_before_training(recipe, registry, ("code", "remote", "system", "theory", "web"))
    except RecipeError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_label_words_on_an_encoder_are_refused_before_anything_loads(tmp_path):
    [problem] = check_problems(tmp_path, 'model = "finbert"\nhead = "label-words"')
    assert problem.startswith("models[0].head: 'finbert' is a bert encoder: label words need a")


def test_label_words_for_labels_the_data_lacks_or_twice_the_same_words_are_refused(tmp_path):
    entry = 'model = "koalpaca-5.8b"\nmethod = "zero-shot"\nlabel_words = {{ {} }}'
    [unknown] = check_problems(tmp_path, entry.format('cod = "코드"'))
    assert unknown.startswith("models[0].label_words: names 'cod', which data.train has no rows")
    [twice] = check_problems(tmp_path, entry.format('code = "web"'))
    assert "'code' and 'web' would both be answered 'web'" in twice


def test_what_only_a_classification_head_can_do_is_refused_for_label_words(tmp_path):
    entry = (
        'model = "koalpaca-5.8b"\nhead = "label-words"\nclass_weights = "balanced"\n'
        'truncation = "tail"'
    )
    problems = check_problems(tmp_path, entry)
    assert [p.split(":")[0] for p in problems] == [
        "models[0].class_weights",
        "models[0].truncation",
    ]


def test_a_label_words_lora_adapter_reloads_and_predicts_what_its_run_predicted(
    keyword_task,  # noqa: F811
    decoders,
    one_thread,  # noqa: F811
    tmp_path,
):
    entry = f'model = "koalpaca-5.8b"\nmethod = "lora"\ncheckpoint = "{decoders["gpt-neox"]}"'
    run = label_words_run(keyword_task, "neox-lora-words", entry, max_steps=8)
    assert run["status"] == "ok"
    model_dir = Path(run["run_dir"]) / "model"
    assert (model_dir / "adapter_config.json").exists()
    assert json.loads((model_dir / "adapter_config.json").read_text())["task_type"] == "CAUSAL_LM"
    rows = read_rows(Path(run["run_dir"]) / "predictions.csv")
    texts = tmp_path / "texts.csv"
    with texts.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["text"], *[[r["text"]] for r in rows]])
    out = tmp_path / "predicted.csv"
    argv = ["predict", run["run_dir"], "--input", str(texts), "--output", str(out), "--proba"]
    assert zoo.cli.main(argv) == 0
    predicted = read_rows(out)
    assert [r["label"] for r in predicted] == [r["predicted"] for r in rows]


def test_a_damaged_label_words_file_is_refused_with_what_to_do(tmp_path):
    from zoo.engine.label_words import saved_answers
    from zoo.rundir import LABEL_WORDS, RunDirError

    (tmp_path / LABEL_WORDS).write_text('{"prompt": {"before": "Q: "}, "words": ["a"]}')
    with pytest.raises(RunDirError, match="is not the label words zoo wrote"):
        saved_answers(tmp_path, ["a"])
    (tmp_path / LABEL_WORDS).write_text(
        '{"prompt": {"before": "Q: ", "after": " A:"}, "words": ["a"]}'
    )
    with pytest.raises(RunDirError, match="lists 1 label words for the run's 2 labels"):
        saved_answers(tmp_path, ["a", "b"])
    assert saved_answers(tmp_path, ["a"]).prompt.render("x") == "Q: x A:"
    # What run.json says the run trained must agree with the model directory: a causal LM read
    # as a classifier would predict with a random head.
    with pytest.raises(RunDirError, match="says it trained a classification head, but"):
        saved_answers(tmp_path, ["a"], label_words=False)
    (tmp_path / LABEL_WORDS).unlink()
    with pytest.raises(RunDirError, match="says it trained label words, but .* is missing"):
        saved_answers(tmp_path, ["a"], label_words=True)
    assert saved_answers(tmp_path, ["a"], label_words=False) is None


def test_a_hub_decoder_gets_the_decoder_methods_and_pads_with_its_end_token(decoders):
    from zoo.hub_models import hub_spec
    from zoo.memory.families import builtin_families

    spec = hub_spec("hub:someone/tiny-neox", decoders["gpt-neox"], builtin_families())
    assert spec.resources.methods == ("full", "lora", "qlora", "zero-shot", "few-shot")
    assert spec.resources.lora_targets == ("query_key_value",)
    assert spec.tokenizer.pad_token == "eos"  # its config names no pad token


def test_a_hub_decoder_trains_label_words_with_lora_from_its_checkpoint(
    keyword_task,  # noqa: F811
    decoders,
    one_thread,  # noqa: F811
):
    entry = (
        f'model = "hub:someone/tiny-neox"\nmethod = "lora"\ncheckpoint = "{decoders["gpt-neox"]}"'
    )
    run = label_words_run(keyword_task, "hub-words", entry, max_steps=4)
    assert run["status"] == "ok"
    assert json.loads((Path(run["run_dir"]) / "run.json").read_text())["head"] == "label-words"


def test_label_words_are_refused_for_a_plugin_that_loads_its_model_itself(tmp_path):
    import attrs
    from tiny_models import write_demo_slice

    from zoo.errors import RecipeError
    from zoo.plugins import get_plugin_manager
    from zoo.preflight import check_before_training
    from zoo.recipe import load_recipe
    from zoo.registry import RegisteredModel, collect_models

    registry = collect_models(get_plugin_manager(entry_points=False))
    spec = registry.models["koalpaca-5.8b"].spec
    own = attrs.evolve(spec, loader=lambda request: None)  # a classifier loader of its own
    registry.models["koalpaca-5.8b"] = RegisteredModel(own, "test")
    write_demo_slice(tmp_path, train=40, test=10)
    path = tmp_path / "recipe.toml"
    path.write_text(
        '[run]\nname = "r"\noutput_dir = "out"\n\n[data]\ntrain = "train.csv"\n'
        'test = "test.csv"\n\n[[models]]\nmodel = "koalpaca-5.8b"\nhead = "label-words"\n',
        encoding="utf-8",
    )
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    with pytest.raises(RecipeError, match="loads it with a loader of its own, which builds"):
        check_before_training(recipe, registry, ("code", "remote", "system", "theory", "web"))


def test_label_words_keyed_in_another_normal_form_than_the_data_are_refused_not_ignored():
    import unicodedata

    from zoo.prompts import unknown_label_words

    labels = ("코드", "웹")  # the data's labels, NFC
    decomposed = unicodedata.normalize("NFD", "코드")
    assert decomposed != "코드"
    # An NFD key names no label: refused by preflight, never silently answered with the name.
    assert unknown_label_words(labels, {decomposed: "프로그램"}) == [decomposed]
    assert unknown_label_words(labels, {"코드": "프로그램"}) == []
