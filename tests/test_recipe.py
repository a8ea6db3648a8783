"""Recipes load strictly: every problem at once, each with its dotted path, nothing coerced."""

from __future__ import annotations

import tomllib
from pathlib import Path

import attrs
import pytest
import tomli_w
from conftest import GOOD_RECIPE

from zoo.errors import RecipeError
from zoo.plugins import get_plugin_manager
from zoo.recipe import (
    DEFAULT_TRAINING,
    TRAINING_KEYS,
    apply_overrides,
    load_recipe,
    recipe_to_dict,
    resolve_training,
    structure_recipe,
)
from zoo.registry import collect_models

MODELS = ("e5-small", "minilm")
RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))


def problems(path: Path, overrides: tuple[str, ...] = ()) -> list[str]:
    """The problem lines of the error that loading `path` raises."""
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, model_names=MODELS, overrides=overrides)
    return [str(p) for p in caught.value.problems]


RUN_AND_DATA = '[run]\nname = "tiny"\n[data]\ntrain = "train.csv"\n'
ONE_MODEL = '[[models]]\nmodel = "minilm"\n'


def with_training(body: str) -> str:
    """A valid recipe with `body` in its [training] table."""
    return f"{RUN_AND_DATA}[training]\n{body}\n{ONE_MODEL}"


def with_data(body: str) -> str:
    """A valid recipe with `body` added to its [data] table; it ends in its [[models]] entry."""
    return f"{RUN_AND_DATA}{body}\n{ONE_MODEL}"


# --- every problem at once ----------------------------------------------------------------------


def test_four_mistakes_are_listed_together_sorted_by_path(write_recipe):
    path = write_recipe(
        """\
        [run]
        name = "tiny"

        [data]
        train = "train.csv"

        [trainig]
        epochs = 1

        [training]
        epochs = 2.5
        lr_scheduler = "cosin"

        [[models]]
        model = "minlm"
        """
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, model_names=MODELS)
    assert str(caught.value) == (
        f"{path} is not a valid recipe (4 problems)\n"
        "  - models[0].model: unknown model 'minlm' (did you mean 'minilm'? see 'zoo models')\n"
        "  - trainig: unknown section (did you mean 'training'?)\n"
        "  - training.epochs: expected an integer, got float 2.5\n"
        "  - training.lr_scheduler: must be one of 'linear', 'cosine', 'constant', "
        "'constant_with_warmup', got string 'cosin' (did you mean 'cosine'?)"
    )
    assert caught.value.exit_code == 2


def test_one_problem_is_counted_in_the_singular(write_recipe):
    path = write_recipe(with_training("epochs = 0"))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, model_names=MODELS)
    assert str(caught.value) == (
        f"{path} is not a valid recipe (1 problem)\n  - training.epochs: must be at least 1, got 0"
    )


def test_a_valid_recipe_loads(write_recipe):
    recipe = load_recipe(write_recipe(), model_names=MODELS)
    assert recipe.run.name == "tiny"
    assert recipe.data.train == "train.csv"
    assert recipe.data.validation == 0.2
    assert [m.model for m in recipe.models] == ["minilm"]
    assert recipe.path("train.csv") == recipe.base_dir / "train.csv"
    assert recipe.base_dir.is_absolute()


# --- unknown keys ---------------------------------------------------------------------------------


def test_an_unknown_key_suggests_the_right_one(write_recipe):
    path = write_recipe(with_training("learning_rte = 1e-4"))
    assert problems(path) == ["training.learning_rte: unknown key (did you mean 'learning_rate'?)"]


def test_an_unknown_key_in_a_model_entry_suggests_the_right_one(write_recipe):
    path = write_recipe(with_data("") + "epoch = 1\n")
    assert problems(path) == ["models[0].epoch: unknown key (did you mean 'epochs'?)"]


def test_an_unknown_section_without_a_close_match_lists_the_sections(write_recipe):
    path = write_recipe(with_data("") + "[foo]\nx = 1\n")
    assert problems(path) == [
        "foo: unknown section (expected [run], [data], [models], [training], [distributed], "
        "[search], [executor])"
    ]


