"""Render every overlay and check every object: Kubernetes/CRD schemas and the deployment policies.
No API server can run on the development machine (see k8s/README.md), so this is the strongest check
available offline; a cluster adds admission (Pod Security "restricted") and server-side dry-run."""
from __future__ import annotations

import copy
import subprocess

import pytest
import yaml
from conftest import OVERLAYS
from k8s_checks import K8S, REPO, containers, name_of, pod_specs, policy_problems, schema_problems


def _all(rendered):
    return [(overlay, obj) for overlay in OVERLAYS for obj in rendered[overlay]]


def _one(objs, kind, name):
    [obj] = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_whole_stack(rendered, overlay):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in rendered[overlay]}
    for expected in [("Namespace", "moca"), ("StatefulSet", "moca-object-store"), ("StatefulSet", "moca-postgres"),
                     ("Deployment", "moca-mlflow"), ("Deployment", "moca-prefect-server"),
                     ("Deployment", "moca-prefect-worker"), ("Role", "moca-prefect-worker"),
                     ("PyTorchJob", "moca-train-adapters"), ("ScheduledWorkflow", "moca-nightly-retrain"),
                     ("Job", "moca-submit-run"), ("PersistentVolumeClaim", "moca-weights-cache"),
                     ("NetworkPolicy", "default-deny-ingress")]:
        assert expected in kinds, f"{overlay} lacks {expected}"


def test_every_object_matches_its_schema(rendered):
    problems = [f"{overlay} {name_of(obj)}: {p}" for overlay, obj in _all(rendered) for p in schema_problems(obj)]
    assert problems == []


def test_every_pod_meets_the_policies(rendered):
    problems = [f"{overlay} {name_of(obj)}: {p}" for overlay, obj in _all(rendered) for p in policy_problems(obj)]
    assert problems == []
    pods = sum(1 for _, obj in _all(rendered) for _ in pod_specs(obj))
    assert pods >= 2 * 8, "the policy check saw fewer pods than the stack has"


def test_schema_check_catches_broken_objects(rendered):
    job = copy.deepcopy(_one(rendered["gpu"], "PyTorchJob", "moca-train-adapters"))
    job["spec"]["nprocPerNodes"] = "4"  # misspelt field
    assert any("nprocPerNodes" in p for p in schema_problems(job))
    job = copy.deepcopy(_one(rendered["gpu"], "PyTorchJob", "moca-train-adapters"))
    job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["resource"] = {}
    assert any("pytorchReplicaSpecs.Master" in p for p in schema_problems(job))
    swf = copy.deepcopy(_one(rendered["gpu"], "ScheduledWorkflow", "moca-nightly-retrain"))
    swf["spec"]["trigger"]["cronSchedule"]["cron"] = "0 3 * * *"  # 5 fields: KFP wants 6
    assert any("cron" in p for p in schema_problems(swf))
    deployment = copy.deepcopy(_one(rendered["dev"], "Deployment", "moca-mlflow"))
    deployment["spec"]["replicas"] = "one"
    assert schema_problems(deployment)


def test_policy_check_catches_unsafe_pods(rendered):
    deployment = copy.deepcopy(_one(rendered["dev"], "Deployment", "moca-mlflow"))
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    del container["resources"]["limits"]
    container["image"] = "registry.example.com/moca/moca-cpu:latest"
    container["securityContext"]["capabilities"]["drop"] = []
    del pod["securityContext"]["runAsNonRoot"]
    problems = " | ".join(policy_problems(deployment))
    for expected in ("resources.limits", "not pinned", "drop ALL", "runAsNonRoot"):
        assert expected in problems


def test_recurring_run_has_a_six_field_cron_and_no_overlap(rendered):
    spec = _one(rendered["gpu"], "ScheduledWorkflow", "moca-nightly-retrain")["spec"]
    assert spec["trigger"]["cronSchedule"]["cron"].split() == ["0", "0", "3", "*", "*", "*"]
    assert spec["maxConcurrency"] == 1 and spec["noCatchup"] is True


def test_gpu_overlay_requests_as_many_gpus_as_processes_per_node(rendered):
    job = _one(rendered["gpu"], "PyTorchJob", "moca-train-adapters")["spec"]
    assert set(job["pytorchReplicaSpecs"]) == {"Master", "Worker"}
    for replica in job["pytorchReplicaSpecs"].values():
        pod = replica["template"]["spec"]
        limits = pod["containers"][0]["resources"]["limits"]
        assert str(limits["nvidia.com/gpu"]) == job["nprocPerNode"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
        # The launcher: torchrun reads the operator's PET_* variables, then starts `moca train`.
        container = pod["containers"][0]
        assert container["command"][:4] == ["python", "-m", "torch.distributed.run", "--no-python"]
        assert container["args"][:2] == ["moca", "train"]


def test_every_moca_container_takes_its_threads_from_its_cpu_limit(rendered):
    """moca.threads reads MOCA_NUM_THREADS; the downward API fills it from the container's own CPU limit."""
    limit = {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}}
    expected = {"name": "MOCA_NUM_THREADS", "valueFrom": limit}
    runs_moca = []
    for overlay, obj in _all(rendered):
        for _where, pod in pod_specs(obj):
            for container in containers(pod):
                if "moca" in [*container.get("command", [])[:1], *container.get("args", [])[:1]]:
                    runs_moca.append(f"{overlay} {name_of(obj)} {container['name']}")
                    assert expected in container.get("env", []), runs_moca[-1]
    # gpu: training Master and Worker, the submit Job, the recurring run; dev: the same without the Worker
    assert len(runs_moca) == 4 + 3


