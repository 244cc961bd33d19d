"""The compiled IR run as a Kubeflow Pipelines backend would run it (tests/pipeline/pod_harness.py): every task's
own container command in a fresh pod folder with only the env the IR, the manifests and the image give it, the
project installed as a wheel, artifacts through an S3 store (a moto server), MLflow a real `mlflow server`.

The data is published as a cluster user would: `dvc push` to s3://moca-data/dvc, `moca data publish` of the
pointer s3://moca-data/pointers/s4.dvc, which the run names as its data (no git, no `.dvc` in any pod).
Slow: each pod is a fresh interpreter importing torch, MLflow and GE.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml
from pipeline_configs import REPO, write_config
from pod_harness import Cluster, Harness, object_bytes

pytestmark = pytest.mark.slow

NAMESPACE = "kubeflow"  # where KFP runs the pipeline's pods (k8s/base/kfp)
BUCKETS = ("moca-data", "moca-weights", "moca-mlflow", "mlpipeline")  # k8s/README.md step 4, and KFP's own
POINTER = "s3://moca-data/pointers/s4.dvc"
STEP_TASKS = ("start-run", "ingest", "validate", "mine-pairs", "train", "infer", "evaluate", "register")


@pytest.fixture(scope="module")
def store(make_s3_server):
    server = make_s3_server()
    server.start()
    for bucket in BUCKETS:
        server.create_bucket(bucket)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mlflow_url(store, start_server, tmp_path_factory):
    """The MLflow server as k8s/base/stack/mlflow.yaml runs it: artifacts proxied to s3://moca-mlflow/artifacts."""
    root = tmp_path_factory.mktemp("mlflow")
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1",
               "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--serve-artifacts",
               "--artifacts-destination", "s3://moca-mlflow/artifacts"]  # fmt: skip
    with start_server(command, "/health", {**os.environ, **store.env}, root / "server.log", 180) as url:
        yield url