# --- strict scalars -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("epochs = true", "training.epochs: expected an integer, got boolean True"),
        ("epochs = 2.5", "training.epochs: expected an integer, got float 2.5"),
        ("epochs = 3.0", "training.epochs: expected an integer, got float 3.0"),
        ('epochs = "3"', "training.epochs: expected an integer, got string '3'"),
        ('learning_rate = "1e-4"', "training.learning_rate: expected a number, got string '1e-4'"),
        ("learning_rate = true", "training.learning_rate: expected a number, got boolean True"),
        (
            "lr_scheduler = 1",
            "training.lr_scheduler: must be one of 'linear', 'cosine', 'constant', "
            "'constant_with_warmup', got integer 1",
        ),
        ("batch_size = [16]", "training.batch_size: expected an integer, got an array"),
    ],
)
def test_scalars_are_never_coerced(write_recipe, line, problem):
    assert problems(write_recipe(with_training(line))) == [problem]


def test_an_integer_is_a_fine_number(write_recipe):
    recipe = load_recipe(write_recipe(with_training("weight_decay = 0")), model_names=MODELS)
    assert recipe.training.weight_decay == 0.0
    assert type(recipe.training.weight_decay) is float


# --- ranges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("epochs = 0", "training.epochs: must be at least 1, got 0"),
        ("epochs = -1", "training.epochs: must be at least 1, got -1"),
        ("learning_rate = -1e-4", "training.learning_rate: must be above 0, got -0.0001"),
        ("learning_rate = 0", "training.learning_rate: must be above 0, got 0.0"),
        ("warmup_ratio = 1.0", "training.warmup_ratio: must be at least 0 and below 1, got 1.0"),
        ("warmup_ratio = -0.1", "training.warmup_ratio: must be at least 0 and below 1, got -0.1"),
        ("weight_decay = -0.01", "training.weight_decay: must be 0 or more, got -0.01"),
        (
            "early_stopping_patience = -1",
            "training.early_stopping_patience: must be 0 or more, got -1",
        ),
    ],
)
def test_numbers_out_of_range_are_rejected(write_recipe, line, problem):
    assert problems(write_recipe(with_training(line))) == [problem]


def test_the_edges_of_the_ranges_are_allowed(write_recipe):
    path = write_recipe(
        with_training("epochs = 1\nwarmup_ratio = 0.0\nearly_stopping_patience = 0")
    )
    training = load_recipe(path, model_names=MODELS).training
    assert (training.epochs, training.warmup_ratio, training.early_stopping_patience) == (1, 0.0, 0)


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("0", "integer 0"),
        ("0.0", "float 0.0"),
        ("1", "integer 1"),
        ("1.5", "float 1.5"),
        ("true", "boolean True"),
    ],
)
def test_validation_must_be_a_fraction_strictly_between_0_and_1(write_recipe, value, got):
    assert problems(write_recipe(with_data(f"validation = {value}"))) == [
        f"data.validation: must be a fraction between 0 and 1, a file path or {{ folds = K }}, "
        f"got {got}"
    ]


def test_validation_may_be_a_file(write_recipe, tmp_path):
    path = write_recipe(with_data('validation = "val.csv"'))
    (tmp_path / "val.csv").write_text("text,label\na,b\n", encoding="utf-8")
    assert load_recipe(path, model_names=MODELS).data.validation == "val.csv"


def test_a_missing_validation_file_is_reported_with_its_absolute_path(write_recipe, tmp_path):
    path = write_recipe(with_data('validation = "val.csv"'))
    assert problems(path) == [f"data.validation: file not found: {tmp_path / 'val.csv'}"]


# --- required keys and model entries ------------------------------------------------------------


def test_missing_required_keys_are_each_reported(write_recipe):
    path = write_recipe(
        '[run]\nseed = 1\n[data]\ntest = "test.csv"\n[[models]]\nmodel = "minilm"\n'
    )
    assert problems(path) == [
        "data.train: required key is missing: training data file (CSV, TSV, .jsonl or "
        ".parquet), relative to the recipe",
        "run.name: required key is missing: name of the run; run directories go under "
        "OUTPUT_DIR/NAME/",
    ]


def test_a_recipe_without_models_is_rejected(write_recipe):
    path = write_recipe('[run]\nname = "tiny"\n[data]\ntrain = "train.csv"\n')
    assert problems(path) == ["models: add at least one [[models]] table naming a model to train"]


