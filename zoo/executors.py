"""Executors: what runs the work units of a recipe (`zoo run --jobs N --executor NAME`).

An executor is registered through the `register_executors` hook as an `ExecutorSpec`; zoo's
own three use the same hook:

- ``local``: subprocesses on this machine (`python -m zoo.units UNIT_FILE`), each pinned to
  its GPU through CUDA_VISIBLE_DEVICES, or given its share of the CPU cores;
- ``submitit``: SLURM job arrays through submitit (``pip install "zoo-classify[slurm]"``);
  ``cluster = "local"`` runs the same path without a cluster;
- ``ray``: Ray tasks with ``num_gpus`` per unit, on an existing cluster (``address``) or a
  local one (``pip install "zoo-classify[ray]"``).

Workers train and write run directories and result files; only the coordinator writes the
results store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from zoo.errors import PluginError, UsageError
from zoo.hookspecs import hookimpl


class Executor(Protocol):
    """Runs unit files; the coordinator polls what it started."""

    def submit(self, unit_file: Path, slot: int) -> Any:
        """Start the unit; `slot` (0 to jobs - 1) is the one it may use (its GPU)."""

    def done(self, handle: Any) -> bool:
        """Whether the unit has ended, well or not."""

    def failure(self, handle: Any) -> str | None:
        """Why an ended unit's worker failed (it wrote no result), or None."""

    def cancel(self, handle: Any) -> None:
        """Stop a unit that has not ended."""

    def close(self) -> None:
        """Free what the executor holds (a local Ray, ...)."""


@attrs.frozen(kw_only=True)
class ExecutorSpec:
    """An executor by name: `make(settings, folder, jobs)` builds it from the recipe's
    [executor] table (`settings`), a folder for its own files, and how many units may run at
    once."""

    name: str
    description: str
    make: Callable[[Mapping[str, Any], Path, int], Executor]


@attrs.define
class ExecutorRegistry:
    specs: dict[str, ExecutorSpec] = attrs.field(factory=dict)
    failures: list[tuple[str, str]] = attrs.field(factory=list)

    def get(self, name: str) -> ExecutorSpec:
        if name not in self.specs:
            import difflib

            guess = difflib.get_close_matches(name, list(self.specs), n=1)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            raise UsageError(
                f"unknown executor {name!r}",
                hint=f"{hint}the executors: {', '.join(self.specs)} (a plugin adds more "
                "through register_executors)",
            )
        return self.specs[name]


def collect_executors(pm: Any) -> ExecutorRegistry:
    from zoo.plugins import registrations

    registry = ExecutorRegistry()
    for plugin, spec, replace in registrations(pm, "register_executors", registry.failures):
        if not isinstance(spec, ExecutorSpec):
            registry.failures.append((plugin, f"registered {spec!r}, not a zoo.ExecutorSpec"))
            continue
        if spec.name in registry.specs and not replace:
            raise PluginError(
                f"plugin {plugin!r} registers the executor {spec.name!r}, which is registered "
                "already",
                hint="give it another name, or register(spec, replace=True) to replace it",
            )
        registry.specs[spec.name] = spec
    return registry


# ---------------------------------------------------------------------------------------------
# local: subprocesses


