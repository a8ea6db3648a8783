"""Bad input (issue 6): each case runs the real command line on files made in `tmp_path` and
gets one message that says what is wrong, where and how to fix it; a fixed exit code; no
traceback unless --debug; and nothing written: no run directory, no results store, no file the
case did not write itself.

Recipe cases run through both `zoo validate` and `zoo run`; data cases through `zoo run` with
the built-in `tfidf` model, which needs no weights: a case that passed the data checks would
train in a second, so every error here comes before training. A few positive cases show that
awkward but good files (cp949, a byte-order mark, very long texts, mixed line endings, a TSV
named .txt, empty texts with data.empty_texts = "drop") do train.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import textwrap
import unicodedata
from pathlib import Path

import attrs
import pytest

from zoo.cli import main
from zoo.data import load_splits
from zoo.recipe import DataSection


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """No third-party plugins, no terminal width or colour settings from the caller."""
    monkeypatch.setenv("ZOO_PLUGINS", "")
    for name in ("ZOO_BLOCK_PLUGINS", "COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder under `root`."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def zoo(capsys, *args: str) -> tuple[int, str, str]:
    """Run the command line in this process: exit code, stdout, stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


GOOD_TRAIN = "text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(10))
KOREAN_TRAIN = "text,label\n" + "".join(
    f"{text} {i},{label}\n"
    for i in range(5)
    for text, label in (("비밀번호를 잊어버렸어요", "계정"), ("결제가 두 번 됐어요", "결제"))
)
RUN = '[run]\nname = "bad"\n'
DATA = '[data]\ntrain = "train.csv"\n'
TFIDF = '[[models]]\nmodel = "tfidf"\n'
MINILM = '[[models]]\nmodel = "minilm"\n'
GOOD = RUN + DATA + TFIDF


# --- recipes: `zoo validate` and `zoo run` say the same, exit 2 and write nothing ---------------


@attrs.frozen
class RecipeCase:
    id: str
    recipe: str | bytes
    problems: tuple[str, ...]
    overrides: tuple[str, ...] = ()


