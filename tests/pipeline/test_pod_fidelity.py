"""The compiled IR run as a Kubeflow Pipelines backend would run it (tests/pipeline/pod_harness.py): every task's
own container command in a fresh pod folder with only the env the IR, the manifests and the image give it, the
project installed as a wheel, artifacts through an S3 store (a moto server), MLflow a real `mlflow server`.

The data is published as a cluster user would (tests/conftest.py `published_data`): `dvc push` to
s3://moca-data/dvc, `moca data publish` of the pointer s3://moca-data/pointers/s4.dvc, which the run names as its
data (no git, no `.dvc` in any pod).
Slow: each pod is a fresh interpreter importing torch, MLflow and GE.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import boto3
import pytest
import yaml
from pipeline_configs import REPO, write_config
from pod_harness import Cluster, Harness, object_bytes

pytestmark = pytest.mark.slow

NAMESPACE = "kubeflow"  # where KFP runs the pipeline's pods (k8s/base/kfp)
STEP_TASKS = ("start-run", "ingest", "validate", "mine-pairs", "train", "infer", "evaluate", "register")


@pytest.fixture(scope="module")
def harness(cluster_store, cluster_mlflow, published_data, image_install, tmp_path_factory) -> Harness:
    from moca.steps.kubeflow import compile_pipeline
    from moca.tracking.runs import git_sha

    folder = tmp_path_factory.mktemp("cluster")
    config = write_config(folder / "pipeline.yaml", Path("data"), kfp={"retries": 0, "caching": True})
    settings = yaml.safe_load(config.read_text())
    settings["data"].update(rev=published_data.pointer, remote="s3://moca-data/dvc", by_reference=True)
    config.write_text(yaml.safe_dump(settings))
    ir = compile_pipeline(config, folder / "pipeline.yaml.ir")
    rendered = subprocess.run([str(REPO / ".venv" / "bin" / "kubectl"), "kustomize", str(REPO / "k8s/overlays/dev")],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    secrets = list(yaml.safe_load_all((REPO / "k8s" / "secrets.example.yaml").read_text()))
    services = {"moca-object-store.moca.svc.cluster.local:8333": cluster_store.endpoint.removeprefix("http://"),
                "moca-mlflow.moca.svc.cluster.local:5000": cluster_mlflow.removeprefix("http://")}
    built_from = {"GIT_SHA": git_sha()}  # what `make images` passes to `docker build`
    cluster = Cluster.from_manifests([d for d in yaml.safe_load_all(rendered) if d], secrets, NAMESPACE, services,
                                     REPO / "docker" / "Dockerfile.cpu", built_from)  # fmt: skip
    s3 = boto3.client("s3", endpoint_url=cluster_store.endpoint, region_name="us-east-1",
                      aws_access_key_id=cluster_store.env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=cluster_store.env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
    return Harness(ir, cluster, image_install.bin, folder, s3)


@pytest.fixture(scope="module")
def first_run(harness):
    return harness.run({"run_name": "pods-1"})


def _failed(records) -> str:
    return "\n".join(f"--- {r.name}\n{r.log_tail()}" for r in records.values() if r.state == "FAILED")


def _mlflow(url):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def _parent(client, run_name: str):
    (run,) = client.search_runs([client.get_experiment_by_name("moca").experiment_id],
                                filter_string=f"tags.`mlflow.runName` = '{run_name}'")  # fmt: skip
    return run


def test_every_task_runs_green_as_a_pod(first_run, cluster_mlflow, published_data, harness):
    assert {n: r.state for n, r in first_run.items() if n in STEP_TASKS + ("finish-run",)} == dict.fromkeys(
        (*STEP_TASKS, "finish-run"), "SUCCEEDED"), _failed(first_run)
    assert first_run["stop-run"].state == "SKIPPED"
    published = published_data.version
    assert first_run["start-run"].outputs["data_version"] == published  # the pointer, read in the pod
    client = _mlflow(cluster_mlflow)
    parent = _parent(client, "pods-1")
    assert parent.info.status == "FINISHED" and parent.data.tags["moca.data_version"] == published
    champion = client.get_model_version_by_alias("moca", "champion")
    assert champion.version == "1" and champion.tags["data_version"] == published
    steps = client.search_runs([parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = "
                                                                          f"'{parent.info.run_id}'")  # fmt: skip
    assert {r.data.tags["moca.step"] for r in steps} == {"ingest", "validate", "mine_pairs", "train", "infer",
                                                         "evaluate", "register"}  # fmt: skip
    # The PVC of k8s/base/kfp, shared by the tasks that build the model (register: it predicts a serving example).
    volume = harness.root / "volumes" / "moca-weights-cache"
    assert {t: Path(first_run[t].env["MOCA_WEIGHTS_CACHE"]) == volume for t in STEP_TASKS} == {
        t: t in ("mine-pairs", "train", "infer", "register") for t in STEP_TASKS}  # fmt: skip
    assert not list((harness.root / "pods").rglob("mlflow.db"))  # no pod fell back to a store of its own


def test_the_dataset_moves_by_reference_and_each_task_fetches_its_split(first_run, published_data):
    moved = object_bytes(first_run)
    whole = sum(f.stat().st_size for f in published_data.data.rglob("*") if f.is_file())
    assert moved["ingest"]["artifacts_out"] < 4096  # reference.json and the step manifest, not the data
    assert moved["validate"]["dataset_fetched"] == pytest.approx(whole, rel=0.01)  # validation reads it all
    for task in ("mine-pairs", "train", "infer", "evaluate"):
        assert 0 < moved[task]["dataset_fetched"] < 0.8 * whole, task
        assert moved[task]["artifacts_in"] < whole, task


def test_an_identical_rerun_reuses_ingest_mining_and_training(first_run, harness, cluster_mlflow):
    again = harness.run({"run_name": "pods-2"})
    states = {n: again[n].state for n in (*STEP_TASKS, "finish-run")}
    assert states == {"start-run": "SUCCEEDED", "ingest": "CACHED", "validate": "SUCCEEDED", "mine-pairs": "CACHED",
                      "train": "CACHED", "infer": "CACHED", "evaluate": "CACHED", "register": "SUCCEEDED",
                      "finish-run": "SUCCEEDED"}, _failed(again)  # fmt: skip
    assert _parent(_mlflow(cluster_mlflow), "pods-2").info.status == "FINISHED"
    relearn = harness.run({"run_name": "pods-3", "lr": 0.0123})
    assert relearn["mine-pairs"].state == "CACHED" and relearn["train"].state == "SUCCEEDED", _failed(relearn)


def test_a_killed_pod_fails_the_mlflow_run(first_run, harness, cluster_mlflow, monkeypatch):
    """A task killed from outside (OOM: exit 137, nothing of its own code runs to report it) fails the KFP run;
    the exit handler still runs and ends the MLflow parent run FAILED instead of leaving it RUNNING."""
    monkeypatch.setattr(harness, "killed", {"train"})
    records = harness.run({"run_name": "pods-oom", "lr": 0.5})
    assert records["train"].state == "FAILED" and records["infer"].state == "SKIPPED"
    assert records["finish-run"].state == "SUCCEEDED", _failed(records)
    parent = _parent(_mlflow(cluster_mlflow), "pods-oom")
    assert parent.info.status == "FAILED" and parent.data.tags["moca.kfp_state"] == "FAILED"
