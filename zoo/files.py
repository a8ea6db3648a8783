"""Writing results so that a crash never leaves a half-written file, and never overwriting."""

from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

from zoo.errors import UsageError


def check_output(
    output_path: Path, *, overwrite: bool, option: str = "--output", example: str = "submission.csv"
) -> None:
    """Refuse an output file (given as `option`) that cannot be written or must not be replaced,
    before any work: zoo never replaces a file unless asked to (--force)."""
    if output_path.is_dir():
        raise UsageError(
            f"{option} {output_path} is a folder; give the file to write",
            hint=f"e.g. {option} {output_path / example}",
        )
    if not output_path.parent.is_dir():
        what = "is a file" if output_path.parent.exists() else "does not exist"
        raise UsageError(
            f"{option} {output_path}: the folder {output_path.parent} {what}",
            hint=f"make the folder first, or give {option} a file in a folder that exists",
        )
    if output_path.exists() and not overwrite:
        raise UsageError(
            f"{output_path} exists already; zoo does not overwrite it",
            hint=f"choose another {option}, or add --force to replace it",
        )


def write_text(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def safe_name(name: str) -> str:
    """A name that is safe as one path component: letters and digits of any script (NFC, so
    that a name reads the same on every file system), '.', '_' and '-'."""
    cleaned = re.sub(r"[^\w.-]+", "-", unicodedata.normalize("NFC", name)).strip(".-")
    return cleaned or "run"


def new_run_dir(parent: Path, name: str, now: datetime | None = None) -> Path:
    """Make a fresh directory `parent/NAME-YYYYmmdd-HHMMSS[-N]`; an existing one is never reused."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{safe_name(name)}-{stamp}"
    for attempt in range(1, 1000):
        candidate = parent / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not make a new run directory under {parent}")