def test_an_empty_models_list_asks_for_a_model(write_recipe):
    path = write_recipe('models = []\n[run]\nname = "tiny"\n[data]\ntrain = "train.csv"\n')
    assert problems(path) == ["models: add at least one [[models]] table naming a model to train"]


def test_the_same_model_twice_needs_distinct_names(write_recipe):
    path = write_recipe(with_data("") + '[[models]]\nmodel = "minilm"\n')
    assert problems(path) == [
        "models[1]: 'minilm' appears twice (first at models[0]); "
        'give each entry its own name = "..."'
    ]


def test_the_same_model_twice_with_distinct_names_is_fine(write_recipe):
    path = write_recipe(
        with_data("") + '[[models]]\nmodel = "minilm"\nname = "minilm-slow"\nlearning_rate = 1e-5\n'
    )
    recipe = load_recipe(path, model_names=MODELS)
    assert [m.label for m in recipe.models] == ["minilm", "minilm-slow"]
    assert recipe.models[1].learning_rate == 1e-5


def test_an_entry_named_like_another_model_clashes_with_it(write_recipe):
    path = write_recipe(with_data("") + '[[models]]\nmodel = "e5-small"\nname = "minilm"\n')
    assert problems(path) == [
        "models[1]: 'minilm' appears twice (first at models[0]); "
        'give each entry its own name = "..."'
    ]


@pytest.mark.parametrize("name", ["a/b", "../escape", "..", ".", "", "c:d", "a\\b"])
def test_run_names_that_are_not_plain_names_are_rejected(write_recipe, name):
    # A TOML literal string ('...') keeps the backslash as it is.
    path = write_recipe(with_data("").replace('name = "tiny"', f"name = '{name}'"))
    assert problems(path) == [
        f"run.name: must be a plain name without '/', '\\' or ':', got {name!r}"
    ]


def test_model_entry_names_follow_the_same_rule(write_recipe):
    path = write_recipe(with_data("") + '[[models]]\nmodel = "minilm"\nname = "../x"\n')
    assert problems(path) == [
        "models[1].name: must be a plain name without '/', '\\' or ':', got '../x'"
    ]


# --- files ----------------------------------------------------------------------------------------


def test_a_toml_syntax_error_gives_its_line(write_recipe):
    path = write_recipe('[run]\nname = "tiny"\n[data\ntrain = "train.csv"\n')
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, model_names=MODELS)
    message = str(caught.value)
    assert message.startswith(f"{path} is not a valid recipe (1 problem)\n  - TOML syntax error: ")
    assert message.endswith("(at line 3, column 6)")


def test_a_missing_recipe_file_is_a_recipe_error(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert str(caught.value) == f"{path} is not a valid recipe (1 problem)\n  - file not found"


def test_missing_data_files_are_reported_with_absolute_paths(write_recipe, tmp_path):
    path = write_recipe(
        '[run]\nname = "tiny"\n[data]\ntrain = "data/train.csv"\ntest = "../test.csv"\n'
        '[[models]]\nmodel = "minilm"\n'
    )
    assert problems(path) == [
        f"data.train: file not found: {tmp_path / 'data' / 'train.csv'}",
        f"data.test: file not found: {tmp_path.parent / 'test.csv'}",
    ]


def test_data_paths_are_relative_to_the_recipe_not_the_working_directory(
    write_recipe, tmp_path, monkeypatch
):
    path = write_recipe()
    monkeypatch.chdir(tmp_path.parent)
    recipe = load_recipe(Path(tmp_path.name) / path.name, model_names=MODELS)
    assert recipe.path(recipe.data.train) == tmp_path / "train.csv"


# --- memory and speed options ---------------------------------------------------------------------


def test_checkpointing_optimizer_and_attention_are_training_settings(write_recipe):
    path = write_recipe(
        with_training('gradient_checkpointing = true\noptimizer = "adafactor"\nattention = "eager"')
    )
    training = load_recipe(path, model_names=MODELS).training
    assert (training.gradient_checkpointing, training.optimizer, training.attention) == (
        True,
        "adafactor",
        "eager",
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            'optimizer = "AdamW"',
            "training.optimizer: must be one of 'adamw', 'adamw-8bit', 'adafactor', 'sgd', "
            "got string 'AdamW' (did you mean 'adamw'?)",
        ),
        (
            'attention = "flash_attention_2"',
            "training.attention: must be one of 'sdpa', 'eager', got string 'flash_attention_2'",
        ),
        (
            "gradient_checkpointing = 1",
            "training.gradient_checkpointing: expected true or false, got integer 1",
        ),
        (
            'gradient_checkpointing = "yes"',
            "training.gradient_checkpointing: expected true or false, got string 'yes'",
        ),
    ],
)
def test_memory_options_are_checked_strictly(write_recipe, line, problem):
    assert problems(write_recipe(with_training(line))) == [problem]


