"""The MoCA training pipeline for Kubeflow Pipelines v2, built from a pipeline config and `moca.steps.PIPELINE`.

    start_run -> ingest -> validate -> gate -> mine_pairs -> train -> infer (SAM refinement) -> evaluate -> register

Tasks are wired from the same declaration as the in-process runner (moca.steps.inprocess): each step's component
receives, as input artifacts named by role, the output artifacts of the steps producing those roles.

The gate is `dsl.If(validate.passed)`, with a `dsl.Else` branch that fails the run. The validate task itself always
succeeds, because KFP publishes a task's output artifacts only when the task succeeds: a validate task that raised
would take its Data Docs with it, exactly when they are needed. The Else task then fails the run, so a bad dataset
is a red run in the UI (and a failed MLflow parent run), with the report one click away on the validate task.

The same function compiles to IR YAML (`moca pipeline compile`), runs under `kfp.local` (`moca pipeline run
--local`) and is submitted to a cluster (`moca pipeline run --host`). Config values are baked in at build time;
the image of every task, GPU requests, retries and pod labels come from the config's `kfp` section.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's parameter types from live annotations.
import importlib
import json
from typing import Any

from kfp import dsl, kubernetes

from moca.steps import PIPELINE, step_spec
from moca.steps.config import KfpConfig, PipelineConfig

# Tasks whose results must never come from KFP's cache: the MLflow parent run is new for every pipeline run, and
# ingest without a DVC rev copies a folder whose content its parameters do not name.
UNCACHED = ("start_run", "ingest", "stop_run")


def component(name: str) -> Any:
    """The KFP component of step (or run bookkeeping task) `name`: `moca.components.<name>.<name>`."""
    return getattr(importlib.import_module(f"moca.components.{name}"), name)


def _configure(task: Any, name: str, kfp: KfpConfig) -> Any:
    """Image, retries, pod label, caching and (for GPU components) accelerator and scheduling for one task."""
    task.set_container_image(kfp.image(name))
    task.set_display_name(name)
    task.set_caching_options(kfp.caching and name not in UNCACHED)
    if name != "stop_run":  # failing is its job; retrying it only delays the red run
        task.set_retry(num_retries=kfp.retries, backoff_duration=f"{kfp.backoff_s}s")
    for key, value in kfp.pod_labels.items():
        kubernetes.add_pod_label(task, key, value)
    if kfp.gpu.enabled and name in kfp.gpu_components:
        task.set_accelerator_type(kfp.gpu.accelerator_type)
        task.set_accelerator_limit(kfp.gpu.accelerator_limit)
        for key, value in kfp.gpu.node_selector.items():
            kubernetes.add_node_selector(task, label_key=key, label_value=value)
        for toleration in kfp.gpu.tolerations:
            kubernetes.add_toleration(task, **toleration)
    return task


def _task(name: str, kfp: KfpConfig, **available: Any) -> Any:
    """A configured task of component `name`, given those of `available` the component declares (register, for
    one, takes no dataset, so KFP does not download the data into its pod)."""
    op = component(name)
    declared = op.component_spec.inputs or {}
    return _configure(op(**{k: v for k, v in available.items() if k in declared}), name, kfp)


def build_pipeline(config: PipelineConfig, git_sha: str) -> Any:
    """The pipeline function for `config`; `git_sha` is the commit of the code in the images (a cache key)."""
    kfp = config.kfp
    keys = {"git_sha": git_sha, "config_hash": config.model_config_hash()}
    section = {name: json.dumps(config.section(step_spec(name).section), sort_keys=True) for name in PIPELINE}

    @dsl.pipeline(name=config.name, description="MoCA: ingest, validate, mine pairs, train, infer, evaluate, register")
    def training_pipeline(data_rev: str = config.data.rev, run_name: str = config.name) -> None:
        start = _task("start_run", kfp, run_name=run_name, experiment=config.experiment,
                      config_json=json.dumps(config.section("data")), **keys)
        ingest = _task("ingest", kfp, config_json=section["ingest"], rev=data_rev, parent_run_id=start.output, **keys)
        common = {"parent_run_id": start.output, "data_version": ingest.outputs["Output"], **keys,
                  "benchmark": config.data.benchmark, "model_name": config.model_name}
        produced = {step_spec("ingest").produces: ingest.outputs["dataset"]}
        validate = _task("validate", kfp, config_json=section["validate"], **produced, **common)
        produced["report"] = validate.outputs["report"]
        with dsl.If(validate.outputs["passed"] == True, name="data-valid"):  # noqa: E712 - builds a KFP condition
            for name in PIPELINE[2:]:
                spec = step_spec(name)
                task = _task(name, kfp, config_json=section[name], **produced, **common)
                produced[spec.produces] = task.outputs[spec.produces]
        with dsl.Else(name="data-invalid"):
            _task("stop_run", kfp, parent_run_id=start.output, reason=validate.outputs["summary"])

    return training_pipeline
