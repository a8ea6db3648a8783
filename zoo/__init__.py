"""zoo: fine-tune and compare pretrained transformers on text classification.

This module is the public face for plugin authors::

    import zoo

    @zoo.hookimpl
    def register_models(register):
        register(zoo.ModelSpec(name="my-bert", description="...", family="bert",
                               source=zoo.HubSource(repo_id="org/my-bert")))
"""

from zoo.hookspecs import hookimpl
from zoo.memory.families.base import ModelFamily
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

__version__ = "0.1.0"

__all__ = [
    "CustomEngine",
    "HubSource",
    "LocalSource",
    "ModelFamily",
    "ModelSpec",
    "NoWeights",
    "ResolvedSource",
    "Resources",
    "TokenizerSettings",
    "__version__",
    "hookimpl",
]
