"""The MoCA training pipeline for Kubeflow Pipelines v2, built from a pipeline config and `moca.steps.PIPELINE`.

    [exit handler: finish_run]
      start_run -> ingest -> validate -> gate -> mine_pairs -> train -> infer (SAM refinement) -> evaluate -> register

Tasks are wired from the same declaration as the in-process runner (moca.steps.inprocess): each step's component
receives, as input artifacts named by role, the output artifacts of the steps producing those roles.

The gate is `dsl.If(validate.passed)`, with a `dsl.Else` branch that fails the run. The validate task itself always
succeeds, because KFP publishes a task's output artifacts only when the task succeeds: a validate task that raised
would take its Data Docs with it, exactly when they are needed. The exit handler then ends the MLflow parent run as
the Kubeflow run ended: FAILED when any task failed (a bad dataset, an OOM-killed pod), FINISHED otherwise.

Pipeline parameters: `data_rev`, `run_name` and the runtime parameters (`moca.steps.RUNTIME_PARAMETERS`: lr, epochs,
max_steps, batch_size, eval_split, promotion_metric), defaulting to the config's values; every other value is baked
in at build time. From the config's `kfp` section: each task's image, resources, retries, pod label, its
environment (Secret and ConfigMap keys), the weights cache volume and, with `gpu.enabled`, accelerators, node
selector and tolerations, through `kfp-kubernetes`.

Caching: a task's cache key is its parameters, its input artifacts (by identity) and its container. So no task
takes anything that is new per run: the MLflow parent run is found by the run key each pod reads from its
`pipeline/runid` label (moca.steps.pod), and `start_run` (never cached) resolves `data_rev` to a content address,
which is what ingest and every later task receive. An identical rerun thus reuses ingest, mining, training,
inference and evaluation; validation (drift against the champion of the day) and registration always run.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's parameter types from live annotations.
import importlib
import json
from typing import Any

from kfp import dsl, kubernetes

from moca.steps import PIPELINE, step_spec
from moca.steps.config import STEP_SECTIONS, KfpConfig, PipelineConfig
from moca.steps.pod import RUN_KEY_ENV

# Tasks that always run: opening the run and resolving its data, validation (its drift report compares with the
# champion of the day), registration (the registry changes between runs) and the two that end the run.
UNCACHED = ("start_run", "validate", "register", "stop_run", "finish_run")
RUN_ID_LABEL = "metadata.labels['pipeline/runid']"  # set by Kubeflow on every pod of a run


def component(name: str) -> Any:
    """The KFP component of step (or run bookkeeping task) `name`: `moca.components.<name>.<name>`."""
    return getattr(importlib.import_module(f"moca.components.{name}"), name)


def _environment(task: Any, kfp: KfpConfig) -> None:
    """What the pod knows: the run key from its label, Secret and ConfigMap keys as env vars, the weights cache."""
    kubernetes.use_field_path_as_env(task, RUN_KEY_ENV, RUN_ID_LABEL)
    for secret, keys in kfp.secret_env.items():
        kubernetes.use_secret_as_env(task, secret, {key: key for key in keys})
    for config_map, keys in kfp.config_map_env.items():
        kubernetes.use_config_map_as_env(task, config_map, {key: key for key in keys})


def _configure(task: Any, name: str, kfp: KfpConfig) -> Any:
    """Image, resources, retries, pod label, environment, caching and (for GPU components) scheduling."""
    task.set_container_image(kfp.image(name))
    task.set_display_name(name)
    task.set_caching_options(kfp.caching and name not in UNCACHED)
    if name != "stop_run":  # failing is its job; retrying it only delays the red run
        task.set_retry(num_retries=kfp.retries, backoff_duration=f"{kfp.backoff_s}s")
    resources = kfp.resources_of(name)
    task.set_cpu_request(resources.cpu_request).set_cpu_limit(resources.cpu_limit)
    task.set_memory_request(resources.memory_request).set_memory_limit(resources.memory_limit)
    for key, value in kfp.pod_labels.items():
        kubernetes.add_pod_label(task, key, value)
    _environment(task, kfp)
    if kfp.weights_cache.pvc and name in kfp.weights_cache.components:
        kubernetes.mount_pvc(task, pvc_name=kfp.weights_cache.pvc, mount_path=kfp.weights_cache.path)
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
    one, takes no dataset, so KFP does not download the data into its pod; only train takes lr)."""
    op = component(name)
    declared = op.component_spec.inputs or {}
    return _configure(op(**{k: v for k, v in available.items() if k in declared}), name, kfp)


def build_pipeline(config: PipelineConfig, git_sha: str) -> Any:
    """The pipeline function for `config`; `git_sha` is the commit of the code in the images (a cache key)."""
    kfp = config.kfp
    section = {name: json.dumps(config.section(step_spec(name).section), sort_keys=True) for name in PIPELINE}
    model_config = json.dumps({name: config.section(name) for name in STEP_SECTIONS}, sort_keys=True)
    fixed = {"git_sha": git_sha, "experiment": config.experiment, "benchmark": config.data.benchmark,
             "model_name": config.model_name}  # fmt: skip

    # The signature lists moca.steps.RUNTIME_PARAMETERS (tests/pipeline/test_compile.py keeps the two equal).
    @dsl.pipeline(name=config.name, description="MoCA: ingest, validate, mine pairs, train, infer, evaluate, register")
    def training_pipeline(data_rev: str = config.data.rev, run_name: str = config.name,
                          lr: float = config.train.lr, epochs: int = config.train.epochs,
                          max_steps: int = config.train.max_steps, batch_size: int = config.train.batch_size,
                          eval_split: str = config.evaluate.split,
                          promotion_metric: str = config.register.metric) -> None:  # fmt: skip
        runtime = {"lr": lr, "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size,
                   "eval_split": eval_split, "promotion_metric": promotion_metric}  # fmt: skip
        with dsl.ExitHandler(_task("finish_run", kfp, **fixed), name="moca-run"):
            start = _task("start_run", kfp, run_name=run_name, data_rev=data_rev, config_json=model_config,
                          **fixed, **runtime)  # fmt: skip
            ingest = _task("ingest", kfp, config_json=section["ingest"], rev=start.outputs["data_version"], **fixed)
            common = {"data_version": ingest.outputs["Output"], "config_hash": start.outputs["config_hash"],
                      **fixed, **runtime}  # fmt: skip
            produced = {step_spec("ingest").produces: ingest.outputs["dataset"]}
            validate = _task("validate", kfp, config_json=section["validate"], **produced, **common)
            produced["report"] = validate.outputs["report"]
            with dsl.If(validate.outputs["passed"] == True, name="data-valid"):  # noqa: E712 - a KFP condition
                for name in PIPELINE[2:]:
                    spec = step_spec(name)
                    task = _task(name, kfp, config_json=section[name], **produced, **common)
                    produced[spec.produces] = task.outputs[spec.produces]
            with dsl.Else(name="data-invalid"):
                _task("stop_run", kfp, reason=validate.outputs["summary"])

    return training_pipeline