@pytest.fixture(scope="module")
def published(store, tiny_s4, image_install, tmp_path_factory) -> str:
    """The tiny dataset pushed to the DVC remote in the store and the data pointer published; its version."""
    from moca.versioning import add_and_push

    repo = tmp_path_factory.mktemp("producer")
    (repo / ".dvc").mkdir()
    (repo / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    remote = s3\n"
                                          "['remote \"s3\"']\n    url = s3://moca-data/dvc\n")  # fmt: skip
    subprocess.run(["cp", "-r", str(tiny_s4), str(repo / "data")], check=True)
    previous = dict(os.environ)
    os.environ.update(store.env)
    try:
        version = add_and_push(repo / "data")
    finally:
        os.environ.clear()
        os.environ.update(previous)
    env = {"PATH": f"{image_install.bin}:/usr/bin:/bin", "HOME": str(repo), **store.env}
    result = subprocess.run([str(image_install.bin / "moca"), "data", "publish", "data.dvc", "--to", POINTER,
                             "--remote", "s3://moca-data/dvc"], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert version in result.stdout
    return version


@pytest.fixture(scope="module")
def harness(store, mlflow_url, published, image_install, tmp_path_factory) -> Harness:
    folder = tmp_path_factory.mktemp("cluster")
    config = write_config(folder / "pipeline.yaml", Path("data"), kfp={"retries": 0, "caching": True})
    settings = yaml.safe_load(config.read_text())
    settings["data"].update(rev=POINTER, remote="s3://moca-data/dvc", by_reference=True)  # what pods can reach
    config.write_text(yaml.safe_dump(settings))
    from moca.steps.kubeflow import compile_pipeline

    ir = compile_pipeline(config, folder / "pipeline.yaml.ir")
    rendered = subprocess.run([str(REPO / ".venv" / "bin" / "kubectl"), "kustomize", str(REPO / "k8s/overlays/dev")],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    secrets = list(yaml.safe_load_all((REPO / "k8s" / "secrets.example.yaml").read_text()))
    services = {"moca-object-store.moca.svc.cluster.local:8333": store.endpoint.removeprefix("http://"),
                "moca-mlflow.moca.svc.cluster.local:5000": mlflow_url.removeprefix("http://")}
    cluster = Cluster.from_manifests([d for d in yaml.safe_load_all(rendered) if d], secrets, NAMESPACE, services,
                                     REPO / "docker" / "Dockerfile.cpu")  # fmt: skip
    s3 = boto3.client("s3", endpoint_url=store.endpoint, region_name="us-east-1",
                      aws_access_key_id=store.env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=store.env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
    return Harness(ir, cluster, image_install.bin, folder, s3)


@pytest.fixture(scope="module")
def first_run(harness):
    return harness.run({"run_name": "pods-1"})


def _failed(records) -> str:
    return "\n".join(f"--- {r.name}\n{r.log_tail()}" for r in records.values() if r.state == "FAILED")


def _mlflow(mlflow_url):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)


def _parent(client, run_name: str):
    (run,) = client.search_runs([client.get_experiment_by_name("moca").experiment_id],
                                filter_string=f"tags.`mlflow.runName` = '{run_name}'")  # fmt: skip
    return run


def test_every_task_runs_green_as_a_pod(first_run, mlflow_url, published, harness):
    assert {n: r.state for n, r in first_run.items() if n in STEP_TASKS + ("finish-run",)} == dict.fromkeys(
        (*STEP_TASKS, "finish-run"), "SUCCEEDED"), _failed(first_run)
    assert first_run["stop-run"].state == "SKIPPED"
    assert first_run["start-run"].outputs["data_version"] == published  # the pointer, read in the pod
    client = _mlflow(mlflow_url)
    parent = _parent(client, "pods-1")
    assert parent.info.status == "FINISHED" and parent.data.tags["moca.data_version"] == published
    champion = client.get_model_version_by_alias("moca", "champion")
    assert champion.version == "1" and champion.tags["data_version"] == published
    steps = client.search_runs([parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = "
                                                                          f"'{parent.info.run_id}'")  # fmt: skip
    assert {r.data.tags["moca.step"] for r in steps} == {"ingest", "validate", "mine_pairs", "train", "infer",
                                                         "evaluate", "register"}  # fmt: skip
    assert not (harness.root / "pods" / "mlflow.db").exists()


def test_the_dataset_moves_by_reference_and_each_task_fetches_its_split(first_run, tiny_s4):
    moved = object_bytes(first_run)
    whole = sum(f.stat().st_size for f in tiny_s4.rglob("*") if f.is_file())
    assert moved["ingest"]["artifacts_out"] < 1000  # reference.json + manifest, not the data
    assert moved["validate"]["dataset_fetched"] == pytest.approx(whole, rel=0.01)  # validation reads it all
    for task in ("mine-pairs", "train", "infer", "evaluate"):
        assert 0 < moved[task]["dataset_fetched"] < 0.8 * whole, task
        assert moved[task]["artifacts_in"] < whole, task


def test_an_identical_rerun_reuses_ingest_mining_and_training(first_run, harness, mlflow_url):
    again = harness.run({"run_name": "pods-2"})
    states = {n: again[n].state for n in (*STEP_TASKS, "finish-run")}
    assert states == {"start-run": "SUCCEEDED", "ingest": "CACHED", "validate": "SUCCEEDED", "mine-pairs": "CACHED",
                      "train": "CACHED", "infer": "CACHED", "evaluate": "CACHED", "register": "SUCCEEDED",
                      "finish-run": "SUCCEEDED"}, _failed(again)  # fmt: skip
    assert _parent(_mlflow(mlflow_url), "pods-2").info.status == "FINISHED"
    relearn = harness.run({"run_name": "pods-3", "lr": 0.0123})
    assert relearn["mine-pairs"].state == "CACHED" and relearn["train"].state == "SUCCEEDED", _failed(relearn)


def test_a_killed_pod_fails_the_mlflow_run(first_run, harness, mlflow_url, monkeypatch):
    """A task killed from outside (OOM: exit 137, nothing of its own code runs to report it) fails the KFP run;
    the exit handler still runs and ends the MLflow parent run FAILED instead of leaving it RUNNING."""
    monkeypatch.setattr(harness, "killed", {"train"})
    records = harness.run({"run_name": "pods-oom", "lr": 0.5})
    assert records["train"].state == "FAILED" and records["infer"].state == "SKIPPED"
    assert records["finish-run"].state == "SUCCEEDED", _failed(records)
    parent = _parent(_mlflow(mlflow_url), "pods-oom")
    assert parent.info.status == "FAILED" and parent.data.tags["moca.kfp_state"] == "FAILED"
