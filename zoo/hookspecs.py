"""The hooks that zoo plugins implement. Built-in and third-party plugins use the same ones."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def register_models(register: Callable[..., None]) -> None:
    """Register the models this plugin provides.

    Call ``register(spec)`` once per `zoo.ModelSpec`. Registration is declarative: do not touch
    the network, import torch or load weights here; loading happens when a run needs the model.
    A name that another plugin registered already is an error, unless the call says
    ``register(spec, replace=True)`` to override that model on purpose.
    """
