"""The project's own error types, and the exit code each means.

Every error a user can cause (bad data, bad config, bad weights, an unreachable store) is one of these, so the CLI
can print it as one clear line and exit with a documented code instead of dumping a traceback:

    0    success
    1    invalid data, failed validation, a failed step (bad files, weights that fail their check, a store down)
    2    usage or config error (a wrong flag, an unknown or mistyped config key, a setting that cannot work)
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class MocaError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""

    exit_code = EXIT_FAILED


class DataError(MocaError):
    """A dataset file is missing, unreadable or malformed. Always names the file."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(MocaError):
    """A configuration file or value is invalid."""

    exit_code = EXIT_USAGE


class WeightsError(MocaError):
    """Model weights could not be fetched, failed their hash check, or do not fit the model."""


class StorageError(MocaError):
    """An object store or URI could not be read or written."""


class ValidationFailed(MocaError):
    """The data failed its validation suite; training must not start."""