def test_dev_overlay_is_one_node_without_gpus(rendered):
    objs = rendered["dev"]
    job = _one(objs, "PyTorchJob", "moca-train-adapters")["spec"]
    assert set(job["pytorchReplicaSpecs"]) == {"Master"} and job["nprocPerNode"] == "1"
    assert "nvidia.com/gpu" not in yaml.safe_dump(objs)
    for claim in (o for o in objs if o["kind"] == "PersistentVolumeClaim"):
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_only_pipeline_pods_reach_the_store_and_mlflow(rendered):
    policies = {o["metadata"]["name"]: o["spec"] for o in rendered["gpu"] if o["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    pipeline_label = {"moca.io/pipeline-access": "true"}
    for name, target in (("pipeline-pods-to-object-store", "moca-object-store"),
                         ("pipeline-pods-to-mlflow", "moca-mlflow")):
        policy = policies[name]
        assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": target}
        [rule] = policy["ingress"]
        assert all(peer["podSelector"]["matchLabels"] == pipeline_label for peer in rule["from"])
    labelled = {o["metadata"]["name"] for o in rendered["gpu"] for _, pod in pod_specs(o)
                if o["kind"] != "ScheduledWorkflow"
                and (o["spec"].get("template", {}).get("metadata", {}).get("labels", {}).get("moca.io/pipeline-access")
                     or any(r["template"]["metadata"]["labels"].get("moca.io/pipeline-access")
                            for r in o["spec"].get("pytorchReplicaSpecs", {}).values()))}
    assert labelled == {"moca-mlflow", "moca-train-adapters"}


def test_no_secret_is_rendered_or_committed(rendered):
    assert not [name_of(o) for _, o in _all(rendered) if o["kind"] == "Secret"]
    example = [d for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if d]
    assert {d["kind"] for d in example} == {"Secret"}
    assert all(v == "REPLACE_ME" for d in example for v in d["stringData"].values())
    ignored = subprocess.run(["git", "check-ignore", "-q", "k8s/secrets.yaml"], cwd=REPO, check=False)
    assert ignored.returncode == 0, "k8s/secrets.yaml must be gitignored"
    tracked = subprocess.run(["git", "ls-files", "k8s"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for path in tracked.split():
        if path.endswith((".yaml", ".yml")) and path != "k8s/secrets.example.yaml":
            docs = [d for d in yaml.safe_load_all((REPO / path).read_text()) if isinstance(d, dict)]
            assert not [d for d in docs if d.get("kind") == "Secret" and (d.get("data") or d.get("stringData"))], path


def test_one_gpu_node_selector_everywhere(rendered):
    """The pipeline's GPU tasks (the config default and the cluster config) and the PyTorchJob select the same
    GPU nodes and tolerate the same taint."""
    from moca.steps.config import GPU_NODE_SELECTOR, GPU_TOLERATION, GpuConfig, load_config

    cluster = load_config(REPO / "configs" / "pipeline_avsbench_s4.yaml").kfp.gpu
    assert cluster.enabled and cluster.node_selector == GpuConfig().node_selector == GPU_NODE_SELECTOR
    assert cluster.tolerations == GpuConfig().tolerations == [GPU_TOLERATION]
    job = _one(rendered["gpu"], "PyTorchJob", "moca-train-adapters")["spec"]
    for replica in job["pytorchReplicaSpecs"].values():
        pod = replica["template"]["spec"]
        assert pod["nodeSelector"] == GPU_NODE_SELECTOR and pod["tolerations"] == [GPU_TOLERATION]


def test_the_pipeline_pods_find_their_configuration_in_their_namespace(rendered):
    """What the pipeline config tells kfp-kubernetes to inject exists in namespace kubeflow, key for key: a
    missing ConfigMap key or PVC would keep every task pod from starting."""
    from moca.steps.config import KfpConfig

    kfp = KfpConfig()
    for overlay in OVERLAYS:
        objects = {(o["kind"], o["metadata"]["name"]): o for o in rendered[overlay]
                   if o["metadata"].get("namespace") == "kubeflow"}  # fmt: skip
        for name, keys in kfp.config_map_env.items():
            assert set(keys) == set(objects[("ConfigMap", name)]["data"]), f"{overlay}: ConfigMap {name}"
        assert ("PersistentVolumeClaim", kfp.weights_cache.pvc) in objects, overlay
    secrets = {(d["metadata"]["namespace"], d["metadata"]["name"]): d["stringData"]
               for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if d}  # fmt: skip
    for name, keys in kfp.secret_env.items():
        assert set(keys) <= set(secrets[("kubeflow", name)])
    (stack,) = [o["data"] for o in rendered["gpu"] if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "moca-env"
                and o["metadata"]["namespace"] == "moca"]  # fmt: skip
    assert stack["MOCA_WEIGHTS_CACHE"] == kfp.weights_cache.path
