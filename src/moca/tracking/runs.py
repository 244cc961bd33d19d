"""MLflow runs for the pipeline: one parent run per pipeline run, one nested run per step.

Where runs go: `MLFLOW_TRACKING_URI` when set (an MLflow server URL, with artifacts on S3 configured server-side
or through `MLFLOW_S3_ENDPOINT_URL`), otherwise a SQLite store and an artifact folder under `.moca/` in the current
directory, so a laptop needs no server. Every param, tag and text goes through the credential scrubber.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from moca.config import flatten
from moca.tracking.scrub import scrub, scrub_obj, secret_values

DEFAULT_HOME = Path(".moca")
DEFAULT_EXPERIMENT = "moca"
RUN_KEY_TAG = "moca.run_key"  # names the parent run of one Kubeflow run (its run id), so tasks find it by key
# MLflow refuses longer param values; the full config is logged as an artifact anyway.
MAX_PARAM_LENGTH = 6000
TEXT_SUFFIXES = {".json", ".yaml", ".yml", ".txt", ".md", ".html", ".csv", ".log", ".cfg", ".ini", ".toml"}


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_HOME / 'mlflow.db'}"


def local_artifact_root() -> Path:
    return Path(os.environ.get("MOCA_ARTIFACT_ROOT") or DEFAULT_HOME / "mlartifacts")


def local_store_path(uri: str | None = None) -> Path | None:
    """The SQLite file of a local store (used for the promotion lock), or None for a server."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///"))
    return None


def configure() -> str:
    """Point MLflow at the project's store (creating the local one when needed); returns the tracking URI."""
    import mlflow

    uri = tracking_uri()
    store = local_store_path(uri)
    if store is not None:
        store.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str = DEFAULT_EXPERIMENT) -> str:
    """The experiment id, creating it with a local artifact folder when the store is local."""
    import mlflow

    configure()
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if local_store_path() is not None:
        location = local_artifact_root().resolve().as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except Exception:  # another process created it between our read and write: use theirs
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def git_sha(repo: Path | None = None) -> str:
    """The commit the code runs from: `MOCA_GIT_SHA` (set in images built without .git) or `git rev-parse`."""
    if sha := os.environ.get("MOCA_GIT_SHA"):
        return sha
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def _clean_params(params: Mapping[str, Any]) -> dict[str, str]:
    secrets = secret_values()
    return {scrub(str(k), secrets): scrub(str(v), secrets)[:MAX_PARAM_LENGTH] for k, v in flatten(params).items()}


def log_params(params: Mapping[str, Any]) -> None:
    import mlflow

    mlflow.log_params(_clean_params(params))


def set_tags(tags: Mapping[str, Any]) -> None:
    import mlflow

    mlflow.set_tags(_clean_params(tags))


def log_metrics(metrics: Mapping[str, float], step: int | None = None, model_id: str | None = None,
                dataset: Any | None = None) -> None:
    """Metrics of the active run; with `model_id` also of that logged model (what the registry compares), with
    `dataset` (moca.tracking.datasets.data_input) marked as measured on that data version."""
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in flatten(metrics).items()}, step=step, model_id=model_id,
                       dataset=dataset)


