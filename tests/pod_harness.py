"""A Kubeflow Pipelines 2.x run of a compiled IR YAML, task by task, as the backend would run it in pods.

Why not kfp.local: it runs tasks in this process's environment and working directory, passes artifacts as local
folders, ignores the Kubernetes platform spec (Secrets, ConfigMaps, volumes, field-path env) and has its own cache
key. Those are exactly what breaks on a cluster. This harness does what KFP's driver, launcher and the kubelet do:

- driver: walks the IR's DAGs (nested DAGs of `dsl.If`/`dsl.Else`, the `dsl.ExitHandler` with
  ALL_UPSTREAM_TASKS_COMPLETED and `taskFinalStatus`), resolves each task's parameters and artifacts, evaluates its
  trigger condition, builds the executor input KFP's driver would build, and consults a cache keyed as KFP's
  `cacheutils.GenerateCacheKey` does (input artifact *ids*, parameter values, output specs, image, command and
  args, PVC names, IR env) when the task has caching enabled;
- launcher: downloads each input artifact from the S3 store into the pod's local artifact mount and uploads each
  output artifact back after a success, so artifacts move between tasks through the store, never a shared folder;
- kubelet: a fresh pod folder per task (empty HOME = working directory, as the image's WORKDIR; its own /tmp), the
  environment made only of the image's ENV (docker/Dockerfile.cpu), the IR container env and the platform spec:
  Secret and ConfigMap keys materialised from the manifests (a missing object or key fails the pod, as Kubernetes
  would), `fieldPathAsEnv` from the pod's labels (`pipeline/runid` included), PVC mounts; cluster DNS names of
  Services are mapped to the loopback servers that stand in for them.

The task's own container command (`sh -ec ... python3 -m kfp.dsl.executor_main ...`) then runs with the `python3`
of a scratch venv holding the project as a wheel (no checkout, no git, no `.dvc`). Absolute paths of the pod
(/home/moca, /tmp, mount paths) are mapped into the pod folder in env values; the artifact mount prefix is the
pod folder's `s3/` instead of `/s3/` (no root needed), so artifact URIs the executor sees are those local paths
(the components read `.path` and metadata, never `.uri`). Not emulated: retries, parallel branches, resource
limits, node scheduling.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The container's filesystem paths mapped into each pod folder: the image's HOME/WORKDIR, the /tmp emptyDir and the
# image's own weights cache folder (a volume mounted there replaces it).
POD_DIRS = {"/home/moca": "home", "/tmp": "tmp", "/cache/weights": "cache-weights"}
FETCH_LINE = re.compile(r"fetched (\d+) files, (\d+) bytes")


def image_env(dockerfile: Path, build_args: dict[str, str] | None = None) -> dict[str, str]:
    """The ENV of the Dockerfile's last stage (what every container of the image starts with), its ARGs
    substituted (defaults, or `build_args` as `docker build --build-arg` gives them)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    stage = text[text.rindex("\nFROM "):]
    args = {**dict(re.findall(r"^ARG (\w+)=(\S+)$", stage, flags=re.M)), **(build_args or {})}
    env: dict[str, str] = {}
    for line in stage.splitlines():
        if line.startswith("ENV "):
            for name, value in re.findall(r'(\w+)=("[^"]*"|\S+)', line[4:]):
                env[name] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], ""), value.strip('"'))
    return env


