"""Errors that zoo reports to the user as one clear message, without a traceback.

Each kind has a fixed exit code so that scripts can tell them apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


class ZooError(Exception):
    """A problem the user can fix; the CLI prints it on stderr and exits with `exit_code`."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n  hint: {self.hint}"


@attrs.frozen
class Problem:
    """One problem found in a recipe: a dotted path into the file and what is wrong there."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class RecipeError(ZooError):
    """A recipe that cannot be run as written; lists every problem found at once."""

    exit_code = 2

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{source} is not a valid recipe ({count} {noun})"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class UsageError(ZooError):
    """A command line that cannot be carried out as given: a path that is not there, an option
    value that makes no sense, options that exclude each other."""

    exit_code = 2


class DataError(ZooError):
    """A data file that is missing, unreadable or unusable for training."""

    exit_code = 3


class ModelUnavailableError(ZooError):
    """A registered model whose weights or files cannot be found on this machine."""

    exit_code = 4


class PluginError(ZooError):
    """A plugin that breaks the rules: a duplicate model name, a bad spec, a misspelled hook."""

    exit_code = 5


class RunRefused(ZooError):
    """A run that zoo will not start on this machine, refused before anything is loaded."""

    exit_code = 6


class UnknownArchitecture(RunRefused):
    """A model whose architecture no model family of the memory estimator claims: zoo will not
    guess its training memory unless asked to (``--rough``)."""

    exit_code = 6


class WontFit(RunRefused):
    """A run whose estimated peak memory exceeds the device's, refused before anything loads."""

    exit_code = 7


class UnknownModelError(ZooError):
    exit_code = 2


class UnknownMetricError(ZooError):
    exit_code = 2


# Exit code of `zoo run` when at least one model failed while the others finished.
EXIT_RUN_FAILED = 1
# argparse's own exit code for a bad command line; recipe errors share it.
EXIT_USAGE = 2
# Exit code of `zoo doctor` when something zoo needs for a run on this device does not work (and
# of `zoo doctor --gpu` on a machine without a CUDA device).
EXIT_DOCTOR = 8
EXIT_INTERRUPTED = 130