def log_table(rows: list[Mapping[str, Any]], artifact_file: str) -> None:
    """A table artifact of the active run (`mlflow.log_table`): the UI shows it, and compares it across runs that
    log the same `artifact_file`."""
    import mlflow
    import pandas as pd

    mlflow.log_table(pd.DataFrame([scrub_obj(dict(row)) for row in rows]), artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    import mlflow

    mlflow.log_text(scrub(text), artifact_file)


def log_artifacts(path: str | Path, artifact_path: str | None = None) -> None:
    """Log a file or folder (reports, manifests); text files are scrubbed on the way, binaries copied as is."""
    import mlflow

    path = Path(path)
    secrets = secret_values()
    with tempfile.TemporaryDirectory(prefix="moca-artifacts-") as staging:
        target = Path(staging) / path.name
        if path.is_dir():
            shutil.copytree(path, target)
            files = [f for f in target.rglob("*") if f.is_file()]
        else:
            shutil.copy2(path, target)
            files = [target]
        for file in files:
            if file.suffix.lower() in TEXT_SUFFIXES:
                text = file.read_text(encoding="utf-8", errors="surrogateescape")
                file.write_text(scrub(text, secrets), encoding="utf-8", errors="surrogateescape")
        if path.is_dir():
            mlflow.log_artifacts(str(target), artifact_path=f"{artifact_path}/{path.name}" if artifact_path
                                 else path.name)
        else:
            mlflow.log_artifact(str(target), artifact_path=artifact_path)


@contextlib.contextmanager
def pipeline_run(run_name: str, params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
                 experiment: str = DEFAULT_EXPERIMENT) -> Iterator[Any]:
    """The parent run of one pipeline run; tagged with the git SHA. Yields the mlflow ActiveRun."""
    import mlflow

    experiment_id = ensure_experiment(experiment)
    with mlflow.start_run(run_name=run_name, experiment_id=experiment_id) as run:
        set_tags({"moca.git_sha": git_sha(), "moca.kind": "pipeline", **(tags or {})})
        if params:
            log_params(params)
        yield run


@contextlib.contextmanager
def step_run(step: str, params: Mapping[str, Any] | None = None, parent_run_id: str | None = None) -> Iterator[Any]:
    """A nested run for one step, under the active parent run or `parent_run_id` (a step in its own process)."""
    import mlflow

    if mlflow.active_run() is None and parent_run_id is None:
        raise RuntimeError("step_run needs an active pipeline_run or an explicit parent_run_id")
    # Nested runs otherwise land in the default experiment, not beside their parent.
    if parent_run_id is None:
        experiment_id = mlflow.active_run().info.experiment_id
    else:
        configure()
        experiment_id = mlflow.get_run(parent_run_id).info.experiment_id
    with mlflow.start_run(run_name=step, nested=True, parent_run_id=parent_run_id,
                          experiment_id=experiment_id) as run:
        set_tags({"moca.step": step, "moca.kind": "step"})
        if params:
            log_params(params)
        yield run


def start_pipeline_run(run_name: str, params: Mapping[str, Any] | None = None,
                       tags: Mapping[str, Any] | None = None, experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Create (and leave running) the parent run of one pipeline run; returns its id for the steps.

    Steps of one pipeline run may execute in different processes (KFP pods), so every step names this run by id;
    nothing relies on MLflow's in-process active-run stack."""
    from mlflow import MlflowClient

    experiment_id = ensure_experiment(experiment)
    client = MlflowClient()
    all_tags = {"moca.kind": "pipeline", "moca.git_sha": git_sha(), **(tags or {})}
    run = client.create_run(experiment_id, run_name=run_name,
                            tags={scrub(str(k)): scrub(str(v)) for k, v in all_tags.items()})
    for key, value in _clean_params(params or {}).items():
        client.log_param(run.info.run_id, key, value)
    return run.info.run_id


def pipeline_run_for(key: str, experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None,
                     params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None) -> str:
    """The id of the parent run tagged with `key` (a Kubeflow run id) in `experiment`, created (named `run_name`)
    when there is none yet. Tasks attach by this key rather than by a run id parameter, because parameters enter
    Kubeflow's cache keys and a per-run id would make every task a cache miss."""
    from mlflow import MlflowClient

    if not key or not all(c.isalnum() or c in "-_.:" for c in key):
        raise ValueError(f"pipeline run key {key!r}: expected letters, digits and -_.: only")
    experiment_id = ensure_experiment(experiment)
    found = MlflowClient().search_runs([experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{key}'",
                                       order_by=["attributes.start_time ASC"], max_results=1)  # fmt: skip
    if found:
        return found[0].info.run_id
    return start_pipeline_run(run_name or key, params=params, tags={**(tags or {}), RUN_KEY_TAG: key},
                              experiment=experiment)  # fmt: skip


def finish_pipeline_run(run_id: str, status: str = "FINISHED", metrics: Mapping[str, float] | None = None) -> None:
    from mlflow import MlflowClient

    configure()
    client = MlflowClient()
    for key, value in flatten(metrics or {}).items():
        client.log_metric(run_id, key, float(value))
    client.set_terminated(run_id, status)