RECIPE_CASES = [
    RecipeCase(
        "unknown-key-did-you-mean",
        RUN + DATA + "[training]\nepoch = 1\n" + TFIDF,
        ("training.epoch: unknown key (did you mean 'epochs'?)",),
    ),
    RecipeCase(
        "unknown-key-in-a-model-entry",
        GOOD + "learning_rte = 1e-4\n",
        ("models[0].learning_rte: unknown key (did you mean 'learning_rate'?)",),
    ),
    RecipeCase(
        "unknown-key-without-a-close-match-lists-the-keys",
        RUN + DATA + MINILM + 'method = "lora"\nlora = { r = 8, bias = "none" }\n',
        ("models[0].lora.bias: unknown key (expected one of: r, alpha, dropout, target_modules)",),
    ),
    RecipeCase(
        "unknown-section-did-you-mean",
        RUN + DATA + "[trainig]\nepochs = 1\n" + TFIDF,
        ("trainig: unknown section (did you mean 'training'?)",),
    ),
    RecipeCase(
        "unknown-section-lists-the-sections",
        RUN + DATA + "[optimizer]\nname = 'adamw'\n" + TFIDF,
        (
            "optimizer: unknown section "
            "(expected [run], [data], [models], [training], [distributed], [search], [executor])",
        ),
    ),
    RecipeCase(
        "float-for-int",
        RUN + DATA + "[training]\nbatch_size = 8.0\n" + TFIDF,
        ("training.batch_size: expected an integer, got float 8.0",),
    ),
    RecipeCase(
        "string-for-number",
        RUN + DATA + '[training]\nlearning_rate = "1e-4"\n' + TFIDF,
        ("training.learning_rate: expected a number, got string '1e-4'",),
    ),
    RecipeCase(
        "bool-for-int",
        RUN + DATA + "[training]\nepochs = true\n" + TFIDF,
        ("training.epochs: expected an integer, got boolean True",),
    ),
    RecipeCase(
        "int-for-bool",
        GOOD + "allow_pickle = 1\n",
        ("models[0].allow_pickle: expected true or false, got integer 1",),
    ),
    RecipeCase(
        "out-of-range-ratio",
        RUN + DATA + "[training]\nwarmup_ratio = 1.5\n" + TFIDF,
        ("training.warmup_ratio: must be at least 0 and below 1, got 1.5",),
    ),
    RecipeCase(
        "out-of-range-zero-epochs",
        RUN + DATA + "[training]\nepochs = 0\n" + TFIDF,
        ("training.epochs: must be at least 1, got 0",),
    ),
    RecipeCase(
        "out-of-range-negative-learning-rate",
        GOOD + "learning_rate = -1e-4\n",
        ("models[0].learning_rate: must be above 0, got -0.0001",),
    ),
    RecipeCase(
        "out-of-range-validation-fraction",
        RUN + DATA + "validation = 1.0\n" + TFIDF,
        (
            "data.validation: must be a fraction between 0 and 1, a file path or "
            "{ folds = K }, got float 1.0",
        ),
    ),
    RecipeCase(
        "not-a-plain-run-name",
        RUN.replace('"bad"', '"../elsewhere"') + DATA + TFIDF,
        ("run.name: must be a plain name without '/', '\\' or ':', got '../elsewhere'",),
    ),
    RecipeCase(
        "an-infinite-learning-rate",
        RUN + DATA + "[training]\nlearning_rate = inf\n" + TFIDF,
        ("training.learning_rate: expected a finite number, got float inf",),
    ),
    RecipeCase(
        "a-learning-rate-that-is-not-a-number",
        GOOD + "learning_rate = nan\n",
        ("models[0].learning_rate: expected a finite number, got float nan",),
    ),
    RecipeCase(
        "the-text-column-is-the-label-column",
        RUN + DATA + 'text_column = "label"\n' + TFIDF,
        (
            "data.label_column: is the same column as data.text_column ('label'): a model would "
            "learn to read its answer; name the column that holds the labels",
        ),
    ),
    RecipeCase(
        "a-run-name-that-is-the-results-store",
        RUN.replace('"bad"', '"zoo-results.sqlite"') + DATA + TFIDF,
        ("run.name: 'zoo-results.sqlite' is the name of zoo's results store; choose another name",),
    ),
    RecipeCase(
        "a-run-name-with-a-newline",
        RUN.replace('"bad"', '"two\\nlines"') + DATA + TFIDF,
        (
            "run.name: must be a folder name without control characters or spaces at either "
            "end, got 'two\\nlines'",
        ),
    ),
    RecipeCase(
        "a-run-name-too-long-for-a-folder",
        RUN.replace('"bad"', '"' + "가" * 100 + '"') + DATA + TFIDF,
        ("run.name: must be at most 200 bytes as UTF-8, got 300 bytes",),
    ),
    RecipeCase(
        "missing-required-keys",
        '[run]\nseed = 1\n[data]\ntest = "train.csv"\n' + TFIDF,
        (
            "data.train: required key is missing: training data file (CSV, TSV, .jsonl or "
            ".parquet), relative to the recipe",
            "run.name: required key is missing: name of the run; run directories go under "
            "OUTPUT_DIR/NAME/",
        ),
    ),
    RecipeCase(
        "missing-model-key",
        RUN + DATA + "[[models]]\nlearning_rate = 1e-4\n",
        (
            "models[0].model: required key is missing: a registered model name (see 'zoo "
            "models'), or any hub model by id: 'hub:ORG/NAME'",
        ),
    ),
    RecipeCase(
        "empty-recipe",
        "",
        (
            "data: required section is missing: add a [data] table",
            "models: add at least one [[models]] table naming a model to train",
            "run: required section is missing: add a [run] table",
        ),
    ),
    RecipeCase(
        "a-section-that-is-not-a-table",
        'data = "train.csv"\n' + RUN + TFIDF,
        ("data: expected a table, got string 'train.csv'",),
    ),
    RecipeCase(
        "lora-that-is-not-a-table",
        RUN + DATA + MINILM + 'method = "lora"\nlora = 8\n',
        ("models[0].lora: expected a table, got integer 8",),
    ),
    RecipeCase(
        "unknown-model-did-you-mean",
        RUN + DATA + '[[models]]\nmodel = "e5-smal"\n',
        ("models[0].model: unknown model 'e5-smal' (did you mean 'e5-small'? see 'zoo models')",),
    ),
    RecipeCase(
        "unknown-model-far-off",
        RUN + DATA + '[[models]]\nmodel = "gpt-5"\n',
        ("models[0].model: unknown model 'gpt-5' (see 'zoo models')",),
    ),
    RecipeCase(
        "no-models",
        RUN + DATA,
        ("models: add at least one [[models]] table naming a model to train",),
    ),
    RecipeCase(
        "empty-models-array",
        "models = []\n" + RUN + DATA,
        ("models: add at least one [[models]] table naming a model to train",),
    ),
    RecipeCase(
        "models-that-are-not-tables",
        'models = "tfidf"\n' + RUN + DATA,
        ("models: expected [[models]] tables, got string 'tfidf'",),
    ),
    RecipeCase(
        "a-model-entry-that-is-not-a-table",
        'models = ["tfidf"]\n' + RUN + DATA,
        ("models[0]: expected a table, got string 'tfidf'",),
    ),
    RecipeCase(
        "the-same-model-twice-without-names",
        GOOD + TFIDF,
        (
            "models[1]: 'tfidf' appears twice (first at models[0]); "
            'give each entry its own name = "..."',
        ),
    ),
    RecipeCase(
        "set-without-a-section",
        GOOD,
        ("--set epochs=1: expected SECTION.KEY=VALUE (or models[N].KEY=VALUE)",),
        overrides=("epochs=1",),
    ),
    RecipeCase(
        "set-without-a-value",
        GOOD,
        ("--set training.epochs: expected SECTION.KEY=VALUE (or models[N].KEY=VALUE)",),
        overrides=("training.epochs",),
    ),
    RecipeCase(
        "set-with-a-wrong-type",
        GOOD,
        ("training.epochs: expected an integer, got string 'two'",),
        overrides=("training.epochs=two",),
    ),
    RecipeCase(
        "set-an-unknown-key",
        GOOD,
        ("training.epoch: unknown key (did you mean 'epochs'?)",),
        overrides=("training.epoch=1",),
    ),
    RecipeCase(
        "set-models-without-an-index",
        GOOD,
        (
            '--set models.model="minilm": models is a list of [[models]] tables; name one by '
            "its index: models[0]",
        ),
        overrides=('models.model="minilm"',),
    ),
    RecipeCase(
        "set-a-model-entry-that-is-not-there",
        GOOD,
        ("--set models[1].epochs=1: the recipe has 1 [[models]] tables (models[0] to models[0])",),
        overrides=("models[1].epochs=1",),
    ),
    RecipeCase(
        "set-a-model-entry-with-a-wrong-type",
        GOOD,
        ("models[0].epochs: expected an integer, got float 1.5",),
        overrides=("models[0].epochs=1.5",),
    ),
    RecipeCase(
        "lora-settings-with-the-default-method",
        RUN + DATA + MINILM + "lora = { r = 8 }\n",
        (
            "models[0].lora: LoRA settings need method = 'lora' or 'qlora', not 'full'; "
            "set the method or remove the LoRA settings",
        ),
    ),
    RecipeCase(
        "lora-settings-with-method-full",
        RUN + DATA + MINILM + 'method = "full"\nlora = { r = 8 }\n',
        (
            "models[0].lora: LoRA settings need method = 'lora' or 'qlora', not 'full'; "
            "set the method or remove the LoRA settings",
        ),
    ),
    RecipeCase(
        "a-method-the-model-does-not-support",
        GOOD + 'method = "lora"\n',
        ("models[0].method: 'tfidf' supports 'full', not 'lora'",),
    ),
    RecipeCase(
        "qlora-for-a-model-without-it",
        RUN + DATA + MINILM + 'method = "qlora"\n',
        ("models[0].method: 'minilm' supports 'full', 'lora', not 'qlora'",),
    ),
    RecipeCase(
        "a-misspelled-method",
        GOOD + 'method = "lroa"\n',
        (
            "models[0].method: must be one of 'full', 'lora', 'qlora', 'zero-shot', 'few-shot', "
            "got string 'lroa' (did you mean 'lora'?)",
        ),
    ),
    RecipeCase(
        "an-optimizer-zoo-does-not-have",
        RUN + DATA + '[training]\noptimizer = "adam"\n' + TFIDF,
        (
            "training.optimizer: must be one of 'adamw', 'adamw-8bit', 'adafactor', 'sgd', "
            "got string 'adam' (did you mean 'adamw'?)",
        ),
    ),
    RecipeCase(
        "attention-set-from-the-command-line",
        GOOD,
        (
            "training.attention: must be one of 'sdpa', 'eager', got string 'sdp' "
            "(did you mean 'sdpa'?)",
        ),
        overrides=("training.attention=sdp",),
    ),
    RecipeCase(
        "empty-texts-with-a-bad-value",
        RUN + DATA + 'empty_texts = "skip"\n' + TFIDF,
        ("data.empty_texts: must be one of 'fail', 'drop', got string 'skip'",),
    ),
    RecipeCase(
        "empty-texts-with-a-boolean",
        RUN + DATA + "empty_texts = true\n" + TFIDF,
        ("data.empty_texts: must be one of 'fail', 'drop', got boolean True",),
    ),
    RecipeCase(
        "empty-texts-set-from-the-command-line",
        GOOD,
        (
            "data.empty_texts: must be one of 'fail', 'drop', got string 'dorp' "
            "(did you mean 'drop'?)",
        ),
        overrides=("data.empty_texts=dorp",),
    ),
    RecipeCase(
        "an-encoding-zoo-does-not-read",
        RUN + DATA + 'encoding = "latin-1"\n' + TFIDF,
        (
            "data.encoding: must be one of 'auto', 'utf-8', 'utf-8-sig', 'cp949', 'euc-kr', "
            "got string 'latin-1'",
        ),
    ),
    RecipeCase(
        "text-without-quotes",
        RUN + DATA + "[[models]]\nmodel = minilm\n",
        (
            "TOML syntax error: Invalid value (at line 6, column 9); "
            'text needs quotes: model = "minilm"',
        ),
    ),
    RecipeCase(
        "a-recipe-that-is-not-utf8",
        (RUN.replace("bad", "caf\u00e9") + DATA + TFIDF).encode("latin-1"),
        ("not UTF-8 text: line 2 has the byte 0xe9; save the recipe as UTF-8",),
    ),
    RecipeCase(
        "every-problem-at-once",
        RUN
        + DATA
        + "[trainig]\nepochs = 1\n[training]\nepochs = 2.5\nlr_scheduler = 'cosin'\n"
        + '[[models]]\nmodel = "minlm"\n',
        (
            "models[0].model: unknown model 'minlm' (did you mean 'minilm'? see 'zoo models')",
            "trainig: unknown section (did you mean 'training'?)",
            "training.epochs: expected an integer, got float 2.5",
            "training.lr_scheduler: must be one of 'linear', 'cosine', 'constant', "
            "'constant_with_warmup', got string 'cosin' (did you mean 'cosine'?)",
        ),
    ),
]


