"""What a Kubeflow component does in its pod, so that each component stays a thin wrapper (components/).

A pod has nothing but its image, its parameters and artifacts, and the environment the pipeline gives it (Secret and
ConfigMap values, the run key): no checkout, no `.dvc`, a fresh working directory. So:
- the MLflow parent run is found by the run key `MOCA_KFP_RUN_ID` (the KFP run id, from the pod's `pipeline/runid`
  label), never passed as a parameter: parameters enter Kubeflow's cache keys, and a per-run value would make
  every task a cache miss;
- the runtime parameters (`moca.steps.RUNTIME_PARAMETERS`) a task receives are applied to its config section as
  `--set` overrides;
- a task reading the dataset gets it from the ingest step's output: the copied folder, or (by reference) just the
  split it reads, fetched from the DVC remote into scratch space (`moca.steps.ingest.materialised`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from moca.config import apply_overrides, coerce
from moca.errors import ConfigError
from moca.steps import runtime_overrides, step_run, step_spec
from moca.steps.runner import Inputs, StepResult

log = logging.getLogger("moca.steps")
RUN_KEY_ENV = "MOCA_KFP_RUN_ID"  # kfp-kubernetes sets it from the pod label pipeline/runid; run_local sets it too


def run_key(required: bool = False) -> str:
    key = os.environ.get(RUN_KEY_ENV, "")
    if required and not key:
        raise ConfigError(f"{RUN_KEY_ENV} is not set: the pipeline gives every pod its Kubeflow run id there (the "
                          "pod label pipeline/runid); `moca pipeline run --local` sets it for local runs")
    return key


def parent_run(experiment: str, run_name: str | None = None, **details: Any) -> str:
    """The MLflow parent run of this Kubeflow run (created when none exists yet); "" without a run key (a component
    called outside a pipeline runs untracked)."""
    key = run_key()
    if not key:
        log.warning("%s not set: this task runs untracked", RUN_KEY_ENV)
        return ""
    from moca.tracking.runs import pipeline_run_for

    return pipeline_run_for(key, experiment, run_name=run_name, **details)


def section_config(name: str, config_json: str, runtime: Mapping[str, Any] | None = None) -> Any:
    """Step `name`'s config: its baked section with the runtime parameters of that section applied."""
    spec = step_spec(name)
    raw = {spec.section: json.loads(config_json)}
    section = apply_overrides(raw, runtime_overrides(runtime or {}, spec.section))[spec.section]
    return coerce(spec.config_type, section, spec.section)


def run_step(name: str, config_json: str, out: str, *, dataset: str | None = None, benchmark: str = "s4",
             data_version: str = "", upstream: Mapping[str, str] | None = None, experiment: str = "",
             model_name: str = "moca", config_hash: str = "", runtime: Mapping[str, Any] | None = None,
             ) -> StepResult:  # fmt: skip
    """Run step `name` into `out` as its component does: config with runtime parameters, the parent run by key,
    the dataset (only the split the step reads) from the ingest output `dataset`."""
    from moca.steps.ingest import materialised

    spec = step_spec(name)
    config = section_config(name, config_json, runtime)
    parent = parent_run(experiment) if experiment else ""
    split = spec.data_split(config) if spec.data_split else None
    data = materialised(dataset, split) if dataset else contextlib.nullcontext(None)
    with data as root:
        inputs = Inputs(data=root, benchmark=benchmark, data_version=data_version, upstream=dict(upstream or {}),
                        parent_run_id=parent, model_name=model_name, config_hash=config_hash)  # fmt: skip
        return step_run(name)(config, inputs, out)


def start(run_name: str, experiment: str, data_rev: str, model_config_json: str, runtime: Mapping[str, Any],
          git_sha: str) -> tuple[str, str]:
    """Begin a run: check the whole config with the runtime parameters applied (a bad value fails here, before
    any work), resolve `data_rev` to a content address (a data pointer is read now, so a recurring run picks up new
    data each time), open the MLflow parent run under the run key. Returns (data version, config hash)."""
    import dataclasses

    from moca.config import from_dict
    from moca.steps.config import PipelineConfig, check_pipeline_config
    from moca.steps.ingest import resolve_version

    raw = apply_overrides(json.loads(model_config_json), runtime_overrides(runtime))
    config = check_pipeline_config(from_dict(PipelineConfig, raw, "config"))
    version = resolve_version(dataclasses.replace(config.data, rev=data_rev))
    config_hash = config.model_config_hash()
    run_key(required=True)
    parent_run(experiment, run_name, params={**config.section("data"), "rev": data_rev, **runtime},
               tags={"moca.config_hash": config_hash, "moca.git_sha": git_sha, "moca.data_version": version})
    return version, config_hash


# Kubeflow task states -> how the MLflow parent run ends (anything else failed)
_ENDED = {"SUCCEEDED": "FINISHED", "CANCELED": "KILLED", "CANCELLED": "KILLED"}


def finish(experiment: str, state: str, error: str = "") -> str:
    """The exit handler: end the parent run as the Kubeflow run ended (FAILED when any task failed, including a
    pod killed for memory, which no task of its own could report). A run the register step already ended
    FINISHED is left as it is. Returns the MLflow status set or kept."""
    from mlflow import MlflowClient

    from moca.tracking.runs import configure, finish_pipeline_run
    from moca.tracking.scrub import scrub

    run_key(required=True)
    parent = parent_run(experiment)
    configure()
    client = MlflowClient()
    status = _ENDED.get(state.upper(), "FAILED")
    current = client.get_run(parent).info.status
    if status == "FINISHED" and current != "RUNNING":
        return current
    client.set_tag(parent, "moca.kfp_state", state)
    if status != "FINISHED":
        client.set_tag(parent, "moca.failure", scrub(error or f"the Kubeflow run ended {state}")[:500])
    finish_pipeline_run(parent, status)
    return status