def cpu_share(jobs: int, cores: int | None = None) -> int:
    """The CPU threads each of `jobs` units on this machine gets: the cores split evenly."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // jobs)


def gpu_count() -> int:
    """CUDA devices this process can see, without importing torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    try:
        found = subprocess.run(
            ["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    return len(found.stdout.splitlines()) if found.returncode == 0 else 0


def unit_environment(slot: int, jobs: int, gpus: int, nproc: int = 1) -> dict[str, str]:
    """A local unit's environment: its GPUs (`nproc` of them, the slot's in turn), or its
    share of the CPU cores (each of its processes a share)."""
    env = dict(os.environ)
    if gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = visible.split(",") if visible else [str(i) for i in range(gpus)]
        mine = [devices[(slot * nproc + i) % len(devices)].strip() for i in range(nproc)]
        env["CUDA_VISIBLE_DEVICES"] = ",".join(mine)
    else:
        threads = str(cpu_share(jobs * nproc))
        env |= {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    return env


def gpus_per_unit(settings: Mapping[str, Any]) -> int:
    """The GPUs a submitit or Ray unit asks for: as [executor] says, else one per process of
    a distributed unit when this machine has GPUs (none on a CPU)."""
    if settings.get("gpus_per_unit") is not None:
        return int(settings["gpus_per_unit"])
    return int(settings.get("nproc") or 1) if gpu_count() else 0


class LocalExecutor:
    def __init__(self, settings: Mapping[str, Any], folder: Path, jobs: int) -> None:
        self.jobs = jobs
        self.gpus = gpu_count()
        self.nproc = int(settings.get("nproc") or 1)

    def submit(self, unit_file: Path, slot: int) -> Any:
        log = unit_file.with_suffix(".log").open("w", encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "zoo.units", str(unit_file)],
            env=unit_environment(slot, self.jobs, self.gpus, self.nproc),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return (process, unit_file)

    def done(self, handle: Any) -> bool:
        return handle[0].poll() is not None

    def failure(self, handle: Any) -> str | None:
        process, unit_file = handle
        if process.returncode == 0:
            return None
        log = unit_file.with_suffix(".log")
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        return f"its process exited with {process.returncode}: {' / '.join(tail)} (see {log})"

    def cancel(self, handle: Any) -> None:
        handle[0].terminate()
        try:
            handle[0].wait(timeout=30)
        except subprocess.TimeoutExpired:
            handle[0].kill()

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------
# submitit: SLURM


def _extra(name: str, extra: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        raise UsageError(
            f"the {name!r} executor needs {name}, which is not installed",
            hint=f'pip install {name} (or zoo with its extra: pip install "zoo-classify[{extra}]")',
        ) from None


class SubmititExecutor:
    """Each unit a SLURM job (the jobs of one zoo run form its array in the queue)."""

    def __init__(self, settings: Mapping[str, Any], folder: Path, jobs: int) -> None:
        submitit = _extra("submitit", "slurm")
        cluster = settings.get("cluster")
        self.executor = submitit.AutoExecutor(folder=str(folder / "submitit"), cluster=cluster)
        parameters: dict[str, Any] = {"slurm_array_parallelism": jobs}
        if settings.get("time_limit_minutes") is not None:
            parameters["timeout_min"] = settings["time_limit_minutes"]
        if settings.get("cpus_per_unit") is not None:
            parameters["cpus_per_task"] = settings["cpus_per_unit"]
        if gpus_per_unit(settings):
            parameters["gpus_per_node"] = gpus_per_unit(settings)
        if self.executor.cluster == "slurm":
            if settings.get("partition") is not None:
                parameters["slurm_partition"] = settings["partition"]
            if settings.get("sbatch"):
                parameters["slurm_additional_parameters"] = dict(settings["sbatch"])
        self.executor.update_parameters(**parameters)

    def submit(self, unit_file: Path, slot: int) -> Any:
        from zoo.units import run_unit_file

        return self.executor.submit(run_unit_file, str(unit_file))

    def done(self, handle: Any) -> bool:
        return handle.done()

    def failure(self, handle: Any) -> str | None:
        error = handle.exception()
        return None if error is None else f"its job {handle.job_id} failed: {error}"

    def cancel(self, handle: Any) -> None:
        handle.cancel(check=False)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------
# Ray


class RayExecutor:
    """Each unit a Ray task asking for `gpus_per_unit` GPUs and `cpus_per_unit` CPUs."""

    def __init__(self, settings: Mapping[str, Any], folder: Path, jobs: int) -> None:
        self.ray = _extra("ray", "ray")
        self.started = False
        if not self.ray.is_initialized():
            address = settings.get("address")
            options: dict[str, Any] = {"address": address, "include_dashboard": False}
            if address is None:  # a local Ray of this machine's CPUs, for these units
                options |= {"num_cpus": settings.get("cpus") or os.cpu_count() or 1}
            self.ray.init(**options, log_to_driver=False)
            self.started = True
        from zoo.units import run_unit_file

        resources = {
            "num_cpus": settings.get("cpus_per_unit") or cpu_share(jobs),
            "num_gpus": gpus_per_unit(settings),
        }
        self.task = self.ray.remote(**resources)(run_unit_file)

    def submit(self, unit_file: Path, slot: int) -> Any:
        return self.task.remote(str(unit_file))

    def done(self, handle: Any) -> bool:
        ready, _ = self.ray.wait([handle], timeout=0)
        return bool(ready)

    def failure(self, handle: Any) -> str | None:
        try:
            self.ray.get(handle)
        except Exception as exc:
            return f"its Ray task failed: {type(exc).__name__}: {exc}"
        return None

    def cancel(self, handle: Any) -> None:
        self.ray.cancel(handle, force=True)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


BUILTIN_EXECUTORS = (
    ExecutorSpec(
        name="local",
        description="subprocesses on this machine (--jobs N at a time; a GPU each, or a share "
        "of the CPU cores)",
        make=LocalExecutor,
    ),
    ExecutorSpec(
        name="submitit",
        description="SLURM jobs through submitit ([executor] partition, gpus_per_unit, "
        "cpus_per_unit, time_limit_minutes, sbatch; cluster = 'local' without SLURM)",
        make=SubmititExecutor,
    ),
    ExecutorSpec(
        name="ray",
        description="Ray tasks ([executor] address of a cluster, else a local Ray; "
        "gpus_per_unit, cpus_per_unit)",
        make=RayExecutor,
    ),
)


@hookimpl
def register_executors(register: Callable[..., None]) -> None:
    for spec in BUILTIN_EXECUTORS:
        register(spec)
