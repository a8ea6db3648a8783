"""Text transforms (`data.preprocess`): registered through a hook, applied in the recipe's order
to every text as it is read, recorded in the run directory, and applied again by zoo predict."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import attrs
import pytest

import zoo
from zoo.cli import main
from zoo.data import load_units
from zoo.errors import DataError, PluginError, RecipeError, UsageError
from zoo.recipe import DataSection, load_recipe
from zoo.registry import RegisteredModel, collect_models
from zoo.transforms import (
    BUILTIN_TRANSFORMS,
    TransformRegistry,
    builtin_transforms,
    collect_transforms,
)


def transform(name: str) -> zoo.TextTransform:
    return next(t for t in BUILTIN_TRANSFORMS if t.name == name)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("nfc", unicodedata.normalize("NFD", "한국어"), "한국어"),
        ("collapse-whitespace", "pip \t install\n\n  torch ", "pip install torch"),
        (
            "mask-urls",
            "see https://example.com/a?b=1 and www.naver.com. (or http://x.kr/p)",
            "see [URL] and [URL]. (or [URL])",
        ),
        ("mask-emails", "메일: kim.min+zoo@snu.ac.kr.", "메일: [EMAIL]."),
        (
            "mask-numbers",
            "오류 코드 500번, v3.11, 1,000 rows",
            "오류 코드 [NUM]번, v[NUM], [NUM] rows",
        ),
        ("mask-numbers", "no digits", "no digits"),
    ],
)
def test_the_builtin_transforms(name, text, expected):
    assert transform(name).apply(text) == expected


def test_a_transform_name_is_lower_case_words_joined_by_dashes():
    with pytest.raises(ValueError, match="lower-case words joined by '-'"):
        zoo.TextTransform(name="Mask_URLs", description="", apply=str)


# --- the hook -------------------------------------------------------------------------------------


class Shout:
    @zoo.hookimpl
    def register_text_transforms(self, register):
        register(zoo.TextTransform(name="shout", description="upper case", apply=str.upper))


def test_hook_register_text_transforms(pm, tmp_path):
    pm.register(Shout(), name="shouting")
    pm.register(zoo.transforms, name="zoo.transforms")
    registry = collect_transforms(pm)
    assert "shout" in registry.names() and "mask-urls" in registry.names()
    assert registry.registered["shout"].plugin == "shouting"

    (tmp_path / "train.csv").write_text(
        "text,label\n" + "".join(f"row {i} at www.a.kr,{'xy'[i % 2]}\n" for i in range(10)),
        encoding="utf-8",
    )
    recipe_path = tmp_path / "recipe.toml"
    recipe_path.write_text(
        '[run]\nname = "t"\n[data]\ntrain = "train.csv"\npreprocess = ["mask-urls", "shout"]\n'
        '[[models]]\nmodel = "tfidf"\n',
        encoding="utf-8",
    )
    recipe = load_recipe(recipe_path, transform_names=registry.names())
    pipeline = registry.pipeline(recipe.data.preprocess)
    [splits] = load_units(recipe.data, tmp_path, (1,), pipeline).values()
    texts = splits.train.texts + splits.validation.texts
    assert sorted(texts) == sorted(f"ROW {i} AT [URL]" for i in range(10))  # in order: masked first
    assert "data.train: data.preprocess (mask-urls, shout) changed 10 of 10 texts" in splits.notices


def test_one_name_registered_by_two_plugins_is_an_error(pm):
    class Again(Shout):
        pass

    pm.register(Shout(), name="first")
    pm.register(Again(), name="second")
    with pytest.raises(PluginError, match="text transform 'shout' is registered twice"):
        collect_transforms(pm)


def test_a_transform_that_returns_no_string_names_its_plugin(tmp_path):
    registry = TransformRegistry()
    registry.add(zoo.TextTransform(name="broken", description="", apply=len), "badplugin")
    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    with pytest.raises(PluginError) as raised:
        load_units(DataSection(train="train.csv"), tmp_path, (1,), registry.pipeline(["broken"]))
    assert "text transform 'broken' of plugin 'badplugin' returned int, not a string" in str(
        raised.value
    )


def test_a_transform_that_empties_a_text_names_the_lines(tmp_path):
    (tmp_path / "train.csv").write_text(
        'text,label\nhttp://a.kr,x\nkeep me,y\n"a text on\ntwo lines",x\nhttps://b.kr,y\n',
        encoding="utf-8",
    )
    registry = builtin_transforms()
    registry.add(
        zoo.TextTransform(name="drop-urls", description="", apply=lambda t: t.replace("[URL]", "")),
        "test",
    )
    pipeline = registry.pipeline(["mask-urls", "drop-urls"])
    with pytest.raises(DataError) as raised:
        load_units(DataSection(train="train.csv"), tmp_path, (1,), pipeline)
    assert str(raised.value).startswith(
        f"data.train: data.preprocess (mask-urls, drop-urls) leaves 2 rows of "
        f"{tmp_path / 'train.csv'} with an empty text (lines 2, 6)"
    )


def test_masking_that_makes_texts_equal_is_checked_like_any_duplicate(tmp_path):
    rows = "".join(f"error {400 + i},{'xy'[i % 2]}\n" for i in range(8))
    (tmp_path / "train.csv").write_text("text,label\n" + rows, encoding="utf-8")
    pipeline = builtin_transforms().pipeline(["mask-numbers"])
    [splits] = load_units(DataSection(train="train.csv"), tmp_path, (1,), pipeline).values()
    assert splits.notices == (
        "data.train: data.preprocess (mask-numbers) changed 8 of 8 texts",
        "data.train: 1 text appears with different labels (e.g. 'x' on line 2, 'y' on line 3)",
        "data.train: 6 rows repeat an earlier row (e.g. line 4 repeats line 2): a validation "
        "split may score texts that training saw",
    )


# --- the recipe -----------------------------------------------------------------------------------


def recipe_with(tmp_path: Path, preprocess: str) -> Path:
    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    path = tmp_path / "recipe.toml"
    path.write_text(
        f'[run]\nname = "t"\n[data]\ntrain = "train.csv"\npreprocess = {preprocess}\n'
        '[[models]]\nmodel = "tfidf"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("preprocess", "problem"),
    [
        (
            '["mask-url"]',
            "data.preprocess: unknown text transform 'mask-url' (did you mean 'mask-urls'? "
            "known: nfc, collapse-whitespace, mask-urls, mask-emails, mask-numbers; a plugin can "
            "add more)",
        ),
        ('"nfc"', "data.preprocess: expected a list of text transform names"),
        ('["nfc", "nfc"]', "data.preprocess: names a transform twice: ['nfc', 'nfc']"),
    ],
)
def test_a_wrong_preprocess_list_is_a_recipe_problem(tmp_path, preprocess, problem):
    with pytest.raises(RecipeError) as raised:
        load_recipe(recipe_with(tmp_path, preprocess))
    assert problem in str(raised.value)


def test_no_preprocess_leaves_the_recipe_as_it_was():
    # Unset, the key is left out of the recipe's hash and of run directories' recipes, so runs
    # recorded before it existed still compare and resume.
    from zoo.recipe import recipe_to_dict

    data = DataSection(train="train.csv")
    assert data.preprocess is None
    assert "preprocess" not in recipe_to_dict(data)


# --- training and predict -------------------------------------------------------------------------


def numbered(tmp_path: Path) -> Path:
    """A recipe whose texts carry numbers, masked by data.preprocess."""
    lines = "".join(
        f"{word} failed with code {100 + i},{label}\n"
        for i, (word, label) in enumerate([("deploy", "ops"), ("import", "code")] * 10)
    )
    (tmp_path / "train.csv").write_text("text,label\n" + lines, encoding="utf-8")
    (tmp_path / "test.csv").write_text(
        "text,label\ndeploy failed with code 7,ops\nimport failed with code 9,code\n",
        encoding="utf-8",
    )
    path = tmp_path / "recipe.toml"
    path.write_text(
        '[run]\nname = "t"\n[data]\ntrain = "train.csv"\ntest = "test.csv"\n'
        'preprocess = ["mask-numbers"]\n[[models]]\nmodel = "tfidf"\n',
        encoding="utf-8",
    )
    return path


def test_the_run_directory_records_the_list_and_predict_applies_it(tmp_path, capsys):
    from zoo.plugins import get_plugin_manager
    from zoo.predicting import predict_run
    from zoo.report import NoProgress

    assert main(["run", str(numbered(tmp_path)), "--json"]) == 0
    run_dir = Path(json.loads(capsys.readouterr().out)["runs"][0]["run_dir"])
    assert 'preprocess = [\n    "mask-numbers",\n]' in (run_dir / "recipe.toml").read_text()
    assert json.loads((run_dir / "run.json").read_text())["preprocess"] == ["mask-numbers"]
    assert "deploy failed with code [NUM]" in (run_dir / "predictions.csv").read_text()

    # zoo predict hands the model the texts as training saw them.
    registry = collect_models(get_plugin_manager())
    seen: list[str] = []
    spec = registry.models["tfidf"].spec
    real = spec.engine.predict

    def spy(model_dir, texts):
        seen.extend(texts)
        return real(model_dir, texts)

    spied = attrs.evolve(spec, engine=attrs.evolve(spec.engine, predict=spy))
    registry.models["tfidf"] = RegisteredModel(spied, "spy")
    new = tmp_path / "new.csv"
    new.write_text("text\nimport failed with code 31337\nno digits here\n", encoding="utf-8")
    predict_run(run_dir, new, tmp_path / "out.csv", registry=registry, progress=NoProgress())
    assert seen == ["import failed with code [NUM]", "no digits here"]


def test_predict_refuses_a_run_whose_transform_is_not_installed(tmp_path, capsys):
    assert main(["run", str(numbered(tmp_path)), "--json"]) == 0
    run_dir = Path(json.loads(capsys.readouterr().out)["runs"][0]["run_dir"])
    recipe = run_dir / "recipe.toml"
    recipe.write_text(recipe.read_text().replace('"mask-numbers"', '"mask-paths"'))
    new = tmp_path / "new.csv"
    new.write_text("text\nhello\n", encoding="utf-8")
    code = main(["predict", str(run_dir), "--input", str(new), "--output", str(tmp_path / "o.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert (
        f"error: {recipe}: data.preprocess names the text transform 'mask-paths', which no "
        "installed plugin registers"
    ) in err
    assert not (tmp_path / "o.csv").exists()


def test_an_unregistered_name_from_a_library_caller_is_a_clear_error():
    with pytest.raises(UsageError, match="names the text transform 'shout', which no installed"):
        builtin_transforms().pipeline(["shout"])
