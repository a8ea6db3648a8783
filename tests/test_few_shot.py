"""method = "few-shot": training examples of every class in the prompt, chosen by the seed and
fitted into training.max_length (zoo.shots, zoo.engine.few_shot)."""

from __future__ import annotations

import csv
import json
import random
import unicodedata
from types import SimpleNamespace

import pytest
from test_seed_models import ROOT, data, registry, run, write_recipe  # noqa: F401 (fixtures)
from tiny_models import demo_texts

from zoo.data import LabelledTexts, Splits
from zoo.errors import RecipeError
from zoo.prompts import DEFAULT_PROMPT, Prompt
from zoo.recipe import load_recipe
from zoo.rundir import RunDirError, read_run
from zoo.shots import SEPARATOR, choose_shots, few_shot_prompt, per_class

LABELS = ("code", "remote", "system", "theory", "web")


def labelled(prefix: str, per_label: int, labels=LABELS) -> LabelledTexts:
    texts, names = [], []
    for label in labels:
        for i in range(per_label):
            texts.append(f"{prefix} {label} 글 {i}")
            names.append(label)
    return LabelledTexts(tuple(texts), tuple(names))


def shuffled(rows: LabelledTexts, seed: int) -> LabelledTexts:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return rows.take(order)


@pytest.fixture(scope="module")
def tokenizer(tiny_neox):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_neox)


@pytest.fixture(scope="module")
def tiny_neox(tmp_path_factory):
    from tiny_models import save_tiny_gpt_neox

    return save_tiny_gpt_neox(tmp_path_factory.mktemp("neox"), demo_texts())


def job(train: LabelledTexts, *, shots: int, seed: int = 1, max_length: int = 512, prompt=None):
    """What zoo.engine.few_shot reads of a TrainJob."""
    splits = Splits(
        train=train,
        validation=labelled("validation", 2),
        test=labelled("test", 2),
        labels=LABELS,
    )
    template = prompt or DEFAULT_PROMPT
    return SimpleNamespace(
        splits=splits,
        shots=shots,
        seed=seed,
        settings=SimpleNamespace(max_length=max_length),
        answer_words=lambda: list(LABELS),
        prompt_for_labels=lambda: Prompt.from_template(template, LABELS),
    )


# --- choosing the shots ---------------------------------------------------------------------------


def test_the_shots_are_k_training_rows_of_each_class(tokenizer):
    from zoo.engine.few_shot import job_shots

    fitted = job_shots(job(labelled("train", 6), shots=3, prompt="{text} = "), tokenizer)
    assert per_class(fitted.shots, LABELS) == dict.fromkeys(LABELS, 3)
    assert all(s.text.startswith("train ") and s.label in s.text for s in fitted.shots)
    before = fitted.prompt.before
    assert "validation" not in before and "test" not in before
    for shot in fitted.shots:  # each in the prompt's own format, answered with its words
        assert f"{shot.text} = {shot.words}{SEPARATOR}" in before


def test_a_seed_picks_the_same_shots_whatever_the_order_of_the_rows():
    train = labelled("train", 10)
    first = choose_shots(train, LABELS, LABELS, 3, seed=7)
    again = choose_shots(train, LABELS, LABELS, 3, seed=7)
    reordered = choose_shots(shuffled(train, 0), LABELS, LABELS, 3, seed=7)
    assert first == again
    assert [s.text for s in reordered] == [s.text for s in first]
    other = choose_shots(train, LABELS, LABELS, 3, seed=8)
    assert {s.text for s in other} != {s.text for s in first}


def test_the_examples_go_in_rounds_whose_order_does_not_favour_a_label():
    shots = choose_shots(labelled("train", 10), LABELS, LABELS, 4, seed=3)
    rounds = [[s.label for s in shots if s.round == r] for r in range(4)]
    assert all(sorted(r) == list(LABELS) for r in rounds)  # one of each class per round
    lasts = {choose_shots(labelled("train", 10), LABELS, LABELS, 2, seed=s)[-1].label
             for s in range(20)}  # fmt: skip
    assert len(lasts) > 2  # no label always comes last, nearest the row