def test_memory_options_can_be_set_from_the_command_line(write_recipe):
    sets = [
        "training.gradient_checkpointing=true",
        'training.optimizer="sgd"',
        "training.attention=eager",
    ]
    training = load_recipe(write_recipe(), model_names=MODELS, overrides=sets).training
    assert (training.gradient_checkpointing, training.optimizer, training.attention) == (
        True,
        "sgd",
        "eager",
    )


# --- --set overrides ------------------------------------------------------------------------------


def test_an_override_sets_a_number(write_recipe):
    path = write_recipe(with_training("epochs = 3"))
    assert (
        load_recipe(path, model_names=MODELS, overrides=["training.epochs=1"]).training.epochs == 1
    )


def test_an_override_adds_a_section_the_file_lacks(write_recipe):
    recipe = load_recipe(write_recipe(), model_names=MODELS, overrides=["training.epochs=1"])
    assert recipe.training.epochs == 1


def test_a_bare_word_override_is_a_string(write_recipe, tmp_path):
    (tmp_path / "other.csv").write_text("text,label\na,b\n", encoding="utf-8")
    recipe = load_recipe(write_recipe(), model_names=MODELS, overrides=["data.train=other.csv"])
    assert recipe.data.train == "other.csv"


def test_an_override_is_checked_like_the_file(write_recipe):
    in_file = problems(write_recipe(with_training("epochs = 2.5")))
    from_command_line = problems(write_recipe(), overrides=("training.epochs=2.5",))
    assert in_file == from_command_line == ["training.epochs: expected an integer, got float 2.5"]


@pytest.mark.parametrize(
    "item", ["foo", "epochs=1", ".epochs=1", "training.=1", "models[0]=1", "models[x].epochs=1"]
)
def test_a_malformed_override_is_rejected(write_recipe, item):
    assert problems(write_recipe(), overrides=(item,)) == [
        f"--set {item}: expected SECTION.KEY=VALUE (or models[N].KEY=VALUE)"
    ]


def test_an_override_reaches_a_model_entry_by_its_index(write_recipe):
    path = write_recipe(GOOD_RECIPE + '\n[[models]]\nmodel = "e5-small"\n')
    recipe = load_recipe(
        path,
        model_names=MODELS,
        overrides=["models[1].learning_rate=1e-4", 'models[1].method="lora"', "models[1].lora.r=4"],
    )
    assert recipe.models[0].learning_rate is None
    assert (recipe.models[1].learning_rate, recipe.models[1].method) == (1e-4, "lora")
    assert recipe.models[1].lora.r == 4


def test_an_override_of_a_model_entry_is_checked_like_the_file(write_recipe):
    assert problems(write_recipe(), overrides=("models[0].epochs=2.5",)) == [
        "models[0].epochs: expected an integer, got float 2.5"
    ]


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ("models[3].epochs=1", "the recipe has 1 [[models]] tables (models[0] to models[0])"),
        (
            'models.model="e5-small"',
            "models is a list of [[models]] tables; name one by its index: models[0]",
        ),
        ("run.name.x=1", "run.name is not a table"),
        ("run[0].name=1", "run is not a list of [[run]] tables"),
    ],
)
def test_an_override_that_points_nowhere_says_why(write_recipe, item, problem):
    assert problems(write_recipe(), overrides=(item,)) == [f"--set {item}: {problem}"]


def test_apply_overrides_leaves_the_parsed_document_alone():
    raw = {"run": {"name": "tiny"}, "training": {"epochs": 3}, "models": [{"model": "a"}]}
    changed = apply_overrides(
        raw, ["training.epochs=1", 'run.name="other"', "models[0].epochs=2"], "recipe.toml"
    )
    assert changed == {
        "run": {"name": "other"},
        "training": {"epochs": 1},
        "models": [{"model": "a", "epochs": 2}],
    }
    assert raw == {"run": {"name": "tiny"}, "training": {"epochs": 3}, "models": [{"model": "a"}]}


