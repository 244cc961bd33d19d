"""MLflow for the steps: a parent run per pipeline run, a nested run per step, and the champion's training data.

Steps of one pipeline run may execute in different processes (KFP pods), so the parent run is created once by
`start_pipeline_run` and every step names it by id; nothing relies on MLflow's in-process active-run stack.
With no parent run id a step runs untracked (unit tests, a step called by hand).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from moca.steps.manifest import MANIFEST, StepResult
from moca.tracking import runs
from moca.tracking.scrub import scrub

log = logging.getLogger("moca.steps")
TRAINING_STATS = "training_data/stats.json"  # where the register step keeps the model's training-data statistics


def start_pipeline_run(run_name: str, params: Mapping[str, Any] | None = None,
                       tags: Mapping[str, Any] | None = None, experiment: str = runs.DEFAULT_EXPERIMENT) -> str:
    """Create (and leave running) the parent run of one pipeline run; returns its id for the steps."""
    from mlflow import MlflowClient

    experiment_id = runs.ensure_experiment(experiment)
    client = MlflowClient()
    all_tags = {"moca.kind": "pipeline", "moca.git_sha": runs.git_sha(), **(tags or {})}
    run = client.create_run(experiment_id, run_name=run_name,
                            tags={scrub(str(k)): scrub(str(v)) for k, v in all_tags.items()})
    for key, value in runs.flatten(params or {}).items():
        client.log_param(run.info.run_id, scrub(str(key)), scrub(str(value))[:runs.MAX_PARAM_LENGTH])
    return run.info.run_id


def finish_pipeline_run(run_id: str, status: str = "FINISHED", metrics: Mapping[str, float] | None = None) -> None:
    from mlflow import MlflowClient

    runs.configure()
    client = MlflowClient()
    for key, value in runs.flatten(metrics or {}).items():
        client.log_metric(run_id, key, float(value))
    client.set_terminated(run_id, status)


@contextlib.contextmanager
def step_tracking(step: str, parent_run_id: str | None, params: Mapping[str, Any]) -> Iterator[Any]:
    """A nested run for `step` under `parent_run_id` (or nothing when None); a failure fails the parent too."""
    if not parent_run_id:
        yield None
        return
    import mlflow

    try:
        with runs.step_run(step, params=params, parent_run_id=parent_run_id) as run:
            # Libraries that open their own run (training's tracker) nest under this one, in this experiment.
            mlflow.set_experiment(experiment_id=run.info.experiment_id)
            yield run
    except BaseException:
        finish_pipeline_run(parent_run_id, "FAILED")
        raise


def log_step(result: StepResult) -> None:
    """Metrics, manifest and declared artifacts of a step into the active step run (no-op when untracked)."""
    import mlflow

    if mlflow.active_run() is None:
        return
    runs.set_tags({"moca.skipped": result.skipped, "moca.data_version": result.manifest.get("data_version")})
    if result.metrics:
        runs.log_metrics(result.metrics)
    runs.log_artifacts(result.out / MANIFEST, artifact_path="step")
    for relative in result.manifest.get("artifacts", []):
        runs.log_artifacts(result.out / relative)


def champion(model_name: str) -> Any | None:
    """The registered `@champion` version of `model_name` (an MLflow ModelVersion), or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from moca.tracking.registry import CHAMPION

    runs.configure()
    try:
        return MlflowClient().get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:  # no such model, or no champion yet
        return None


def newest_version(model_name: str) -> Any | None:
    from mlflow import MlflowClient

    runs.configure()
    versions = MlflowClient().search_model_versions(f"name='{model_name}'")
    return max(versions, key=lambda v: int(v.version)) if versions else None


def champion_training_stats(model_name: str) -> tuple[str, dict[str, Any]] | None:
    """(champion version, statistics of the data it was trained on), or None when there is no champion."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from moca.io import read_json

    champion_version = champion(model_name)
    if champion_version is None or not champion_version.run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="moca-champion-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=champion_version.run_id, artifact_path=TRAINING_STATS,
                                                       dst_path=tmp)
        except (MlflowException, OSError) as exc:
            log.warning("champion v%s has no %s (%s); drift not checked", champion_version.version, TRAINING_STATS,
                        exc)  # fmt: skip
            return None
        return str(champion_version.version), read_json(Path(path))
