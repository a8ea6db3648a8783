"""The device a run plans for and trains on comes from the probes that plugins register through
`register_device_probes`; zoo's own (CUDA, else the CPU's RAM) answers last."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

import zoo
import zoo.memory.probe
import zoo.plugins
from zoo.cli import main
from zoo.engine.device import detect
from zoo.errors import PluginError
from zoo.memory.probe import probe_device

ROOT = Path(__file__).resolve().parent.parent

GPU = zoo.DeviceMemory(name="a cluster's A100", kind="cuda", available=40 * 2**30, bf16=True)


class ClusterProbe:
    """A back-end zoo does not know: it answers for the device the scheduler gives."""

    @zoo.hookimpl
    def register_device_probes(self, register):
        register(lambda: GPU)


class Abstains:
    @zoo.hookimpl
    def register_device_probes(self, register):
        register(lambda: None)


@pytest.fixture
def small_cpu(monkeypatch):
    """This machine as the built-in probe sees it, without CUDA, with 8 GiB of RAM free."""
    import zoo.engine.device

    monkeypatch.setattr(zoo.engine.device, "cuda_device", lambda: None)
    monkeypatch.setattr(zoo.memory.probe, "_ram", lambda: 8 * 2**30)


@pytest.mark.parametrize("builtin_first", [True, False])
def test_hook_register_device_probes(pm, small_cpu, builtin_first):
    """A plugin's probe answers before the built-in one, whichever registered first."""
    if builtin_first:
        pm.register(zoo.memory.probe, name="zoo.memory.probe")
    pm.register(ClusterProbe(), name="cluster")
    if not builtin_first:
        pm.register(zoo.memory.probe, name="zoo.memory.probe")
    assert probe_device(pm) == GPU
    # The engine trains on what the probe found: its kind and bf16 pick the precision.
    assert detect(probe_device(pm)) == zoo.DeviceInfo("cuda", "a cluster's A100", True)


def test_a_probe_that_returns_none_lets_the_built_in_one_answer(pm, small_cpu):
    pm.register(zoo.memory.probe, name="zoo.memory.probe")
    pm.register(Abstains(), name="abstains")
    found = probe_device(pm)
    assert (found.kind, found.available, found.count) == ("cpu", 8 * 2**30, 1)
    assert found.name.startswith("CPU (")
    assert detect(found) == zoo.DeviceInfo("cpu", found.name, False)


def test_without_an_answer_from_the_probes_the_engine_asks_the_built_in_one(small_cpu):
    assert detect().kind == "cpu"


def test_a_probe_that_raises_is_an_error_naming_its_plugin(pm):
    class Broken:
        @zoo.hookimpl
        def register_device_probes(self, register):
            register(lambda: 1 / 0)

    pm.register(Broken(), name="broken-probe")
    with pytest.raises(PluginError) as caught:
        probe_device(pm)
    assert caught.value.message == (
        "the device probe of plugin 'broken-probe' failed: ZeroDivisionError: division by zero"
    )


def test_a_probe_that_returns_something_else_is_an_error(pm):
    class Wrong:
        @zoo.hookimpl
        def register_device_probes(self, register):
            register(lambda: "40GiB")

    pm.register(Wrong(), name="wrong")
    with pytest.raises(PluginError, match="returned '40GiB', which is not a zoo.DeviceMemory"):
        probe_device(pm)


def test_no_probe_at_all_is_an_error_that_says_so(pm):
    with pytest.raises(PluginError, match="no device probe answered"):
        probe_device(pm)


def test_zoo_check_plans_for_the_device_a_plugin_probe_reports(monkeypatch, capsys):
    plugin = types.ModuleType("zoo_test_cluster_probe")
    plugin.register_device_probes = ClusterProbe().register_device_probes
    monkeypatch.setitem(sys.modules, plugin.__name__, plugin)
    monkeypatch.setattr(
        zoo.plugins, "BUILTIN_PLUGINS", (*zoo.plugins.BUILTIN_PLUGINS, plugin.__name__)
    )
    monkeypatch.setenv("ZOO_PLUGINS", "")

    main(["check", str(ROOT / "recipes" / "koalpaca-lora.toml"), "--json"])
    models = json.loads(capsys.readouterr().out)["models"]
    assert {(m["device"], m["device_bytes"]) for m in models} == {("a cluster's A100", 40 * 2**30)}


def test_the_readme_s_cluster_probe_answers_on_the_cluster_only(pm, small_cpu, monkeypatch):
    from test_run_events import readme_example

    probe = types.ModuleType("readme_probe")
    exec(readme_example("register_device_probes"), probe.__dict__)
    pm.register(zoo.memory.probe, name="zoo.memory.probe")
    pm.register(probe, name="readme-probe")
    assert probe_device(pm).kind == "cpu"  # not on the cluster: zoo's own probe answers
    monkeypatch.setenv("CLUSTER_GPU_BYTES", str(80 * 2**30))
    monkeypatch.setenv("CLUSTER_GPU_NAME", "H100")
    found = probe_device(pm)
    assert (found.name, found.kind, found.available, found.bf16) == (
        "H100",
        "cuda",
        80 * 2**30,
        True,
    )