@dataclass
class Cluster:
    """What the pods of the `namespace` see: ConfigMaps, Secrets and PVCs from the manifests, Services as URLs."""

    config_maps: dict[str, dict[str, str]]
    secrets: dict[str, dict[str, str]]
    pvcs: set[str]
    services: dict[str, str]  # "host:port" as in the manifests -> "127.0.0.1:port"
    image_env: dict[str, str]

    @classmethod
    def from_manifests(cls, rendered: list[dict], secrets: list[dict], namespace: str, services: dict[str, str],
                       dockerfile: Path, build_args: dict[str, str] | None = None) -> Cluster:  # fmt: skip
        def objects(kind: str, docs: list[dict]) -> list[dict]:
            return [d for d in docs if d.get("kind") == kind and d["metadata"].get("namespace") == namespace]

        return cls(config_maps={d["metadata"]["name"]: d.get("data", {}) for d in objects("ConfigMap", rendered)},
                   secrets={d["metadata"]["name"]: d.get("stringData", {}) for d in objects("Secret", secrets)},
                   pvcs={d["metadata"]["name"] for d in objects("PersistentVolumeClaim", rendered)},
                   services=services, image_env=image_env(dockerfile, build_args))  # fmt: skip

    def resolve(self, value: str) -> str:
        for host, loopback in self.services.items():
            value = value.replace(host, loopback)
        if ".svc.cluster.local" in value:
            raise AssertionError(f"env value {value!r} names a Service the harness does not stand in for")
        return value

    def env_from(self, config_maps: list[str], secrets: list[str], mounts: dict[str, Path]) -> dict[str, str]:
        """A container's env with `envFrom` these ConfigMaps and Secrets (every key), after the image's ENV."""
        env = dict(self.image_env)
        for name in config_maps:
            env.update(self._object(self.config_maps, "ConfigMap", name))
        for name in secrets:
            env.update(self._object(self.secrets, "Secret", name))
        return {k: map_paths(self.resolve(v), mounts) for k, v in env.items()}

    @staticmethod
    def _object(objects: dict, kind: str, name: str, optional: bool = False) -> dict:
        if name not in objects:
            if optional:
                return {}
            raise AssertionError(f"pod would not start: {kind} {name} does not exist in its namespace")
        return objects[name]


@dataclass
class TaskRecord:
    name: str
    state: str  # SUCCEEDED, FAILED, SKIPPED, CACHED
    outputs: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: Path | None = None
    downloaded: int = 0  # artifact bytes the launcher moved into the pod
    uploaded: int = 0
    fetched: int = 0  # dataset bytes the task fetched itself (its own log line)
    env: dict[str, str] = field(default_factory=dict)  # the pod's environment

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log and self.log.exists() else ""


