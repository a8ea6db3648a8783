"""zoo: fine-tune and compare pretrained transformers on text classification.

The same road as the `zoo` command, from Python (a notebook, a script)::

    import zoo

    results = zoo.run("recipes/demo.toml", overrides={"training.epochs": 1})
    results.to_pandas()                      # one row per run; shown as the CLI's table
    zoo.check("recipes/koalpaca-full.toml", gpu="a100-40gb")
    zoo.compare("runs")                      # the leaderboard of the recorded runs
    zoo.predict(results[0].run_dir, ["로그인이 안 돼요"]).to_pandas()
    zoo.doctor().ok                          # zoo doctor: can this machine run zoo?

Problems raise `zoo.ZooError` subclasses (`zoo.RecipeError` lists every problem of a recipe)
with the messages the command line prints.

This module is also the public face for plugin authors::

    import zoo

    @zoo.hookimpl
    def register_models(register):
        register(zoo.ModelSpec(name="my-bert", description="...", family="bert",
                               source=zoo.HubSource(repo_id="org/my-bert")))

What a plugin can give zoo (models, device probes, run listeners) is in `zoo.hookspecs`. A
custom engine (`zoo.CustomEngine`) takes a `zoo.TrainJob` and returns a `zoo.TrainResult`,
scoring its splits with `zoo.score_split`; those load on first use (they import scikit-learn),
so ``import zoo`` stays cheap.
"""

from typing import Any

from zoo.api import (
    check,
    compare,
    doctor,
    load_run,
    models,
    predict,
    predict_file,
    record,
    run,
    validate,
)
from zoo.engine.device import DeviceInfo, PeakMemory
from zoo.errors import (
    DataError,
    ModelUnavailableError,
    PluginError,
    RecipeError,
    RunRefused,
    UsageError,
    WontFit,
    ZooError,
)
from zoo.events import RunEvaluated, RunEvent, RunEvents, RunFailed, RunFinished, RunStarted
from zoo.executors import ExecutorSpec
from zoo.hookspecs import hookimpl
from zoo.memory.families.base import ModelFamily
from zoo.memory.probe import DeviceMemory
from zoo.metrics import Metric
from zoo.results import Checkup, Estimate, Leaderboard, Models, Predictions, Results, Run
from zoo.spec import (
    CustomEngine,
    HubSource,
    LocalSource,
    ModelSpec,
    NoWeights,
    ResolvedSource,
    Resources,
    TokenizerSettings,
)
from zoo.transforms import TextTransform

__version__ = "0.1.0"

# The API for custom engines, imported when first used: zoo.engine.jobs imports scikit-learn.
_ENGINE_API = ("NOT_SCORED", "Progress", "TrainJob", "TrainResult", "score_split")


def __getattr__(name: str) -> Any:
    if name in _ENGINE_API:
        from zoo.engine import jobs

        return getattr(jobs, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "NOT_SCORED",
    "Checkup",
    "CustomEngine",
    "DataError",
    "DeviceInfo",
    "DeviceMemory",
    "Estimate",
    "ExecutorSpec",
    "HubSource",
    "Leaderboard",
    "LocalSource",
    "Metric",
    "ModelFamily",
    "ModelSpec",
    "ModelUnavailableError",
    "Models",
    "NoWeights",
    "PeakMemory",
    "PluginError",
    "Predictions",
    "Progress",
    "RecipeError",
    "ResolvedSource",
    "Resources",
    "Results",
    "Run",
    "RunRefused",
    "RunEvaluated",
    "RunEvent",
    "RunEvents",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "TextTransform",
    "TokenizerSettings",
    "TrainJob",
    "TrainResult",
    "UsageError",
    "WontFit",
    "ZooError",
    "__version__",
    "check",
    "compare",
    "doctor",
    "hookimpl",
    "load_run",
    "models",
    "predict",
    "predict_file",
    "record",
    "run",
    "score_split",
    "validate",
]
