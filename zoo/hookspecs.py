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


@hookspec
def register_model_families(register: Callable[..., None]) -> None:
    """Register the model families this plugin teaches the memory estimator.

    Call ``register(family)`` once per `zoo.ModelFamily` instance. A family claims the
    ``model_type`` values of a Hugging Face ``config.json`` (`ModelFamily.model_types`) and
    says, from the config's numbers alone, what a model of that architecture holds: its
    parameter tensors, what its layers save for the backward pass, its dropout defaults and its
    parameter count. `zoo check` and `zoo run`'s memory check refuse an architecture that no
    family claims (unless ``--rough``). Registration is declarative: no torch, no weights. A
    ``model_type`` that another plugin's family claims already is an error, unless the call
    says ``register(family, replace=True)`` to override that family on purpose.
    """


@hookspec(firstresult=True)
def zoo_device_memory():
    """Describe the device a run will train on: return a `zoo.memory.probe.DeviceMemory`, or
    None to let the next plugin answer. zoo's built-in answer (CUDA, else the CPU's RAM) comes
    last; a plugin for another back-end answers first. Called only by `zoo check` and `zoo run`,
    so it may import torch.
    """
