"""Where a run's params, per-step metrics and artifacts go: MLflow through `moca.tracking`, or nowhere.

The loop talks to this small interface only, so tests (and ranks other than 0) run with `NullTracker` and the
MLflow details (store location, run naming) stay in `moca.tracking`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_artifact(self, path: Path) -> None: ...

    def close(self, status: str = "FINISHED") -> None: ...


class NullTracker:
    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: Path) -> None:
        pass

    def close(self, status: str = "FINISHED") -> None:
        pass


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class MlflowTracker:
    """One MLflow run; the tracking URI comes from `moca.tracking` (default: SQLite under .moca/)."""

    def __init__(self, experiment: str, run_name: str) -> None:
        import mlflow

        from moca import tracking

        tracking.configure()
        self.mlflow = mlflow
        mlflow.set_experiment(experiment)
        self.run = mlflow.start_run(run_name=run_name)

    def log_params(self, params: dict[str, Any]) -> None:
        # MLflow caps a param value at 6000 characters; configs are far smaller
        self.mlflow.log_params({k: str(v) for k, v in _flatten(params).items()})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics(metrics, step=step)

    def log_artifact(self, path: Path) -> None:
        self.mlflow.log_artifact(str(path))

    def close(self, status: str = "FINISHED") -> None:
        self.mlflow.end_run(status=status)
