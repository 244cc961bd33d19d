"""The MoCA training pipeline for Kubeflow Pipelines v2, built from a pipeline config.

    start_run -> ingest -> validate -> gate -> mine_pairs -> train -> infer (SAM refinement) -> evaluate -> register

The gate is `dsl.If(validate.passed)`, with a `dsl.Else` branch that fails the run. The validate task itself always
succeeds, because KFP publishes a task's output artifacts only when the task succeeds: a validate task that raised
would take its Data Docs with it, exactly when they are needed. The Else task then fails the run, so a bad dataset
is a red run in the UI (and a failed MLflow parent run), with the report one click away on the validate task.

The same function compiles to IR YAML (`moca pipeline compile`), runs under `kfp.local` (`moca pipeline run
--local`) and is submitted to a cluster (`moca pipeline run --host`). Config values are baked in at build time;
the image of every task, GPU requests, retries and pod labels come from the config's `kfp` section.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's parameter types from live annotations.
import json
from typing import Any

from kfp import dsl, kubernetes

from components.evaluate import evaluate as evaluate_op
from components.infer import infer as infer_op
from components.ingest import ingest as ingest_op
from components.mine_pairs import mine_pairs as mine_pairs_op
from components.register import register as register_op
from components.start_run import start_run as start_run_op
from components.stop_run import stop_run as stop_run_op
from components.train import train as train_op
from components.validate import validate as validate_op
from moca.steps.config import KfpConfig, PipelineConfig

# Tasks whose results must never come from KFP's cache: the MLflow parent run is new for every pipeline run, and
# ingest without a DVC rev copies a folder whose content its parameters do not name.
UNCACHED = ("start_run", "ingest", "stop_run")


def _configure(task: Any, component: str, kfp: KfpConfig) -> Any:
    """Image, retries, pod label, caching and (for GPU components) accelerator and scheduling for one task."""
    task.set_container_image(kfp.image(component))
    task.set_display_name(component)
    task.set_caching_options(kfp.caching and component not in UNCACHED)
    if component != "stop_run":  # failing is its job; retrying it only delays the red run
        task.set_retry(num_retries=kfp.retries, backoff_duration=f"{kfp.backoff_s}s")
    for key, value in kfp.pod_labels.items():
        kubernetes.add_pod_label(task, key, value)
    if kfp.gpu.enabled and component in kfp.gpu_components:
        task.set_accelerator_type(kfp.gpu.accelerator_type)
        task.set_accelerator_limit(kfp.gpu.accelerator_limit)
        for key, value in kfp.gpu.node_selector.items():
            kubernetes.add_node_selector(task, label_key=key, label_value=value)
        for toleration in kfp.gpu.tolerations:
            kubernetes.add_toleration(task, **toleration)
    return task


def build_pipeline(config: PipelineConfig, git_sha: str) -> Any:
    """The pipeline function for `config`; `git_sha` is the commit of the code in the images (a cache key)."""
    kfp, benchmark = config.kfp, config.data.benchmark
    config_hash = config.model_config_hash()
    keys = {"git_sha": git_sha, "config_hash": config_hash}
    as_json = {name: json.dumps(config.section(name), sort_keys=True)
               for name in ("validation", "drift", "mining", "train", "infer", "evaluate")}  # fmt: skip

    @dsl.pipeline(name=config.name, description="MoCA: ingest, validate, mine pairs, train, infer, evaluate, register")
    def training_pipeline(data_rev: str = config.data.rev, run_name: str = config.name) -> None:
        start = _configure(start_run_op(run_name=run_name, experiment=config.experiment,
                                        config_json=json.dumps(config.section("data")), **keys), "start_run", kfp)
        parent = start.output
        ingest = _configure(ingest_op(source=config.data.path, rev=data_rev, remote=config.data.remote,
                                      benchmark=benchmark, parent_run_id=parent, **keys), "ingest", kfp)
        tracked = {"parent_run_id": parent, "data_version": ingest.outputs["Output"], **keys}
        dataset = ingest.outputs["dataset"]
        validate = _configure(validate_op(dataset=dataset, benchmark=benchmark, validation_json=as_json["validation"],
                                          drift_json=as_json["drift"], model_name=config.model_name, **tracked),
                              "validate", kfp)  # fmt: skip
        with dsl.If(validate.outputs["passed"] == True, name="data-valid"):  # noqa: E712 - builds a KFP condition
            pairs = _configure(mine_pairs_op(dataset=dataset, benchmark=benchmark, mining_json=as_json["mining"],
                                             **tracked), "mine_pairs", kfp)  # fmt: skip
            train = _configure(train_op(dataset=dataset, pairs=pairs.outputs["pairs"], benchmark=benchmark,
                                        train_json=as_json["train"], **tracked), "train", kfp)  # fmt: skip
            infer = _configure(infer_op(dataset=dataset, model=train.outputs["model"], benchmark=benchmark,
                                        split=config.evaluate.split, infer_json=as_json["infer"], **tracked),
                               "infer", kfp)  # fmt: skip
            scores = _configure(evaluate_op(dataset=dataset, predictions=infer.outputs["predictions"],
                                            benchmark=benchmark, evaluate_json=as_json["evaluate"], **tracked),
                                "evaluate", kfp)  # fmt: skip
            _configure(register_op(model=train.outputs["model"], scores=scores.outputs["scores"],
                                   report=validate.outputs["report"], model_name=config.model_name,
                                   split=config.evaluate.split, metric=config.evaluate.metric, **tracked),
                       "register", kfp)  # fmt: skip
        with dsl.Else(name="data-invalid"):
            _configure(stop_run_op(parent_run_id=parent, reason=validate.outputs["summary"]), "stop_run", kfp)

    return training_pipeline