@dataclass
class Harness:
    ir_path: Path
    cluster: Cluster
    python_bin: Path  # the scratch venv's bin folder (python3 there)
    root: Path  # pods, volumes
    s3: Any  # a boto3 client of the store the launcher uses
    bucket: str = "mlpipeline"  # the pipeline root, as KFP's own artifact store
    timeout_s: int = 1200
    cache: dict[str, TaskRecord] = field(default_factory=dict)
    killed: set[str] = field(default_factory=set)  # tasks whose container is killed (OOM) before it reports

    def __post_init__(self) -> None:
        self.pipeline, self.platform = list(yaml.safe_load_all(self.ir_path.read_text()))
        self.executors = self.pipeline["deploymentSpec"]["executors"]
        self.k8s = (self.platform or {}).get("platforms", {}).get("kubernetes", {}).get(
            "deploymentSpec", {}).get("executors", {})  # fmt: skip
        self._next_id = 1

    # --- the run ------------------------------------------------------------------------------------------------

    def run(self, arguments: dict[str, Any] | None = None) -> dict[str, TaskRecord]:
        """One pipeline run; returns every task's record by name ("finish-run", "train", ...)."""
        self.run_id = str(uuid.uuid4())
        self.records: dict[str, TaskRecord] = {}
        params = {}
        for name, spec in self.pipeline["root"]["inputDefinitions"].get("parameters", {}).items():
            value = (arguments or {}).get(name, spec.get("defaultValue"))
            params[name] = self._typed(value, spec["parameterType"])
        self._dag(self.pipeline["root"]["dag"], params, {})
        return self.records

    def _dag(self, dag: dict, params: dict[str, Any], artifacts: dict[str, dict]) -> str:
        """Run a DAG's tasks in dependency order; returns SUCCEEDED or FAILED."""
        tasks, done, state = dag["tasks"], {}, "SUCCEEDED"
        while len(done) < len(tasks):
            ready = [n for n, t in tasks.items() if n not in done and set(t.get("dependentTasks", [])) <= set(done)]
            for name in sorted(ready):
                task = tasks[name]
                upstream = [done[d] for d in task.get("dependentTasks", [])]
                completed = task.get("triggerPolicy", {}).get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED"
                if any(s in ("FAILED", "SKIPPED") for s in upstream) and not completed:
                    done[name] = self._skip(name, task)
                    continue
                done[name] = self._task(name, task, params, artifacts, done)
                state = "FAILED" if done[name] == "FAILED" else state
        return state

    def _task(self, name: str, task: dict, params: dict, artifacts: dict, done: dict[str, str]) -> str:
        inputs = task.get("inputs", {})
        values = {key: self._parameter(spec, params, done) for key, spec in inputs.get("parameters", {}).items()}
        arts = {key: self._artifact(spec, artifacts) for key, spec in inputs.get("artifacts", {}).items()}
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not _cel(condition, values):
            return self._skip(name, task)
        component = self.pipeline["components"][task["componentRef"]["name"]]
        if "dag" in component:
            state = self._dag(component["dag"], values, arts)
            self.records[name] = TaskRecord(name, state)
            return state
        record = self._container(name, task, component, values, arts)
        self.records[name] = record
        return "FAILED" if record.state == "FAILED" else "SUCCEEDED"

    def _skip(self, name: str, task: dict) -> str:
        """A task that does not run, and every task of its DAG."""
        self.records[name] = TaskRecord(name, "SKIPPED")
        for inner, spec in self.pipeline["components"][task["componentRef"]["name"]].get("dag", {}).get(
                "tasks", {}).items():  # fmt: skip
            self._skip(inner, spec)
        return "SKIPPED"

    def _parameter(self, spec: dict, params: dict, done: dict[str, str]) -> Any:
        if "componentInputParameter" in spec:
            return params[spec["componentInputParameter"]]
        if "taskOutputParameter" in spec:
            ref = spec["taskOutputParameter"]
            return self.records[ref["producerTask"]].outputs[ref["outputParameterKey"]]
        if "taskFinalStatus" in spec:
            producer = spec["taskFinalStatus"]["producerTask"]
            state = done[producer]
            failed = [r for r in self.records.values() if r.state == "FAILED"]
            error = {"code": 1, "message": f"task {failed[0].name} failed"} if failed else {}
            return {"state": state, "pipelineJobResourceName": self.run_id, "pipelineTaskName": producer,
                    "error": error}  # fmt: skip
        constant = spec["runtimeValue"]["constant"]
        if isinstance(constant, str):  # f-strings of pipeline parameters
            constant = re.sub(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}",
                              lambda m: str(self._parameter({"componentInputParameter": m[1]}, params, done)),
                              constant)  # fmt: skip
        return constant

    def _artifact(self, spec: dict, artifacts: dict) -> dict:
        if "componentInputArtifact" in spec:
            return artifacts[spec["componentInputArtifact"]]
        ref = spec["taskOutputArtifact"]
        return self.records[ref["producerTask"]].artifacts[ref["outputArtifactKey"]]

    @staticmethod
    def _typed(value: Any, kind: str) -> Any:
        if kind == "NUMBER_INTEGER" and value is not None:
            return int(value)
        return value

    # --- one pod ------------------------------------------------------------------------------------------------

    def _container(self, name: str, task: dict, component: dict, values: dict, arts: dict) -> TaskRecord:
        executor = self.executors[component["executorLabel"]]["container"]
        platform = self.k8s.get(component["executorLabel"], {})
        outputs = component.get("outputDefinitions", {})
        key = self._cache_key(executor, platform, values, arts, outputs)
        if task.get("cachingOptions", {}).get("enableCache") and key in self.cache:
            cached = self.cache[key]
            return TaskRecord(name, "CACHED", cached.outputs, cached.artifacts)
        pod = self.root / "pods" / f"{self.run_id[:8]}-{name}"
        record = TaskRecord(name, "FAILED", log=pod / "log.txt")
        mounts = self._mounts(pod, platform)
        executor_input, local_outputs = self._executor_input(name, pod, values, arts, outputs, record)
        command = [part.replace("{{$}}", json.dumps(executor_input)) for part in executor["command"] +
                   executor.get("args", [])]  # fmt: skip
        env = record.env = self._env(pod, executor, platform, mounts)
        if name in self.killed:  # the kubelet's OOM kill: exit 137, and nothing of the task's own code runs
            record.log.write_text("OOMKilled (exit 137)\n")
            return record
        with open(record.log, "wb") as log:
            result = subprocess.run(command, cwd=mounts["/home/moca"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=self.timeout_s)  # fmt: skip
        record.fetched = sum(int(m[2]) for m in FETCH_LINE.finditer(record.log.read_text(errors="replace")))
        if result.returncode != 0:
            return record
        written = json.loads(Path(executor_input["outputs"]["outputFile"]).read_text())
        record.outputs = written.get("parameterValues", {})
        for output, local in local_outputs.items():
            metadata = written.get("artifacts", {}).get(output, {}).get("artifacts", [{}])[0].get("metadata", {})
            record.artifacts[output] = self._upload(name, output, local, outputs["artifacts"][output], metadata, record)
        record.state = "SUCCEEDED"
        if task.get("cachingOptions", {}).get("enableCache"):
            self.cache[key] = record
        return record

    def _mounts(self, pod: Path, platform: dict) -> dict[str, Path]:
        mounts = {path: pod / folder for path, folder in POD_DIRS.items()}
        for mount in platform.get("pvcMount", []):
            claim = mount.get("constant") or mount["pvcNameParameter"]["runtimeValue"]["constant"]
            if claim not in self.cluster.pvcs:
                raise AssertionError(f"pod would not start: PersistentVolumeClaim {claim} does not exist")
            mounts[mount["mountPath"]] = self.root / "volumes" / claim
        for folder in mounts.values():
            folder.mkdir(parents=True, exist_ok=True)
        return mounts

    def _env(self, pod: Path, executor: dict, platform: dict, mounts: dict[str, Path]) -> dict[str, str]:
        env = dict(self.cluster.image_env)
        env.update({e["name"]: e["value"] for e in executor.get("env", [])})
        for source in platform.get("secretAsEnv", []):
            data = self.cluster._object(self.cluster.secrets, "Secret", source["secretName"], source.get("optional"))
            env.update({k["envVar"]: self._key(data, "Secret", source["secretName"], k["secretKey"], source)
                        for k in source["keyToEnv"]})  # fmt: skip
        for source in platform.get("configMapAsEnv", []):
            data = self.cluster._object(self.cluster.config_maps, "ConfigMap", source["configMapName"],
                                        source.get("optional"))  # fmt: skip
            env.update({k["envVar"]: self._key(data, "ConfigMap", source["configMapName"], k["configMapKey"], source)
                        for k in source["keyToEnv"]})  # fmt: skip
        labels = {**platform.get("podMetadata", {}).get("labels", {}), "pipeline/runid": self.run_id}
        for item in platform.get("fieldPathAsEnv", []):
            label = re.fullmatch(r"metadata\.labels\['([^']+)'\]", item["fieldPath"])
            env[item["name"]] = labels.get(label[1], "") if label else ""
        env = {k: map_paths(self.cluster.resolve(v), mounts) for k, v in env.items()}
        env["PATH"] = f"{self.python_bin}:/usr/local/bin:/usr/bin:/bin"
        env["TMPDIR"] = str(mounts["/tmp"])  # the pod's /tmp emptyDir
        return env

    @staticmethod
    def _key(data: dict, kind: str, name: str, key: str, source: dict) -> str:
        if key not in data and not source.get("optional"):
            raise AssertionError(f"pod would not start: {kind} {name} has no key {key}")
        return str(data.get(key, ""))

    def _executor_input(self, name: str, pod: Path, values: dict, arts: dict, outputs: dict,
                        record: TaskRecord) -> tuple[dict, dict[str, Path]]:  # fmt: skip
        mount = pod / "s3"  # the launcher's local artifact mount, /s3/ in a real pod
        inputs = {}
        for key, art in arts.items():
            local = mount / art["key"]
            record.downloaded += self._download(art["key"], local)
            inputs[key] = {"artifacts": [{"name": art["id"], "type": art["type"], "uri": str(local),
                                          "metadata": art["metadata"]}]}  # fmt: skip
        local_outputs, out_artifacts = {}, {}
        for key, spec in outputs.get("artifacts", {}).items():
            local = mount / self.bucket / self.run_id / name / key
            local_outputs[key] = local
            out_artifacts[key] = {"artifacts": [{"name": "", "type": spec["artifactType"], "uri": str(local),
                                                 "metadata": {}}]}  # fmt: skip
        out_params = {key: {"outputFile": str(pod / "tmp" / "kfp" / "outputs" / key)}
                      for key in outputs.get("parameters", {})}  # fmt: skip
        executor_input = {"inputs": {"parameterValues": values, "artifacts": inputs},
                          "outputs": {"parameters": out_params, "artifacts": out_artifacts,
                                      "outputFile": str(pod / "tmp" / "kfp_outputs" / "output_metadata.json")}}
        return executor_input, local_outputs

    # --- the store ----------------------------------------------------------------------------------------------

    def _upload(self, task: str, output: str, local: Path, spec: dict, metadata: dict, record: TaskRecord) -> dict:
        key = f"{self.bucket}/v2/artifacts/{self.run_id}/{task}/{output}"
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for file in files:
            object_key = key.split("/", 1)[1] + ("" if file == local else "/" + file.relative_to(local).as_posix())
            self.s3.upload_file(str(file), self.bucket, object_key)
            record.uploaded += file.stat().st_size
        self._next_id += 1
        return {"id": str(self._next_id), "key": key, "type": spec["artifactType"], "metadata": metadata}

    def _download(self, key: str, local: Path) -> int:
        prefix = key.split("/", 1)[1]
        moved = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"] != prefix and not obj["Key"].startswith(prefix + "/"):
                    continue
                target = local if obj["Key"] == prefix else local / obj["Key"][len(prefix) + 1:]
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(self.bucket, obj["Key"], str(target))
                moved += obj["Size"]
        return moved

    def _cache_key(self, executor: dict, platform: dict, values: dict, arts: dict, outputs: dict) -> str:
        """KFP's cache key (backend/src/v2/cacheutils): input artifact ids (not contents), parameter values, output
        specs, image, command + args, PVC names and the IR container env."""
        key = {"inputArtifactNames": {k: [a["id"]] for k, a in arts.items()}, "inputParameterValues": values,
               "outputArtifactsSpec": {k: v["artifactType"] for k, v in outputs.get("artifacts", {}).items()},
               "outputParametersSpec": {k: v["parameterType"] for k, v in outputs.get("parameters", {}).items()},
               "containerSpec": {"image": executor["image"], "cmdArgs": executor["command"] + executor.get("args", []),
                                 "pvcNames": [m.get("constant") for m in platform.get("pvcMount", [])],
                                 "env": executor.get("env", [])}}  # fmt: skip
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def map_paths(value: str, mounts: dict[str, Path]) -> str:
    """Absolute container paths in an env value (a path, or a comma-separated list) moved to where they are mounted
    in the emulation. One pass, longest path first: a mapped path is never mapped again (pod folders live under
    the host's /tmp, which is also a container path)."""
    paths = "|".join(re.escape(path) for path in sorted(mounts, key=len, reverse=True))
    return re.sub(rf"(?<![\w/.])({paths})(?=$|[/,:])", lambda m: str(mounts[m[1]]), value)


def _cel(condition: str, values: dict[str, Any]) -> bool:
    """The CEL subset KFP's dsl.If/Else compile to: parameter comparisons, !, &&, ||."""
    expression = re.sub(r"inputs\.parameter_values\['([^']+)'\]", r"P['\1']", condition)
    expression = (expression.replace("&&", " and ").replace("||", " or ").replace("!(", " not (")
                  .replace("true", "True").replace("false", "False"))  # fmt: skip
    return bool(eval(expression, {"__builtins__": {}}, {"P": values}))  # noqa: S307 - the IR's own conditions


def object_bytes(records: dict[str, TaskRecord]) -> dict[str, dict[str, int]]:
    """Bytes each task moved: artifacts in and out through the launcher, dataset files it fetched itself."""
    return {name: {"artifacts_in": r.downloaded, "artifacts_out": r.uploaded, "dataset_fetched": r.fetched}
            for name, r in records.items() if r.log is not None}  # fmt: skip