def test_a_class_with_fewer_rows_gives_all_it_has_and_says_so(tokenizer):
    from zoo.engine.few_shot import job_shots, shots_record

    rows = labelled("train", 5, LABELS[:4])
    few = labelled("train", 2, LABELS[4:])
    train = LabelledTexts(rows.texts + few.texts, rows.labels + few.labels)
    fitted = job_shots(job(train, shots=4, prompt="{text} = "), tokenizer)
    assert per_class(fitted.shots, LABELS) == {**dict.fromkeys(LABELS[:4], 4), "web": 2}
    record = shots_record(fitted, LABELS, 4, 512)
    assert record["in_prompt"]["web"] == 2
    assert record["notices"] == [
        "few-shot: label 'web' has 2 training rows, fewer than the 4 examples per class of the "
        "others: the prompt shows all of them"
    ]
    assert {e["row"] for e in record["examples"]} <= set(train.rows)


# --- within the model's context -------------------------------------------------------------------


def test_a_tight_max_length_cuts_and_drops_examples_and_keeps_the_rows_prompt(tokenizer):
    from zoo.engine.few_shot import MIN_TEXT_TOKENS, job_shots, shots_record
    from zoo.engine.label_scoring import prompt_ids, token_ids

    texts, names = [], []
    for i, text in enumerate(demo_texts()[:200]):
        texts.append(text)
        names.append(LABELS[i % 5])
    train = LabelledTexts(tuple(texts), tuple(names))
    roomy = job_shots(job(train, shots=2, max_length=4096), tokenizer)
    assert roomy.dropped == 0 and not any(roomy.cut)  # all of them, whole

    fitted = job_shots(job(train, shots=2, max_length=600), tokenizer)
    assert fitted.dropped == 5 and per_class(fitted.shots, LABELS) == dict.fromkeys(LABELS, 1)
    assert any(fitted.cut) and fitted.budget >= MIN_TEXT_TOKENS
    plain = Prompt.from_template(DEFAULT_PROMPT, LABELS)
    assert fitted.prompt.before.endswith(plain.before) and fitted.prompt.after == plain.after
    assert fitted.prompt.before.count(plain.before) == 6  # the instructions whole, every time
    for shot, tokens, cut in zip(fitted.shots, fitted.tokens, fitted.cut, strict=True):
        assert tokens == (fitted.budget if cut else len(token_ids(tokenizer, shot.text)))
        assert shot.text[:8] in fitted.prompt.before
    # The row's own text keeps at least the budget, the answer cue stays, and the whole prompt
    # fits with the longest answer.
    longest = max(len(token_ids(tokenizer, w)) for w in LABELS)
    ids = prompt_ids(tokenizer, fitted.prompt, demo_texts()[300] * 10, 600 - longest)
    assert len(ids) + longest <= 600
    before, after = (token_ids(tokenizer, part) for part in (fitted.prompt.before, plain.after))
    assert ids[: len(before)] == before and ids[len(ids) - len(after) :] == after
    assert len(ids) - len(before) - len(after) >= fitted.budget
    notices = shots_record(fitted, LABELS, 2, 600)["notices"]
    assert notices[0] == (
        "few-shot: 2 examples per class do not fit training.max_length = 600; the prompt holds "
        "1 per class (5 examples left out): raise training.max_length or lower shots"
    )
    assert notices[1].startswith("few-shot: ") and "cut to" in notices[1]


def test_a_max_length_too_small_for_one_example_of_each_class_is_refused(tokenizer):
    from zoo.engine.few_shot import ShotsTooLong, job_shots

    with pytest.raises(ShotsTooLong) as refused:
        job_shots(job(labelled("train", 4), shots=2, max_length=200), tokenizer)
    assert refused.value.message.startswith(
        "few-shot: one example of each class (5) with 16 tokens of text each"
    )
    assert "more than training.max_length = 200" in refused.value.message
    assert refused.value.hint.startswith("raise training.max_length to at least ")


# --- nasty input ----------------------------------------------------------------------------------

NASTY = (
    "braces {text} and {labels} stay",
    "quotes \"double\" and 'single' and `back`",
    "two\nlines\r\nand a tab\there",
    unicodedata.normalize("NFD", "한국어 자모로 나뉜 글"),
    "{0} {} {{text}} %s $x",
)


def test_example_texts_go_in_verbatim_never_as_placeholders(tokenizer):
    from zoo.engine.few_shot import job_shots

    train = LabelledTexts(NASTY, LABELS)
    fitted = job_shots(job(train, shots=1, max_length=2048), tokenizer)
    rendered = fitted.prompt.render("ROW")
    for text in NASTY:
        assert f"{text}\n\n### 답변: " in rendered  # verbatim, NFD included
    assert unicodedata.normalize("NFD", "한국어") in rendered
    assert rendered.endswith("\n\nROW\n\n### 답변: ")
    assert not any(fitted.cut)
    # Nothing in them is read: the examples are the texts as they are, in the prompt's format.
    texts = [shot.text for shot in fitted.shots]
    expected = "".join(f"<{t}>{s.words}\n\n" for s, t in zip(fitted.shots, texts, strict=True))
    assert few_shot_prompt(Prompt("<", ">"), fitted.shots, texts).before == expected + "<"


