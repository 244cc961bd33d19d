"""The Prefect deployment as its image runs it: the deployment of pipelines/prefect.yaml (its pull step, its
entrypoint, its parameters) run in a folder shaped like the image (docker/Dockerfile.cpu: the package installed
as a wheel, `configs/` in /opt/moca, HOME /home/moca; no checkout, no git, no `.dvc`, no data), with only the
env the work pool gives a flow run: the image's ENV and `envFrom` the moca-env ConfigMap and moca-s3 Secret of
namespace moca (k8s/README.md step 9). The data comes from the store: the pointer, then the version it names.

Slow: a Prefect ephemeral server starts in the flow's process, and the pipeline runs through kfp.local there (there
is no Kubeflow API here; `host` set, the flow submits instead: tests/prefect/test_retrain_flow.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pod_harness import POD_DIRS, Cluster

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

RUN_FLOW = """
import json, sys
from prefect.deployments.steps.pull import set_working_directory
from moca.pipelines.retrain_flow import retrain

set_working_directory(sys.argv[1])  # the deployment's pull step
print(json.dumps(retrain(**json.loads(sys.argv[2]))))
"""


def test_the_deployment_retrains_from_the_store_in_its_image(image_install, cluster_store, cluster_mlflow,
                                                              published_data, tmp_path):  # fmt: skip
    from moca.tracking.runs import git_sha

    image = tmp_path / "image"
    shutil.copytree(REPO / "configs", image / "opt" / "moca" / "configs")  # COPY configs /opt/moca/configs
    settings = yaml.safe_load((REPO / "configs" / "pipeline_demo.yaml").read_text())
    settings.update(data={"path": "data", "rev": published_data.pointer, "remote": "s3://moca-data/dvc",
                          "benchmark": "s4"},  # fmt: skip
                    retrain={"dvc_file": published_data.pointer, "wait_timeout_s": 600})
    settings["train"] = {**settings["train"], "max_steps": 1}
    (image / "opt" / "moca" / "configs" / "pipeline_tiny.yaml").write_text(yaml.safe_dump(settings))
    before = sorted(p.relative_to(image).as_posix() for p in image.rglob("*"))

    prefect = yaml.safe_load((REPO / "pipelines" / "prefect.yaml").read_text())
    (pull,) = prefect["pull"]
    workdir = pull["prefect.deployments.steps.set_working_directory"]["directory"]
    (deployment,) = prefect["deployments"]
    assert deployment["entrypoint"] == "moca.pipelines.retrain_flow:retrain"
    # The deployment's own parameters; only the config (tiny models here) and the host (no KFP API) differ.
    parameters = {**deployment["parameters"], "config": "configs/pipeline_tiny.yaml", "host": ""}

    rendered = subprocess.run([str(REPO / ".venv" / "bin" / "kubectl"), "kustomize", str(REPO / "k8s/overlays/dev")],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    secrets = list(yaml.safe_load_all((REPO / "k8s" / "secrets.example.yaml").read_text()))
    services = {"moca-object-store.moca.svc.cluster.local:8333": cluster_store.endpoint.removeprefix("http://"),
                "moca-mlflow.moca.svc.cluster.local:5000": cluster_mlflow.removeprefix("http://")}
    cluster = Cluster.from_manifests([d for d in yaml.safe_load_all(rendered) if d], secrets, "moca", services,
                                     REPO / "docker" / "Dockerfile.cpu", {"GIT_SHA": git_sha()})  # fmt: skip
    pod = tmp_path / "pod"
    mounts = {path: pod / folder for path, folder in POD_DIRS.items()} | {"/opt/moca": image / "opt" / "moca"}
    for folder in mounts.values():
        folder.mkdir(parents=True, exist_ok=True)
    env = cluster.env_from(["moca-env"], ["moca-s3"], mounts)
    env.update(PATH=f"{image_install.bin}:/usr/bin:/bin", TMPDIR=str(mounts["/tmp"]),
               PREFECT_HOME=str(mounts["/home/moca"] / ".prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="240")  # the worker's API, ephemeral here
    parameters = {k: (str(mounts["/tmp"] / v.removeprefix("/tmp/")) if str(v).startswith("/tmp/") else v)
                  for k, v in parameters.items()}  # fmt: skip
    result = subprocess.run([str(image_install.bin / "python"), "-c", RUN_FLOW, str(mounts[workdir]),
                             json.dumps(parameters)], cwd=mounts["/home/moca"], env=env, capture_output=True,
                            text=True, timeout=1800)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["data_version"] == published_data.version  # the pointer, read from the store
    assert summary["outcome"] == "promoted" and summary["champion"] == "1", summary
    assert sorted(p.relative_to(image).as_posix() for p in image.rglob("*")) == before  # /opt/moca stays read-only
