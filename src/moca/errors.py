"""The project's own error types.

Every error a user can cause (bad data, bad config, bad weights, an unreachable store) is one of these, so the CLI
can print it as one clear line and exit non-zero instead of dumping a traceback.
"""

from __future__ import annotations

from pathlib import Path


class MocaError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""


class DataError(MocaError):
    """A dataset file is missing, unreadable or malformed. Always names the file."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(MocaError):
    """A configuration file or value is invalid."""


class WeightsError(MocaError):
    """Model weights could not be fetched, failed their hash check, or do not fit the model."""


class StorageError(MocaError):
    """An object store or URI could not be read or written."""


class ValidationFailed(MocaError):
    """The data failed its validation suite; training must not start."""