# --- recipes and runs -----------------------------------------------------------------------------


def test_shots_without_few_shot_is_a_recipe_problem(registry, data):  # noqa: F811
    entry = 'model = "koalpaca-5.8b"\nmethod = "zero-shot"\nshots = 2'
    path = write_recipe(data, entry)
    with pytest.raises(RecipeError) as error:
        load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    assert [p.path for p in error.value.problems] == ["models[0].shots"]
    assert error.value.problems[0].message.startswith(
        "shots is the number of examples per class of method = 'few-shot', not of 'zero-shot'"
    )


def test_few_shot_is_estimated_as_evaluation_at_its_longer_max_length(registry):  # noqa: F811
    import attrs

    from zoo.memory.check import check_entry
    from zoo.memory.probe import named_gpu

    path = ROOT / "recipes" / "koalpaca-lora.toml"
    recipe = load_recipe(path, model_names=registry.names(), model_methods=registry.methods())
    zero = recipe.models[1]
    assert zero.method == "zero-shot"
    few = attrs.evolve(zero, name="few", method="few-shot", shots=4, max_length=2048)
    zero_check = check_entry(recipe, zero, registry, named_gpu("40GiB"))
    few_check = check_entry(recipe, few, registry, named_gpu("40GiB"))
    assert few_check.method == "few-shot" and few_check.estimate.phase == "evaluation"
    assert few_check.estimate.total > zero_check.estimate.total


def test_a_few_shot_run_gives_one_label_per_row_and_records_its_examples(
    registry,  # noqa: F811
    tiny_neox,
    data,  # noqa: F811
):
    entry = (
        f'model = "koalpaca-5.8b"\nmethod = "few-shot"\nshots = 2\ncheckpoint = "{tiny_neox}"\n'
        'prompt = "글: {text}\\n분류: "'
    )
    [result], failures = run(write_recipe(data, entry, max_length=512), registry)
    assert failures == []
    assert result.status == "ok"
    with (result.run_dir / "predictions.csv").open(encoding="utf-8", newline="") as f:
        predicted = [row["predicted"] for row in csv.DictReader(f)]
    assert len(predicted) == 15
    assert set(predicted) <= set(LABELS)
    record = json.loads((result.run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["method"] == "few-shot"
    assert record["shots"] == {"shots": 2, "in_prompt": dict.fromkeys(LABELS, 2)}
    assert record["truncation"] is None and record["checkpoints"] is False
    shots = json.loads((result.run_dir / "shots.json").read_text(encoding="utf-8"))
    assert len(shots["examples"]) == 10
    prompt = (result.run_dir / "prompt.txt").read_text(encoding="utf-8")
    assert prompt.count("분류: ") == 11 and prompt.endswith("글: {text}\n분류: ")
    with (data / "train.csv").open(encoding="utf-8", newline="") as f:
        train_rows = list(csv.DictReader(f))
    for example in shots["examples"]:
        row = train_rows[example["row"]]
        assert row["label"] == example["label"]
        assert f"글: {row['text'][:8]}" in prompt
        if not example["cut"]:
            assert f"글: {row['text']}\n분류: {example['label']}\n\n" in prompt
    with (result.run_dir / "predictions.csv").open(encoding="utf-8", newline="") as f:
        test_texts = {row["text"] for row in csv.DictReader(f)}
    assert not any(f"글: {text}\n" in prompt for text in test_texts)
    assert not (result.run_dir / "model").exists()  # nothing was trained
    with pytest.raises(RunDirError) as no_model:  # zoo predict has nothing to load
        read_run(result.run_dir, needs=("model",))
    assert "a few-shot run trains and saves nothing" in no_model.value.message


def test_a_few_shot_run_that_cannot_fit_is_refused_before_scoring(registry, tiny_neox, data):  # noqa: F811
    entry = f'model = "koalpaca-5.8b"\nmethod = "few-shot"\ncheckpoint = "{tiny_neox}"'
    [result], failures = run(write_recipe(data, entry, max_length=160), registry)
    assert result.status == "refused"
    assert result.reason.startswith("few-shot: one example of each class (5)")
    assert not (data / "out" / "seed").exists()  # refused before the run directory