def test_apply_overrides_reports_every_bad_item():
    with pytest.raises(RecipeError) as caught:
        apply_overrides({}, ["foo", "training.epochs=1", "models[0].x=1"], "recipe.toml")
    assert str(caught.value) == (
        "recipe.toml is not a valid recipe (2 problems)\n"
        "  - --set foo: expected SECTION.KEY=VALUE (or models[N].KEY=VALUE)\n"
        "  - --set models[0].x=1: models is not a list of [[models]] tables"
    )


# --- resolve_training: model entry > [training] > plugin defaults > zoo defaults --------------

# For each training key: the value a model entry, [training] and the plugin give it. Each differs
# from the layers below it, so every case shows which layer won.
LAYERS = {
    "epochs": (1, 2, 5),
    "max_steps": (10, 20, 30),
    "learning_rate": (1e-5, 2e-5, 3e-5),
    "batch_size": (4, 8, 32),
    "eval_batch_size": (4, 8, 32),
    "gradient_accumulation_steps": (2, 3, 4),
    "lr_scheduler": ("linear", "constant", "constant_with_warmup"),
    "warmup_ratio": (0.1, 0.2, 0.3),
    "weight_decay": (0.0, 0.1, 0.2),
    "early_stopping_patience": (0, 1, 5),
    "metric": ("f1_macro", "f1_weighted", "accuracy"),
    "precision": ("fp32", "bf16", "fp16"),
    "max_length": (64, 256, 512),
    "truncation": ("tail", "head+tail", "head"),
    "chunk_stride": (8, 16, 32),
    "threshold": (0.3, 0.4, "tuned"),
    "class_weights": ((1.0, 2.0), "balanced", (3.0, 1.0)),
    "torch_compile": (True, False, True),
    "gradient_checkpointing": (False, True, False),
    "train_embeddings": (False, True, False),
    "optimizer": ("sgd", "adafactor", "adamw-8bit"),
    "attention": ("eager", "sdpa", "eager"),
    "eval_every": (5, "epoch", 20),
    # A table is merged key by key; with the same key in every layer, the first layer wins.
    "trainer": ({"max_grad_norm": 0.5}, {"max_grad_norm": 1.5}, {"max_grad_norm": 2.5}),
    "report_to": (("mlflow",), ("tensorboard",), ("tensorboard", "mlflow")),
}


def test_the_precedence_table_covers_every_training_key():
    assert set(LAYERS) == TRAINING_KEYS


def resolved(key: str, *, entry: bool, training: bool, plugin: bool, tmp_path: Path):
    entry_value, training_value, plugin_value = LAYERS[key]
    raw = {
        "run": {"name": "tiny"},
        "data": {"train": "train.csv"},
        "training": {key: training_value} if training else {},
        "models": [{"model": "minilm", **({key: entry_value} if entry else {})}],
    }
    recipe = structure_recipe(raw, "recipe.toml", tmp_path, MODELS)
    defaults = {key: plugin_value} if plugin else {}
    return getattr(resolve_training(recipe, recipe.models[0], defaults), key)


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_the_model_entry_wins(key, tmp_path):
    value = resolved(key, entry=True, training=True, plugin=True, tmp_path=tmp_path)
    assert value == LAYERS[key][0]


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_training_wins_over_the_plugin_defaults(key, tmp_path):
    value = resolved(key, entry=False, training=True, plugin=True, tmp_path=tmp_path)
    assert value == LAYERS[key][1]


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_plugin_defaults_win_over_zoo_defaults(key, tmp_path):
    value = resolved(key, entry=False, training=False, plugin=True, tmp_path=tmp_path)
    assert value == LAYERS[key][2]


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_zoo_defaults_fill_the_rest(key, tmp_path):
    value = resolved(key, entry=False, training=False, plugin=False, tmp_path=tmp_path)
    assert value == getattr(DEFAULT_TRAINING, key)