def write_recipe(directory: Path, recipe: str | bytes) -> Path:
    (directory / "train.csv").write_text(GOOD_TRAIN, encoding="utf-8")
    path = directory / "recipe.toml"
    if isinstance(recipe, bytes):
        path.write_bytes(recipe)
    else:
        path.write_text(recipe, encoding="utf-8")
    return path


def recipe_error(path: Path, problems: tuple[str, ...]) -> str:
    noun = "problem" if len(problems) == 1 else "problems"
    lines = [f"error: {path} is not a valid recipe ({len(problems)} {noun})"]
    return "\n".join(lines + [f"  - {p}" for p in problems]) + "\n"


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", RECIPE_CASES, ids=lambda c: c.id)
def test_a_bad_recipe(case, command, tmp_path, capsys):
    path = write_recipe(tmp_path, case.recipe)
    before = snapshot(tmp_path)
    sets = [arg for item in case.overrides for arg in ("--set", item)]
    code, out, err = zoo(capsys, command, str(path), *sets)
    assert (code, err) == (2, recipe_error(path, case.problems))
    assert "Traceback" not in err
    assert out == ""
    assert snapshot(tmp_path) == before


TOML_ERRORS = [
    ("a-key-without-a-value", "[training]\nepochs =\n", "(at line 6, column 9)"),
    ("an-unclosed-string", '[training]\nlr_scheduler = "cosine\n', "(at line 6, column 23)"),
    ("an-unclosed-table-header", "[training\nepochs = 1\n", "(at line 5, column 10)"),
    ("a-key-given-twice", "[training]\nepochs = 1\nepochs = 2\n", "(at line 7, column 11)"),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(
    ("text", "where"), [c[1:] for c in TOML_ERRORS], ids=[c[0] for c in TOML_ERRORS]
)
def test_a_toml_syntax_error_gives_line_and_column(text, where, command, tmp_path, capsys):
    # The wording between "TOML syntax error:" and the place is Python's own (tomllib).
    path = write_recipe(tmp_path, RUN + DATA + text + TFIDF)
    before = snapshot(tmp_path)
    code, out, err = zoo(capsys, command, str(path))
    first, problem, rest = err.split("\n", 2)
    assert (code, first) == (2, f"error: {path} is not a valid recipe (1 problem)")
    assert problem.startswith("  - TOML syntax error: ")
    assert problem.endswith(where)
    assert (out, rest) == ("", "")
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_missing_recipe_file(command, tmp_path, capsys):
    path = tmp_path / "nope.toml"
    code, out, err = zoo(capsys, command, str(path))
    assert (code, out, err) == (2, "", recipe_error(path, ("file not found",)))
    assert snapshot(tmp_path) == {}


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_data_path_that_is_a_folder(command, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    path = tmp_path / "recipe.toml"
    path.write_text(RUN + '[data]\ntrain = "data"\n' + TFIDF, encoding="utf-8")
    before = snapshot(tmp_path)
    code, out, err = zoo(capsys, command, str(path))
    problem = f"data.train: {tmp_path / 'data'} is a folder, not a file: name a CSV or TSV file"
    assert (code, out, err) == (2, "", recipe_error(path, (problem,)))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_recipe_with_a_byte_order_mark_is_fine(command, tmp_path, capsys):
    path = write_recipe(tmp_path, "\ufeff" + RUN + DATA + TFIDF + 'method = "lora"\n')
    code, _out, err = zoo(capsys, command, str(path))
    # Read past the byte-order mark: the only problem is the one in the recipe.
    assert (code, err) == (
        2,
        recipe_error(path, ("models[0].method: 'tfidf' supports 'full', not 'lora'",)),
    )


# --- the recipe against its data, its models and its output folder: exit 2, before training -----


@attrs.frozen
class PreflightCase:
    id: str
    recipe: str
    problems: tuple[str, ...]
    # Made before the run: a file at this path (relative to the recipe's folder).
    file_in_the_way: str | None = None


PREFLIGHT_CASES = [
    PreflightCase(
        "class-weights-for-fewer-labels-than-the-data-has",
        RUN + DATA + "[training]\nclass_weights = [1.0, 2.0, 3.0]\n" + TFIDF,
        (
            "training.class_weights: has 3 weights, but data.train has 2 labels (a, b); give "
            "one weight per label, in that order, or 'balanced'",
        ),
    ),
    PreflightCase(
        "class-weights-of-one-model",
        GOOD + "class_weights = [1.0]\n",
        (
            "models[0].class_weights: has 1 weights, but data.train has 2 labels (a, b); give "
            "one weight per label, in that order, or 'balanced'",
        ),
    ),
    PreflightCase(
        "max-length-beyond-the-position-embeddings",
        RUN + DATA + "[training]\nmax_length = 1024\n" + MINILM,
        (
            "training.max_length: 1024 tokens is more than 'minilm' can read: 512 positions "
            "(max_position_embeddings in the architecture of 'minilm'); set max_length to 512 "
            "or less",
        ),
    ),
    PreflightCase(
        "an-output-dir-that-is-a-file",
        RUN.replace("\n", '\noutput_dir = "out"\n', 1) + DATA + TFIDF,
        ("run.output_dir: {dir}/out is a file, not a folder; choose another run.output_dir",),
        file_in_the_way="out",
    ),
    PreflightCase(
        "an-output-dir-inside-a-file",
        RUN.replace("\n", '\noutput_dir = "out/runs"\n', 1) + DATA + TFIDF,
        (
            "run.output_dir: {dir}/out/runs cannot be made: {dir}/out is a file; choose "
            "another run.output_dir",
        ),
        file_in_the_way="out",
    ),
    PreflightCase(
        "a-run-folder-that-is-a-file",
        RUN + DATA + TFIDF,
        ("run.name: {dir}/runs/bad is a file, not a folder; choose another run.name",),
        file_in_the_way="runs/bad",
    ),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", PREFLIGHT_CASES, ids=lambda c: c.id)
def test_a_recipe_that_its_data_models_or_folders_cannot_carry(case, command, tmp_path, capsys):
    directory = tmp_path.resolve()
    path = write_recipe(directory, case.recipe)
    if case.file_in_the_way:
        (directory / case.file_in_the_way).parent.mkdir(parents=True, exist_ok=True)
        (directory / case.file_in_the_way).write_text("mine\n")
    before = snapshot(directory)
    code, out, err = zoo(capsys, command, str(path))
    problems = tuple(p.replace("{dir}", str(directory)) for p in case.problems)
    assert (code, out, err) == (2, "", recipe_error(path, problems))
    assert snapshot(directory) == before  # nothing trained, written or recorded


def test_max_length_is_checked_against_a_checkpoints_own_config(tmp_path, capsys):
    directory = tmp_path.resolve()
    (directory / "ckpt").mkdir()
    config = {"model_type": "xlm-roberta", "max_position_embeddings": 130, "pad_token_id": 1}
    (directory / "ckpt" / "config.json").write_text(json.dumps(config))
    path = write_recipe(directory, RUN + DATA + MINILM + 'checkpoint = "ckpt"\nmax_length = 129\n')
    before = snapshot(directory)
    code, out, err = zoo(capsys, "validate", str(path))
    problem = (
        "models[0].max_length: 129 tokens is more than 'minilm' can read: 128 positions "
        f"(max_position_embeddings in {directory / 'ckpt' / 'config.json'}); set max_length to "
        "128 or less"
    )
    assert (code, out, err) == (2, "", recipe_error(path, (problem,)))
    assert snapshot(directory) == before


@pytest.mark.parametrize("command", ["validate", "check", "run"])
def test_a_checkpoint_whose_config_is_damaged(command, tmp_path, capsys):
    directory = tmp_path.resolve()
    (directory / "ckpt").mkdir()
    (directory / "ckpt" / "config.json").write_text('{"model_type": "bert", ')
    path = write_recipe(directory, RUN + DATA + MINILM + 'checkpoint = "ckpt"\n')
    before = snapshot(directory)
    code, out, err = zoo(capsys, command, str(path))
    config = directory / "ckpt" / "config.json"
    assert code == 4
    assert err.startswith(f"error: {config} cannot be read as a model configuration (")
    assert err.endswith("  hint: replace the checkpoint of 'minilm', or fix its config.json\n")
    assert (out, snapshot(directory)) == ("", before)


# --- data files: `zoo run` exits 3 (2 for a file the recipe names that is not there) -----------


@attrs.frozen
class DataCase:
    id: str
    # File name -> its contents; "recipe.toml" defaults to a recipe that trains tfidf on train.csv.
    files: dict[str, str | bytes]
    exit_code: int
    # "{dir}" stands for the folder of the files.
    message: str


def data_recipe(data: str = "") -> str:
    return RUN + DATA + data + TFIDF


ROWS_AB = "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(10))
LATIN_1 = ("text,label\n" + "".join(f"caf\u00e9 {i},{'ab'[i % 2]}\n" for i in range(10))).encode(
    "latin-1"
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
XLSX = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml"
NOT_A_TABLE_HINT = "  hint: save the table as CSV (UTF-8) with a header line naming its columns"
EMPTY_HINT = (
    '  hint: fill them in or remove them, or set data.empty_texts = "drop" to leave them out'
)
COLUMNS_HINT = "  hint: set data.text_column and data.label_column to the file's column names"
ENCODING_HINT = "  hint: save it as UTF-8, or set data.encoding to the file's encoding"
MIXED_HINT = (
    "  hint: save the whole file as UTF-8 (re-save or re-type the lines that are not); zoo reads "
    "a file in one encoding"
)
FIELDS_HINT = (
    '  hint: quote a text that holds a comma ("my code, it crashes"), or check the separator '
    "(zoo splits this file at each comma)"
)
QUOTE_HINT = (
    '  hint: remove the stray quote, or quote the whole field and double each quote inside it ("a '
    '""quoted"" word")'
)

DATA_CASES = [
    DataCase(
        "missing-train-file",
        {"recipe.toml": RUN + '[data]\ntrain = "data/train.csv"\n' + TFIDF},
        2,
        "{dir}/recipe.toml is not a valid recipe (1 problem)\n"
        "  - data.train: file not found: {dir}/data/train.csv",
    ),
    DataCase(
        "missing-test-file",
        {"train.csv": GOOD_TRAIN, "recipe.toml": data_recipe('test = "test.csv"\n')},
        2,
        "{dir}/recipe.toml is not a valid recipe (1 problem)\n"
        "  - data.test: file not found: {dir}/test.csv",
    ),
    DataCase(
        "empty-file",
        {"train.csv": b""},
        3,
        "data.train: {dir}/train.csv is empty\n"
        "  hint: a data file needs a header line naming its columns (e.g. text,label) and one "
        "row per labelled text",
    ),
    DataCase(
        "header-only",
        {"train.csv": "text,label\n"},
        3,
        "data.train: {dir}/train.csv has no data rows\n"
        "  hint: add one row per labelled text below the header line",
    ),
    DataCase(
        "missing-text-column",
        {"train.csv": "id,body,label\n1,hello,a\n2,bye,b\n"},
        3,
        "data.train: {dir}/train.csv has no column 'text' (columns: 'id', 'body', 'label')\n"
        + COLUMNS_HINT,
    ),
    DataCase(
        "missing-label-column",
        {"train.csv": "text,category\nhello,a\nbye,b\n"},
        3,
        "data.train: {dir}/train.csv has no column 'label' (columns: 'text', 'category')\n"
        + COLUMNS_HINT,
    ),
    DataCase(
        "missing-column-in-the-test-file",
        {
            "train.csv": GOOD_TRAIN,
            "test.csv": "sentence,label\nhello,a\n",
            "recipe.toml": data_recipe('test = "test.csv"\n'),
        },
        3,
        "data.test: {dir}/test.csv has no column 'text' (columns: 'sentence', 'label')\n"
        + COLUMNS_HINT,
    ),
    DataCase(
        "empty-and-nan-like-texts",
        {"train.csv": "text,label\n" + ROWS_AB + ",a\nNaN,b\n   ,a\nnull,b\n"},
        3,
        "data.train: {dir}/train.csv has 4 rows with an empty text or label "
        "(lines 12, 13, 14, 15; 'NaN', 'null' count as empty)\n" + EMPTY_HINT,
    ),
    DataCase(
        "empty-labels",
        {"train.csv": "text,label\n" + ROWS_AB + "no label here,\nnor here,  \n"},
        3,
        "data.train: {dir}/train.csv has 2 rows with an empty text or label (lines 12, 13)\n"
        + EMPTY_HINT,
    ),
    DataCase(
        "empty-texts-in-the-test-file",
        {
            "train.csv": GOOD_TRAIN,
            "test.csv": "text,label\nfine,a\n,b\n",
            "recipe.toml": data_recipe('test = "test.csv"\n'),
        },
        3,
        "data.test: {dir}/test.csv has 1 row with an empty text or label (lines 3)\n" + EMPTY_HINT,
    ),
    DataCase(
        "nothing-left-after-dropping-empty-texts",
        {
            "train.csv": "text,label\n,a\nnan,b\n",
            "recipe.toml": data_recipe('empty_texts = "drop"\n'),
        },
        3,
        "data.train: {dir}/train.csv has no data rows left after leaving out 2 with an empty "
        "text or label\n"
        "  hint: add one row per labelled text below the header line",
    ),
    DataCase(
        "a-label-with-too-few-rows-to-split",
        {"train.csv": "text,label\n" + ROWS_AB + "the only one,c\n"},
        3,
        "data.validation: label 'c' has only one row in data.train, too few to split off a "
        "validation row\n"
        "  hint: add rows of that label, or give data.validation a file",
    ),
    DataCase(
        "a-validation-fraction-too-small-for-the-labels",
        {
            "train.csv": "text,label\n" + "".join(f"t{i},{'abc'[i % 3]}\n" for i in range(12)),
            "recipe.toml": data_recipe("validation = 0.1\n"),
        },
        3,
        "data.validation = 0.1 of 12 rows leaves 2 validation rows, fewer than the 3 labels\n"
        "  hint: change data.validation or add rows",
    ),
    DataCase(
        "a-single-class",
        {"train.csv": "text,label\n" + "".join(f"t{i},only\n" for i in range(6))},
        3,
        "data.train: every row has the label 'only'; a classifier needs two or more\n"
        "  hint: add rows of another label, or check that data.label_column names the labels",
    ),
    DataCase(
        "test-labels-not-seen-in-training",
        {
            "train.csv": GOOD_TRAIN,
            "test.csv": "text,label\nu,a\nv,z\nw,y\n",
            "recipe.toml": data_recipe('test = "test.csv"\n'),
        },
        3,
        "data.test: labels not seen in data.train: 'y', 'z'\n"
        "  hint: a model cannot predict a label it never saw; add training rows for it",
    ),
    DataCase(
        "test-labels-that-are-training-labels-spelled-another-way",
        {
            "train.csv": "text,label\n" + "".join(f"t{i},{'01'[i % 2]}\n" for i in range(10)),
            "test.csv": "text,label\nu,0\nv,1.0\n",
            "recipe.toml": data_recipe('test = "test.csv"\n'),
        },
        3,
        "data.test: labels not seen in data.train: '1.0'\n"
        "  hint: '1.0' looks like the training label '1' spelled another way; write it as "
        "data.train does",
    ),
    DataCase(
        "one-number-spelled-two-ways-in-one-file",
        {
            "train.csv": "text,label\n"
            + "".join(f"t{i},{['1', '0', '1.0'][i % 3]}\n" for i in range(9))
        },
        3,
        "data.train: {dir}/train.csv spells one label two ways: '1' (line 2) and '1.0' (line 4) "
        "are the same number, and would become two classes\n"
        "  hint: write each label one way in the file (a spreadsheet writes 1.0 for 1 once a "
        "column has an empty cell)",
    ),
    DataCase(
        "validation-file-labels-not-seen-in-training",
        {
            "train.csv": GOOD_TRAIN,
            "val.csv": "text,label\nu,a\nv,c\n",
            "recipe.toml": data_recipe('validation = "val.csv"\n'),
        },
        3,
        "data.validation: labels not seen in data.train: 'c'\n"
        "  hint: a model cannot predict a label it never saw; add training rows for it",
    ),
    DataCase(
        "latin-1-names-the-encodings-tried",
        {"train.csv": LATIN_1},
        3,
        "data.train: {dir}/train.csv is not text in utf-8-sig or cp949 "
        "(line 2 has the byte 0xe9, which is not UTF-8)\n" + ENCODING_HINT,
    ),
    DataCase(
        "cp949-read-as-the-utf8-the-recipe-says",
        {
            "train.csv": KOREAN_TRAIN.encode("cp949"),
            "recipe.toml": data_recipe('encoding = "utf-8"\n'),
        },
        3,
        "data.train: {dir}/train.csv is not text in utf-8 "
        "(line 2 has the byte 0xba, which is not UTF-8)\n" + ENCODING_HINT,
    ),
    DataCase(
        "a-nul-byte-names-its-line",
        {"train.csv": b"text,label\nhello world,a\nhello\x00world,a\n\x01\x02\x03,b\n"},
        3,
        "data.train: {dir}/train.csv has a NUL byte (0x00) on line 3, which no text file has\n"
        "  hint: the file is binary or damaged there; save the table as CSV (UTF-8) with a header "
        "line naming its columns",
    ),
    DataCase(
        "a-png-image",
        {"train.csv": PNG},
        3,
        "data.train: {dir}/train.csv is a PNG image, not a CSV or TSV table\n" + NOT_A_TABLE_HINT,
    ),
    DataCase(
        "an-excel-workbook",
        {"train.csv": XLSX},
        3,
        "data.train: {dir}/train.csv is a ZIP archive (an Excel .xlsx workbook?), not a CSV or "
        "TSV table\n" + NOT_A_TABLE_HINT,
    ),
    DataCase(
        "a-json-document",
        {"train.csv": json.dumps([{"text": "hello", "label": "a"}, {"text": "bye", "label": "b"}])},
        3,
        "data.train: {dir}/train.csv looks like JSON, not a CSV or TSV table\n"
        "  hint: if it holds one JSON object per line, name it .jsonl; else save the table as "
        "CSV (UTF-8) with a header line naming its columns",
    ),
    DataCase(
        "utf16-text",
        {"train.csv": ("text,label\n" + ROWS_AB).encode("utf-16")},
        3,
        "data.train: {dir}/train.csv is UTF-16 text, which zoo does not read\n"
        "  hint: save it as UTF-8 (in Excel: CSV UTF-8)",
    ),
    DataCase(
        "utf16-text-without-a-byte-order-mark",
        {"train.csv": ("text,label\n" + ROWS_AB).encode("utf-16-le")},
        3,
        "data.train: {dir}/train.csv is UTF-16 text, which zoo does not read\n"
        "  hint: save it as UTF-8 (in Excel: CSV UTF-8)",
    ),
    DataCase(
        "utf8-with-rows-appended-in-cp949",
        # Decoded whole as cp949 the UTF-8 labels would become 怨쇱젣-like classes, exit 0.
        {"train.csv": KOREAN_TRAIN.encode() + KOREAN_TRAIN.split("\n", 1)[1].encode("cp949")},
        3,
        "data.train: {dir}/train.csv mixes encodings: line 2 is UTF-8, but line 12 is not (it "
        "has the byte 0xba, and reads as cp949)\n" + MIXED_HINT,
    ),
    DataCase(
        "utf8-with-one-row-in-cp949",
        # This used to blame the row's label for having too few rows.
        {"train.csv": KOREAN_TRAIN.encode() + "과제 제출 기한,과제\n".encode("cp949")},
        3,
        "data.train: {dir}/train.csv mixes encodings: line 2 is UTF-8, but line 12 is not (it "
        "has the byte 0xb0, and reads as cp949)\n" + MIXED_HINT,
    ),
    DataCase(
        "a-row-with-more-fields-than-the-header",
        # Read by position, "it crashes" was this row's label.
        {"train.csv": "text,label\n" + ROWS_AB + "my code, it crashes,a\n"},
        3,
        "data.train: {dir}/train.csv line 12 has 3 fields, but the header has 2\n" + FIELDS_HINT,
    ),
    DataCase(
        "rows-with-fewer-fields-than-the-header",
        {"train.csv": "text,label\n" + ROWS_AB + "a text without a label\nanother\n"},
        3,
        "data.train: {dir}/train.csv line 12 has 1 field, but the header has 2 (so do 1 more: "
        "lines 13)\n" + FIELDS_HINT,
    ),
    DataCase(
        "a-test-row-with-more-fields-than-the-header",
        {
            "train.csv": GOOD_TRAIN,
            "test.csv": "text,label\nfine,a\nmy code, it crashes,b\n",
            "recipe.toml": data_recipe('test = "test.csv"\n'),
        },
        3,
        "data.test: {dir}/test.csv line 3 has 3 fields, but the header has 2\n" + FIELDS_HINT,
    ),
    DataCase(
        "a-header-that-names-the-text-column-twice",
        # The last of the two used to win.
        {"train.csv": "text,label,text\n" + ROWS_AB.replace("\n", ",other\n")},
        3,
        "data.train: {dir}/train.csv has 2 columns named 'text' (columns 1, 3 of the header)\n"
        "  hint: rename all but one of them: data.text_column names one column",
    ),
    DataCase(
        "a-stray-quote-that-runs-to-the-end-of-the-file",
        {"train.csv": 'text,label\n"my code crashes,a\n' + ROWS_AB},
        3,
        "data.train: {dir}/train.csv line 2: the quote that starts a field here is never "
        "closed (the field would run to the end of the file)\n" + QUOTE_HINT,
    ),
    DataCase(
        "a-stray-quote-that-a-later-text-closes",
        # Not strict, the csv module merged the 20 rows in between into one text and trained on
        # the 20 after it (exit 0).
        {
            "train.csv": 'text,label\n"my code crashes,a\n'
            + ROWS_AB * 2
            + 'he said "hi",b\n'
            + ROWS_AB * 2
        },
        3,
        "data.train: {dir}/train.csv line 2: a quoted field starts here, ends on line 23 and "
        "has more text after its closing quote, before the next comma\n" + QUOTE_HINT,
    ),
    DataCase(
        "a-stray-quote-closed-cleanly-swallows-rows",
        # Strict csv reads one text of 21 lines here: the rows in it give the quote away.
        {"train.csv": 'text,label\nfine,b\n"my code crashes,a\n' + ROWS_AB * 2 + 'a 12",b\n'},
        3,
        "data.train: {dir}/train.csv line 3: the quoted field that starts here runs on to line "
        "24 and takes in line 5, which looks like a row of its own ('text number 1,b')\n"
        + QUOTE_HINT,
    ),
    DataCase(
        "a-quoted-tsv-with-a-field-that-ends-early",
        {
            "train.tsv": 'text\tlabel\n"say ""hi"" twice"\ta\n"hi" she said\tb\n'
            + ROWS_AB.replace(",", "\t"),
            "recipe.toml": RUN + '[data]\ntrain = "train.tsv"\n' + TFIDF,
        },
        3,
        "data.train: {dir}/train.tsv line 3: a quoted field starts here and has more text after "
        "its closing quote, before the next tab\n" + QUOTE_HINT,
    ),
    DataCase(
        "a-label-that-reads-as-missing-like-a-text",
        # A label NaN used to be a class of its own.
        {"train.csv": "text,label\n" + ROWS_AB + "no label,NaN\nnor here,#N/A\n"},
        3,
        "data.train: {dir}/train.csv has 2 rows with an empty text or label (lines 12, 13; "
        "'#N/A', 'NaN' count as empty)\n" + EMPTY_HINT,
    ),
    DataCase(
        "a-tsv-named-csv",
        {"train.csv": ("text,label\n" + ROWS_AB).replace(",", "\t")},
        3,
        "data.train: {dir}/train.csv has no column 'text' (columns: 'text\\tlabel')\n"
        "  hint: its header line is separated by tabs: name the file .tsv",
    ),
]


def write_files(directory: Path, files: dict[str, str | bytes]) -> Path:
    files = {"recipe.toml": data_recipe(), **files}
    for name, content in files.items():
        path = directory / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory / "recipe.toml"


@pytest.mark.parametrize("case", DATA_CASES, ids=lambda c: c.id)
def test_a_bad_data_file(case, tmp_path, capsys):
    directory = tmp_path.resolve()
    recipe = write_files(directory, case.files)
    before = snapshot(directory)
    code, out, err = zoo(capsys, "run", str(recipe))
    message = case.message.replace("{dir}", str(directory))
    # Every recipe and data file is checked before a run starts: the error comes first.
    assert (code, err) == (case.exit_code, f"error: {message}\n")
    assert "Traceback" not in err
    assert out == ""
    assert snapshot(directory) == before  # no run directory, no results store


def test_debug_shows_the_traceback_and_still_writes_nothing(tmp_path, capsys):
    recipe = write_files(tmp_path, {"train.csv": "text,label\n"})
    before = snapshot(tmp_path)
    code, _out, err = zoo(capsys, "--debug", "run", str(recipe))
    assert code == 3
    assert "Traceback" in err
    assert err.endswith(
        f"error: data.train: {tmp_path.resolve() / 'train.csv'} has no data rows\n"
        "  hint: add one row per labelled text below the header line\n"
    )
    assert snapshot(tmp_path) == before


# --- awkward but good data files train ------------------------------------------------------------


def run_json(capsys, recipe: Path) -> dict:
    """`zoo run --json RECIPE`: the one run's run.json, checked to have gone well."""
    code, out, err = zoo(capsys, "run", str(recipe), "--json")
    assert code == 0, err
    assert "Traceback" not in err and "error:" not in err
    [run] = json.loads(out)["runs"]
    assert run["status"] == "ok"
    return json.loads((Path(run["run_dir"]) / "run.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("codec", ["cp949", "euc-kr"])
def test_korean_spreadsheet_encodings_are_read_with_encoding_auto(codec, tmp_path, capsys):
    recipe = write_files(tmp_path, {"train.csv": KOREAN_TRAIN.encode(codec)})
    record = run_json(capsys, recipe)
    # euc-kr is a subset of cp949: one decoder reads both.
    assert record["encodings"] == {"train": "cp949"}
    assert record["rows"] == {"train": 8, "validation": 2, "test": 0}


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path, capsys):
    recipe = write_files(tmp_path, {"train.csv": KOREAN_TRAIN.encode("utf-8-sig")})
    assert run_json(capsys, recipe)["encodings"] == {"train": "utf-8-sig"}


def test_very_long_texts_are_read_and_trained_on(tmp_path, capsys):
    # Longer than the csv module's own 128 KiB field limit; models truncate to max_length.
    long = "아주 긴 문의 " * 30_000
    train = "text,label\n" + "".join(f"{long}{i},{'ab'[i % 2]}\n" for i in range(10))
    recipe = write_files(tmp_path, {"train.csv": train})
    assert run_json(capsys, recipe)["rows"]["train"] == 8


def test_mixed_line_endings_are_read(tmp_path, capsys):
    lines = ["text,label", *(f"text number {i},{'ab'[i % 2]}" for i in range(10))]
    train = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines))
    recipe = write_files(tmp_path, {"train.csv": train, "unix.csv": train.replace("\r\n", "\n")})
    assert run_json(capsys, recipe)["rows"]["train"] == 8
    # Read exactly as the same file with Unix line endings: no stray "\r" in a label.
    read = {
        name: load_splits(DataSection(train=name), tmp_path, seed=1)
        for name in ("train.csv", "unix.csv")
    }
    assert read["train.csv"] == read["unix.csv"]


def test_a_tsv_file_named_txt_is_sniffed(tmp_path, capsys):
    train = ("text,label\n" + ROWS_AB).replace(",", "\t").replace("number", "number, with a comma")
    recipe = write_files(
        tmp_path,
        {"train.txt": train, "recipe.toml": RUN + '[data]\ntrain = "train.txt"\n' + TFIDF},
    )
    assert run_json(capsys, recipe)["rows"]["train"] == 8


def test_empty_texts_are_dropped_when_the_recipe_says_so(tmp_path, capsys):
    train = "text,label\n" + ROWS_AB + ",a\nNaN,b\nno label,\n"
    recipe = write_files(
        tmp_path,
        {
            "train.csv": train,
            "test.csv": "text,label\nfine,a\n,b\nalso fine,b\n",
            "recipe.toml": data_recipe('test = "test.csv"\nempty_texts = "drop"\n'),
        },
    )
    assert run_json(capsys, recipe)["rows"] == {"train": 8, "validation": 2, "test": 2}
    data = DataSection(train="train.csv", test="test.csv", empty_texts="drop")
    assert load_splits(data, tmp_path, seed=1).dropped == {"train": 3, "test": 1}


def test_what_may_spoil_a_comparison_is_said_and_recorded(tmp_path, capsys):
    train = "text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(10))
    train += "text number 2,b\nText Number 3,A\nText Number 5,A\n"
    recipe = write_files(
        tmp_path,
        {
            "train.csv": train,
            "test.csv": "text,label\ntext number 1,b\nunseen,a\n",
            "recipe.toml": data_recipe('test = "test.csv"\n'),
        },
    )
    code, out, err = zoo(capsys, "run", str(recipe), "--json")
    assert code == 0, err
    notices = [
        "data.train: the labels 'a', 'A' differ only in case or spacing (lines 2, 13) and are "
        "different classes",
        "data.train: 1 text appears with different labels (e.g. 'a' on line 4, 'b' on line 12)",
        "data.test: 1 of 2 texts are also in data.train (lines 2): their scores are not those "
        "of unseen text",
    ]
    for notice in notices:
        assert f"bad: {notice}\n" in err
    [run] = json.loads(out)["runs"]
    record = json.loads((Path(run["run_dir"]) / "run.json").read_text(encoding="utf-8"))
    assert record["data_notices"] == notices


def test_nfd_labels_are_the_nfc_labels_and_a_notice_says_so(tmp_path, capsys):
    # macOS and some exports write NFD: "코드" in NFD used to be "not seen in training".
    nfd = unicodedata.normalize("NFD", "코드")
    train = "text,label\n" + "".join(
        f"text number {i},{['코드', '웹'][i % 2]}\n" for i in range(10)
    )
    recipe = write_files(
        tmp_path,
        {
            "train.csv": train,
            "test.csv": f"text,label\nnew text 3,{nfd}\nnew text 4,웹\n",
            "recipe.toml": data_recipe('test = "test.csv"\n'),
        },
    )
    record = run_json(capsys, recipe)
    assert record["rows"]["test"] == 2
    assert record["data_notices"] == [
        "data.test: labels spelled in another Unicode form than NFC (such as NFD) are read in "
        "NFC, one label with their NFC spelling: '코드' (1 row)"
    ]


def test_labels_that_are_unicode_digits_train(tmp_path, capsys):
    train = "text,label\n" + "".join(f"text number {i},{'①②'[i % 2]}\n" for i in range(10))
    recipe = write_files(tmp_path, {"train.csv": train})
    assert run_json(capsys, recipe)["rows"]["train"] == 8


def test_a_lower_case_none_is_a_label_not_a_missing_value(tmp_path, capsys):
    # korean-hate-speech's labels are none, offensive and hate.
    train = "text,label\n" + "".join(
        f"text number {i},{['none', 'hate'][i % 2]}\n" for i in range(10)
    )
    recipe = write_files(tmp_path, {"train.csv": train})
    assert run_json(capsys, recipe)["rows"]["train"] == 8


def test_a_tsv_without_quoting_trains_and_a_notice_says_how_it_was_read(tmp_path, capsys):
    # As NSMC writes them: a text may start with a quote that closes before the text ends.
    rows = ROWS_AB.replace(",", "\t") + '"quoted" and not\ta\n'
    recipe = write_files(
        tmp_path,
        {
            "train.tsv": "text\tlabel\n" + rows,
            "recipe.toml": RUN + '[data]\ntrain = "train.tsv"\n' + TFIDF,
        },
    )
    record = run_json(capsys, recipe)
    assert record["rows"]["train"] == 8
    assert record["data_notices"] == [
        f"data.train: {tmp_path.resolve() / 'train.tsv'} is read as a TSV file without quoting "
        "(each line one row, quotes kept as part of the text) because line 12 has a text that "
        "starts with a quote and goes on after it"
    ]


def test_blank_lines_and_repeated_names_of_unread_columns_are_fine(tmp_path, capsys):
    train = "text,label,note,note\n\n" + ROWS_AB.replace("\n", ",x,y\n\n")
    recipe = write_files(tmp_path, {"train.csv": train})
    assert run_json(capsys, recipe)["rows"]["train"] == 8


# --- plugins: a broken one is named, left out, and the others still work ----------------------


def entry_point(name: str, module: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=module, group="zoo")


REGISTERS = """
import zoo

@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(name="ep-model", description="from an entry point", family="bert",
                           source=zoo.HubSource(repo_id="tests/ep")))
"""
RAISES_AT_REGISTRATION = """
import zoo

@zoo.hookimpl
def register_models(register):
    raise RuntimeError("no config file")
"""


@pytest.fixture
def broken_plugins(tmp_path, monkeypatch):
    """Three entry-point plugins: one that raises when imported, one that raises when it
    registers, one that works. Their modules lie outside `tmp_path`'s snapshot (in
    `tmp_path/../site`) and leave no bytecode behind."""
    site = tmp_path.parent / f"{tmp_path.name}-site"
    site.mkdir()
    (site / "zoo_test_crashes.py").write_text("raise ImportError('needs a GPU')\n")
    (site / "zoo_test_raises.py").write_text(textwrap.dedent(RAISES_AT_REGISTRATION))
    (site / "zoo_test_works.py").write_text(textwrap.dedent(REGISTERS))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    for name in ("zoo_test_crashes", "zoo_test_raises", "zoo_test_works"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    eps = [
        entry_point("crashes", "zoo_test_crashes"),
        entry_point("raises", "zoo_test_raises"),
        entry_point("works", "zoo_test_works"),
    ]

    def fake(*, group: str):
        assert group == "zoo"
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    monkeypatch.delenv("ZOO_PLUGINS")


PLUGIN_WARNINGS = (
    "warning: plugin 'crashes' left out (failed: ImportError: needs a GPU); "
    "set ZOO_BLOCK_PLUGINS=crashes to skip it, see 'zoo plugins'\n"
    "warning: plugin 'raises' left out (failed: RuntimeError: no config file); "
    "set ZOO_BLOCK_PLUGINS=raises to skip it, see 'zoo plugins'\n"
)


def test_broken_plugins_are_named_and_the_others_still_listed(broken_plugins, tmp_path, capsys):
    code, out, err = zoo(capsys, "models", "--json")
    assert (code, err) == (0, PLUGIN_WARNINGS)
    models = {m["name"]: m["plugin"] for m in json.loads(out)["models"]}
    assert models["ep-model"] == "works"
    assert models["tfidf"] == "zoo_plugins.tfidf"
    assert "crashes" not in models.values() and "raises" not in models.values()
    assert snapshot(tmp_path) == {}


def test_the_models_table_lists_the_plugins_that_work(broken_plugins, capsys):
    code, out, err = zoo(capsys, "models")
    assert (code, err) == (0, PLUGIN_WARNINGS)
    names = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert "ep-model" in names and "minilm" in names and "tfidf" in names


def test_a_recipe_still_validates_beside_broken_plugins(broken_plugins, tmp_path, capsys):
    path = write_recipe(tmp_path, GOOD)
    before = snapshot(tmp_path)
    code, out, err = zoo(capsys, "validate", str(path))
    assert (code, out, err) == (0, f"ok {path}: run 'bad', models: tfidf\n", PLUGIN_WARNINGS)
    assert snapshot(tmp_path) == before


def test_blocking_a_broken_plugin_silences_it(broken_plugins, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_BLOCK_PLUGINS", "crashes,raises")
    code, _out, err = zoo(capsys, "models")
    assert (code, err) == (0, "")


# --- run directories and the results store: bad command lines of show, report, predict, compare,
# record and run --resume (exit 2, one message, nothing written). Damaged run directories are in
# tests/test_rundir.py (they need a trained run); these need none.

RUN_HINT = (
    "give a run directory that 'zoo run' made: OUTPUT_DIR/RUN_NAME/MODEL-seedN-YYYYmmdd-HHMMSS"
)
COMPARE_HINT = (
    "give the recipe you ran (zoo compare RECIPE: its output_dir, which is relative to the recipe "
    "file) or its output directory (zoo compare --output-dir DIR)"
)


@attrs.frozen
class CommandCase:
    id: str
    args: tuple[str, ...]  # {d}: the test's folder
    message: str
    hint: str | None = None
    files: tuple[tuple[str, str | bytes], ...] = ()  # written in {d} before the command


def sqlite_file(*statements: str) -> bytes:
    """The bytes of an SQLite database made by these statements."""
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.sqlite"
        conn = sqlite3.connect(path)
        for statement in statements:
            conn.execute(statement)
        conn.commit()
        conn.close()
        return path.read_bytes()


COMMAND_CASES = [
    *(
        CommandCase(
            f"{name}-a-run-directory-that-does-not-exist",
            (*args, "{d}/runs/demo/tfidf-seed42-20261201-101010", *rest),
            "run directory {d}/runs/demo/tfidf-seed42-20261201-101010 does not exist",
            RUN_HINT,
        )
        for name, args, rest in (
            ("show", ("show",), ()),
            ("report", ("report",), ()),
            ("record", ("record",), ()),
            ("resume", ("run", "--resume"), ()),
            ("predict", ("predict",), ("--input", "{d}/in.csv", "--output", "{d}/out.csv")),
        )
    ),
    CommandCase(
        "show-a-file",
        ("show", "{d}/notes.txt"),
        "{d}/notes.txt is a file, not a run directory",
        RUN_HINT,
        (("notes.txt", "not a run\n"),),
    ),
    CommandCase(
        "report-a-folder-that-is-not-a-run",
        ("report", "{d}"),
        "{d} is not a zoo run directory: it has no run.json",
        RUN_HINT,
        (("recipe.toml", GOOD),),
    ),
    CommandCase(
        "resume-together-with-a-recipe",
        ("run", "{d}/recipe.toml", "--resume", "{d}"),
        "give either recipes to run or --resume RUN_DIR, not both",
        "zoo run RECIPE...  or  zoo run --resume OUTPUT_DIR/RUN_NAME/MODEL-seedN-DATE",
        (("recipe.toml", GOOD),),
    ),
    CommandCase(
        "run-without-a-recipe",
        ("run",),
        "give a recipe to run",
        "zoo run RECIPE...  (see zoo run --help)",
    ),
    CommandCase(
        "predict-onto-a-folder",
        ("predict", "{d}/run", "--input", "{d}/in.csv", "--output", "{d}"),
        "--output {d} is a folder; give the file to write",
        "e.g. --output {d}/submission.csv",
    ),
    CommandCase(
        "predict-into-a-missing-folder",
        ("predict", "{d}/run", "--input", "{d}/in.csv", "--output", "{d}/out/s.csv"),
        "--output {d}/out/s.csv: the folder {d}/out does not exist",
        "make the folder first, or give --output a file in a folder that exists",
    ),
    CommandCase(
        "predict-into-a-file-taken-for-a-folder",
        ("predict", "{d}/run", "--input", "{d}/in.csv", "--output", "{d}/in.csv/s.csv"),
        "--output {d}/in.csv/s.csv: the folder {d}/in.csv is a file",
        "make the folder first, or give --output a file in a folder that exists",
        (("in.csv", "text\nhello\n"),),
    ),
    CommandCase(
        "compare-an-output-dir-that-does-not-exist",
        ("compare", "--output-dir", "{d}/runs"),
        "no results in {d}/runs: the folder does not exist",
        COMPARE_HINT,
    ),
    CommandCase(
        "compare-an-output-dir-that-is-a-file",
        ("compare", "--output-dir", "{d}/runs"),
        "no results in {d}/runs: the folder is a file, not a folder",
        COMPARE_HINT,
        (("runs", "x"),),
    ),
    CommandCase(
        "compare-an-output-dir-without-a-store",
        ("compare", "--output-dir", "{d}"),
        "no results in {d}: {d}/zoo-results.sqlite does not exist",
        COMPARE_HINT,
    ),
    CommandCase(
        "compare-a-recipe-and-an-output-dir",
        ("compare", "{d}/recipe.toml", "--output-dir", "{d}"),
        "give a recipe or --output-dir, not both",
        "zoo compare RECIPE  or  zoo compare --output-dir DIR",
        (("recipe.toml", GOOD),),
    ),
    CommandCase(
        "compare-a-store-that-is-not-sqlite",
        ("compare", "--output-dir", "{d}"),
        "results store {d}/zoo-results.sqlite: file is not a database",
        None,
        (("zoo-results.sqlite", "model,f1\n" * 200),),
    ),
    CommandCase(
        "compare-another-sqlite-database",
        ("compare", "--output-dir", "{d}"),
        "{d}/zoo-results.sqlite is an SQLite file, but not a zoo results store",
        None,
        (("zoo-results.sqlite", sqlite_file("CREATE TABLE notes (text TEXT)")),),
    ),
    CommandCase(
        "compare-a-store-from-a-newer-zoo",
        ("compare", "--output-dir", "{d}"),
        "{d}/zoo-results.sqlite was written by a newer zoo (results schema version 99; this zoo "
        "reads version 3 and older)",
        "upgrade zoo to read it, or record into another output directory",
        (("zoo-results.sqlite", sqlite_file("PRAGMA user_version = 99")),),
    ),
]


@pytest.mark.parametrize("case", COMMAND_CASES, ids=lambda c: c.id)
def test_a_bad_command_line_of_a_run_directory_command(case, tmp_path, capsys):
    def fill(text: str) -> str:
        return text.replace("{d}", str(tmp_path))

    for name, content in case.files:
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content, encoding="utf-8")
    before = snapshot(tmp_path)
    code, out, err = zoo(capsys, *(fill(a) for a in case.args))
    hint = f"  hint: {fill(case.hint)}\n" if case.hint else ""
    assert (code, out, err) == (2, "", f"error: {fill(case.message)}\n{hint}")
    assert snapshot(tmp_path) == before
