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


class MlflowTracker:
    """One MLflow run (nested under an active pipeline run, if any) through `moca.tracking.runs`, whose store
    defaults to SQLite under .moca/ and which scrubs credentials from params and text artifacts."""

    def __init__(self, experiment: str, run_name: str) -> None:
        import mlflow

        from moca.tracking import runs

        self.mlflow, self.runs = mlflow, runs
        experiment_id = runs.ensure_experiment(experiment)
        nested = mlflow.active_run() is not None
        self.run = mlflow.start_run(run_name=run_name, experiment_id=None if nested else experiment_id, nested=nested)
        runs.set_tags({"moca.kind": "train", "moca.git_sha": runs.git_sha()})

    def log_params(self, params: dict[str, Any]) -> None:
        self.runs.log_params(params)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.runs.log_metrics(metrics, step=step)

    def log_artifact(self, path: Path) -> None:
        self.runs.log_artifacts(path)

    def close(self, status: str = "FINISHED") -> None:
        self.mlflow.end_run(status=status)