def test_zoo_defaults():
    assert attrs.asdict(DEFAULT_TRAINING) == {
        "epochs": 3,
        "max_steps": None,
        "learning_rate": 5e-5,
        "batch_size": 16,
        "eval_batch_size": None,
        "gradient_accumulation_steps": 1,
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.03,
        "weight_decay": 0.01,
        "early_stopping_patience": 3,
        "metric": "f1_macro",
        "precision": "auto",
        "max_length": None,
        "truncation": None,  # "head": the tokenizer's own cut
        "chunk_stride": None,  # a quarter of max_length
        "threshold": None,  # multi-label: tuned on the validation split
        "class_weights": None,
        "torch_compile": False,
        "gradient_checkpointing": False,
        "train_embeddings": True,
        "optimizer": "adamw",
        "attention": "sdpa",
        "eval_every": None,  # once an epoch
        "trainer": None,
        "report_to": None,  # no tracker
    }


# --- eval_every --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ['"epoch"', "1", "250"])
def test_eval_every_is_epoch_or_a_number_of_steps(write_recipe, value):
    recipe = load_recipe(write_recipe(with_training(f"eval_every = {value}")), model_names=MODELS)
    assert recipe.training.eval_every == tomllib.loads(f"v = {value}")["v"]


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("0", "integer 0"),
        ("-3", "integer -3"),
        ("2.5", "float 2.5"),
        ("true", "boolean True"),
        ('"epochs"', "string 'epochs' (did you mean 'epoch'?)"),
        ('"often"', "string 'often'"),
    ],
)
def test_eval_every_refuses_anything_else(write_recipe, value, got):
    assert problems(write_recipe(with_training(f"eval_every = {value}"))) == [
        f"training.eval_every: must be 'epoch' or a positive number of steps, got {got}"
    ]


# --- [training.trainer]: more TrainingArguments --------------------------------------------------


def test_a_trainer_table_of_training_arguments_loads(write_recipe):
    body = "[training.trainer]\nmax_grad_norm = 0.5\nlabel_smoothing_factor = 0.1\n"
    recipe = load_recipe(write_recipe(f"{RUN_AND_DATA}{body}{ONE_MODEL}"), model_names=MODELS)
    assert recipe.training.trainer == {"max_grad_norm": 0.5, "label_smoothing_factor": 0.1}


def test_an_unknown_trainer_key_suggests_the_training_argument(write_recipe):
    body = "[training.trainer]\nmax_grad_nrom = 1.0\n"
    assert problems(write_recipe(f"{RUN_AND_DATA}{body}{ONE_MODEL}")) == [
        "training.trainer.max_grad_nrom: TrainingArguments has no field 'max_grad_nrom' "
        "(did you mean 'max_grad_norm'?)"
    ]


def test_a_training_argument_written_straight_into_training_says_where_it_belongs(write_recipe):
    body = "[training]\nmax_grad_norm = 1.0\nlearnig_rate = 1e-4\n"
    entry = '[[models]]\nmodel = "minilm"\nlabel_smoothing_factor = 0.1\n'
    assert problems(write_recipe(f"{RUN_AND_DATA}{body}{entry}")) == [
        "models[0].label_smoothing_factor: unknown key (a TrainingArguments field: set it as "
        "models[0].trainer.label_smoothing_factor)",
        "training.learnig_rate: unknown key (did you mean 'learning_rate'?)",
        "training.max_grad_norm: unknown key (a TrainingArguments field: set it as "
        "training.trainer.max_grad_norm)",
    ]


def test_a_trainer_key_that_zoo_sets_names_the_recipe_key_to_use(write_recipe):
    body = "[training.trainer]\nlearning_rate = 1e-4\noutput_dir = 'elsewhere'\n"
    entry = '[[models]]\nmodel = "minilm"\ntrainer = { num_train_epochs = 2 }\n'
    assert problems(write_recipe(f"{RUN_AND_DATA}{body}{entry}")) == [
        "training.trainer.learning_rate: zoo sets learning_rate from training.learning_rate: "
        "set training.learning_rate instead",
        "training.trainer.output_dir: zoo sets output_dir itself; a recipe cannot change it",
        "models[0].trainer.num_train_epochs: zoo sets num_train_epochs from training.epochs: "
        "set models[0].epochs (or training.epochs) instead",
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('max_grad_norm = "big"', "expected a number, got string 'big'"),
        ("adam_beta2 = true", "expected a number, got boolean True"),
        ("dataloader_num_workers = 1.5", "expected an integer, got float 1.5"),
        ("ignore_data_skip = 1", "expected true or false, got integer 1"),
        (
            'hub_strategy = "sometimes"',
            "must be one of 'end', 'every_save', 'checkpoint', 'all_checkpoints', "
            "got string 'sometimes'",
        ),
    ],
)
def test_a_trainer_value_of_the_wrong_kind_is_a_recipe_error(write_recipe, line, problem):
    body = f"[training.trainer]\n{line}\n"
    key = line.split(" =")[0]
    assert problems(write_recipe(f"{RUN_AND_DATA}{body}{ONE_MODEL}")) == [
        f"training.trainer.{key}: {problem}"
    ]


