"""Checks over rendered Kubernetes objects: schema validation (built-in kinds and the custom resources we
ship schemas for) and the deployment policies (resources, non-root, digests). Each returns a list of
problems, empty when the object passes, so tests can show every failure at once and can also prove that
a deliberately broken object is caught."""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
BIN = REPO / ".venv" / "bin"
# The oldest Kubernetes minor the manifests promise to work on; kubernetes-validate ships its schemas.
KUBERNETES_VERSION = "1.33.0"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
CRD_SCHEMAS = {
    ("kubeflow.org/v1", "PyTorchJob"): "pytorchjob.kubeflow.org-v1.json",
    ("kubeflow.org/v1beta1", "ScheduledWorkflow"): "scheduledworkflow.kubeflow.org-v1beta1.json",
}

Obj = dict[str, Any]


def kubectl() -> Path:
    return BIN / "kubectl"


def render(kustomization: Path) -> list[Obj]:
    out = subprocess.run([str(kubectl()), "kustomize", str(kustomization)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {kustomization} failed:\n{out.stderr}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def name_of(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def pod_specs(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """Every pod spec inside an object, with a readable location. Argo templates inside a
    ScheduledWorkflow become one pod spec each (workflow-level securityContext and volumes apply)."""
    kind, spec = obj.get("kind"), obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield "spec.template.spec", spec["template"]["spec"]
    elif kind == "CronJob":
        yield "spec.jobTemplate.spec.template.spec", spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "Pod":
        yield "spec", spec
    elif kind == "PyTorchJob":
        for role, replica in spec.get("pytorchReplicaSpecs", {}).items():
            yield f"spec.pytorchReplicaSpecs.{role}.template.spec", replica.get("template", {}).get("spec", {})
    elif kind == "ScheduledWorkflow":
        workflow = spec.get("workflow", {}).get("spec", {})
        for template in workflow.get("templates", []):
            if "container" in template:
                yield f"spec.workflow.spec.templates[{template['name']}]", {
                    "securityContext": workflow.get("securityContext", {}),
                    "volumes": workflow.get("volumes", []),
                    "serviceAccountName": workflow.get("serviceAccountName"),
                    "containers": [dict(template["container"], name=template["name"])],
                }


def containers(pod: Obj) -> Iterator[Obj]:
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])


def schema_problems(obj: Obj) -> list[str]:
    """Validate against the Kubernetes schema (strict: unknown fields are errors), or for a custom
    resource against the shipped CRD schema plus its embedded pod specs against the Kubernetes schema."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key not in CRD_SCHEMAS:
        return _kubernetes_problems(obj)
    schema = json.loads((K8S / "schemas" / CRD_SCHEMAS[key]).read_text())
    problems = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
    for where, pod in pod_specs(obj):
        # A PodTemplate is the core kind whose body is exactly the embedded PodTemplateSpec.
        wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "embedded"},
                   "template": {"spec": pod}}
        problems += [f"{where}: {p}" for p in _kubernetes_problems(wrapper)]
    return problems


def _kubernetes_problems(obj: Obj) -> list[str]:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path))}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no Kubernetes {KUBERNETES_VERSION} schema for {obj.get('apiVersion')} {obj.get('kind')}"]
    return []


def policy_problems(obj: Obj) -> list[str]:
    """Resources, non-root hardening and digest-pinned images for every container of every pod."""
    problems = []
    for where, pod in pod_specs(obj):
        pod_sc = pod.get("securityContext", {})
        if pod_sc.get("runAsNonRoot") is not True:
            problems.append(f"{where}: pod securityContext.runAsNonRoot is not true")
        if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
        tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for c in containers(pod):
            at = f"{where} container {c.get('name')}"
            resources = c.get("resources", {})
            for bound in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(bound, {}))
                if missing:
                    problems.append(f"{at}: resources.{bound} lacks {sorted(missing)}")
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{at}: allowPrivilegeEscalation is not false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{at}: capabilities do not drop ALL")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: readOnlyRootFilesystem is not true")
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            if sc.get("readOnlyRootFilesystem") and mounts.get("/tmp") not in tmp_volumes:
                problems.append(f"{at}: read-only root filesystem but no emptyDir at /tmp")
            if not DIGEST.search(str(c.get("image", ""))):
                problems.append(f"{at}: image {c.get('image')!r} is not pinned by sha256 digest")
    return problems