def test_the_trainer_setting_must_be_a_table(write_recipe):
    assert problems(write_recipe(with_training("trainer = 3"))) == [
        "training.trainer: expected a table of TrainingArguments fields, got integer 3"
    ]


def test_a_model_entrys_trainer_table_is_merged_key_by_key_over_trainings(write_recipe):
    body = "[training.trainer]\nmax_grad_norm = 0.5\nadam_beta2 = 0.99\n"
    entry = '[[models]]\nmodel = "minilm"\ntrainer = { max_grad_norm = 2.0 }\n'
    recipe = load_recipe(write_recipe(f"{RUN_AND_DATA}{body}{entry}"), model_names=MODELS)
    plugin = {"trainer": {"adam_beta2": 0.9, "label_smoothing_factor": 0.1}}
    settings = resolve_training(recipe, recipe.models[0], plugin)
    assert settings.trainer == {
        "max_grad_norm": 2.0,  # the entry's
        "adam_beta2": 0.99,  # [training]'s, over the plugin's
        "label_smoothing_factor": 0.1,  # the plugin's
    }
    assert recipe.training.trainer == {"max_grad_norm": 0.5, "adam_beta2": 0.99}  # untouched


def test_a_trainer_key_can_be_set_from_the_command_line(write_recipe):
    path = write_recipe(f"{RUN_AND_DATA}{ONE_MODEL}")
    recipe = load_recipe(
        path, model_names=MODELS, overrides=["training.trainer.max_grad_norm=0.25"]
    )
    assert recipe.training.trainer == {"max_grad_norm": 0.25}
    assert problems(path, ("training.trainer.max_grad_nrom=0.25",)) == [
        "training.trainer.max_grad_nrom: TrainingArguments has no field 'max_grad_nrom' "
        "(did you mean 'max_grad_norm'?)"
    ]


# --- shipped recipes ------------------------------------------------------------------------------


def test_recipes_are_shipped():
    assert [p.name for p in RECIPES if p.name == "demo.toml"] == ["demo.toml"]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_validates_against_the_real_registry(path):
    registry = collect_models(get_plugin_manager(entry_points=False))
    recipe = load_recipe(path, model_names=registry.names())
    assert recipe.models


# --- writing a recipe back ------------------------------------------------------------------------


def test_recipe_to_dict_round_trips_through_toml(write_recipe, tmp_path):
    (tmp_path / "val.csv").write_text("text,label\na,b\n", encoding="utf-8")
    path = write_recipe(
        """\
        [run]
        name = "tiny"
        seed = 7

        [data]
        train = "train.csv"
        test = "test.csv"
        validation = "val.csv"
        encoding = "cp949"

        [training]
        epochs = 2
        learning_rate = 3e-5
        lr_scheduler = "linear"

        [[models]]
        model = "minilm"

        [[models]]
        model = "minilm"
        name = "minilm-long"
        max_length = 256
        warmup_ratio = 0.1
        """
    )
    recipe = load_recipe(path, model_names=MODELS)
    data = recipe_to_dict(recipe)
    assert "base_dir" not in data
    safe = {"allow_pickle": False, "trust_remote_code": False}
    assert data["models"] == [
        {"model": "minilm", **safe},
        {"model": "minilm", "name": "minilm-long", "max_length": 256, "warmup_ratio": 0.1, **safe},
    ]
    again = tmp_path / "again.toml"
    again.write_text(tomli_w.dumps(data), encoding="utf-8")
    assert tomllib.loads(again.read_text(encoding="utf-8")) == data
    assert load_recipe(again, model_names=MODELS) == recipe
