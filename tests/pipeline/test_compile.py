"""`moca pipeline compile`: the IR YAML holds the tasks, the gate, the exit handler, the pods' environment,
resources, GPU settings, retries, labels, runtime parameters and cache-safe inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pipeline_configs import REPO, write_config

from moca.errors import ConfigError
from moca.steps.kubeflow import check_kfp_cron, compile_pipeline

TASKS = {"start-run", "ingest", "validate", "mine-pairs", "train", "infer", "evaluate", "register", "stop-run",
         "finish-run"}  # fmt: skip
GPU = {"enabled": True, "accelerator_type": "nvidia.com/gpu", "accelerator_limit": 2,
       "node_selector": {"pool": "gpu"}, "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                          "effect": "NoSchedule"}]}  # fmt: skip
KFP = {"cpu_image": "reg/moca-cpu@sha256:" + "a" * 64, "gpu_image": "reg/moca-gpu@sha256:" + "b" * 64,
       "retries": 3, "backoff_s": 45, "gpu": GPU, "caching": True,
       "resources": {"default": {"cpu_request": "250m", "cpu_limit": "1", "memory_request": "1Gi",
                                 "memory_limit": "2Gi"},
                     "train": {"cpu_request": "4", "cpu_limit": "8", "memory_request": "16Gi",
                               "memory_limit": "32Gi"}}}  # fmt: skip


def _all_tasks(spec: dict) -> dict[str, dict]:
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def _compile(folder: Path, overrides: list[str] = (), **config) -> tuple[dict, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    path = write_config(folder / "pipeline.yaml", Path("data"), kfp=KFP, **config)
    out = compile_pipeline(path, folder / "out" / "pipeline.yaml", overrides)
    pipeline, platform = list(yaml.safe_load_all(out.read_text()))
    return pipeline, platform


@pytest.fixture
def compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    monkeypatch.chdir(tmp_path)  # the pipeline and its components are imported as packages, from any folder
    return _compile(tmp_path)


def test_every_step_is_a_task_behind_the_gate_inside_the_exit_handler(compiled):
    pipeline, _ = compiled
    tasks = _all_tasks(pipeline)
    assert TASKS <= set(tasks)
    conditions = [t["triggerPolicy"]["condition"] for t in tasks.values() if "condition" in t.get("triggerPolicy", {})]
    assert any("validate-passed" in c and not c.startswith("!") for c in conditions)
    assert any(c.startswith("!") and "validate-passed" in c for c in conditions)  # the Else branch: stop-run
    root = pipeline["root"]["dag"]["tasks"]
    (handler,) = [n for n in root if n != "finish-run"]
    finish = root["finish-run"]
    assert finish["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert finish["inputs"]["parameters"]["status"] == {"taskFinalStatus": {"producerTask": handler}}
    inside = pipeline["components"][root[handler]["componentRef"]["name"]]["dag"]["tasks"]
    assert {"start-run", "ingest", "validate"} <= set(inside) and "train" not in inside  # train is behind the gate


def test_tasks_are_wired_from_the_one_step_declaration(compiled):
    from moca.steps import PIPELINE, producers, step_spec

    def producer(source: dict) -> tuple[str, str]:
        """(task, output) an input artifact comes from: in its own DAG, or passed into the gated branch."""
        if "taskOutputArtifact" in source:
            return source["taskOutputArtifact"]["producerTask"], source["taskOutputArtifact"]["outputArtifactKey"]
        task, output = source["componentInputArtifact"].removeprefix("pipelinechannel--").rsplit("-", 1)
        return task, output

    pipeline, _ = compiled
    tasks = _all_tasks(pipeline)
    made_by = producers()
    for name in PIPELINE[1:]:
        artifacts = tasks[name.replace("_", "-")]["inputs"].get("artifacts", {})
        for role in step_spec(name).reads:
            assert producer(artifacts[role]) == (made_by[role].replace("_", "-"), role)
        if name != "register":  # every step but register reads the ingested data
            assert producer(artifacts["dataset"]) == ("ingest", "dataset")
    assert "dataset" not in tasks["register"]["inputs"]["artifacts"]  # no data download into its pod


def test_images_resources_gpu_retries_and_labels(compiled):
    pipeline, platform = compiled
    executors = pipeline["deploymentSpec"]["executors"]
    images = {name.removeprefix("exec-"): e["container"]["image"] for name, e in executors.items()}
    assert images["train"].startswith("reg/moca-gpu@sha256:") and images["infer"].startswith("reg/moca-gpu@")
    assert images["validate"].startswith("reg/moca-cpu@sha256:")
    accelerator = executors["exec-train"]["container"]["resources"]["accelerator"]
    assert accelerator["resourceType"] == "nvidia.com/gpu" and accelerator["resourceCount"] == "2"
    assert "accelerator" not in executors["exec-validate"]["container"].get("resources", {})
    for name, executor in executors.items():
        resources = executor["container"]["resources"]
        expected = ("4", "8", "16Gi", "32Gi") if name == "exec-train" else ("250m", "1", "1Gi", "2Gi")
        assert (resources["resourceCpuRequest"], resources["resourceCpuLimit"], resources["resourceMemoryRequest"],
                resources["resourceMemoryLimit"]) == expected, name  # fmt: skip
    assert all("pip install" not in " ".join(e["container"]["command"]) for e in executors.values())
    tasks = _all_tasks(pipeline)
    assert tasks["train"]["retryPolicy"]["maxRetryCount"] == 3
    assert tasks["train"]["retryPolicy"]["backoffDuration"] == "45s"
    assert "retryPolicy" not in tasks["stop-run"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert k8s["exec-train"]["nodeSelector"]["labels"] == {"pool": "gpu"}
    assert k8s["exec-train"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "nodeSelector" not in k8s["exec-evaluate"]
    assert all(e["podMetadata"]["labels"] == {"moca.io/pipeline-access": "true"} for e in k8s.values())
    assert set(k8s) == {f"exec-{t}" for t in TASKS}


def test_every_pod_gets_its_configuration_and_the_model_tasks_the_weights_cache(compiled):
    from moca.steps.config import KfpConfig

    _, platform = compiled
    defaults = KfpConfig()
    for name, executor in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].items():
        assert executor["fieldPathAsEnv"] == [{"name": "MOCA_KFP_RUN_ID",
                                               "fieldPath": "metadata.labels['pipeline/runid']"}], name
        secrets = {s["secretName"]: [k["secretKey"] for k in s["keyToEnv"]] for s in executor["secretAsEnv"]}
        maps = {c["configMapName"]: [k["configMapKey"] for k in c["keyToEnv"]] for c in executor["configMapAsEnv"]}
        assert secrets == defaults.secret_env and maps == defaults.config_map_env, name
        mounts = [(m["constant"], m["mountPath"]) for m in executor.get("pvcMount", [])]
        model_task = name.removeprefix("exec-").replace("-", "_") in defaults.weights_cache.components
        assert mounts == ([("moca-weights-cache", "/cache/weights")] if model_task else []), name


def test_runtime_parameters_reach_only_the_tasks_of_their_section(compiled):
    from moca.steps import RUNTIME_PARAMETERS

    pipeline, _ = compiled
    parameters = pipeline["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == {"data_rev", "run_name", *RUNTIME_PARAMETERS}
    demo_lr = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())["lr"]  # the compiled config's train.lr
    assert parameters["lr"]["parameterType"] == "NUMBER_DOUBLE" and parameters["lr"]["defaultValue"] == demo_lr
    assert parameters["epochs"]["parameterType"] == "NUMBER_INTEGER"
    assert parameters["eval_split"]["defaultValue"] == "test"
    tasks = _all_tasks(pipeline)
    for name, keys in RUNTIME_PARAMETERS.items():
        sections = {key.split(".")[0] for key in keys}
        takers = {t for t, task in tasks.items() if name in task.get("inputs", {}).get("parameters", {})}
        expected = {"start-run"} | {{"train": "train", "infer": "infer", "evaluate": "evaluate",
                                     "register": "register"}[s] for s in sections}  # fmt: skip
        assert takers == expected, name


def _cache_inputs(pipeline: dict) -> dict[str, dict]:
    """What enters each cached task's cache key from the IR: its parameters (constants and where the others come
    from), its input artifacts' producers, its image, command and args."""
    executors = pipeline["deploymentSpec"]["executors"]
    cached = {}
    for name, task in _all_tasks(pipeline).items():
        if not task.get("cachingOptions", {}).get("enableCache"):
            continue
        component = pipeline["components"][task["componentRef"]["name"]]
        cached[name] = {"inputs": task["inputs"], "container": executors[component["executorLabel"]]["container"]}
    return cached


def test_cache_keys_hold_nothing_new_per_run_and_a_changed_lr_keeps_mining(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, _ = _compile(tmp_path / "a")
    second, _ = _compile(tmp_path / "b")
    cached = _cache_inputs(first)
    assert set(cached) == {"ingest", "mine-pairs", "train", "infer", "evaluate"}
    assert cached == _cache_inputs(second)  # compiled twice: the same keys
    per_run = ("run_name", "pipelinechannel--run_name")  # and the MLflow run id is no parameter at all
    for name, spec in cached.items():
        for parameter in spec["inputs"].get("parameters", {}).values():
            assert parameter.get("componentInputParameter") not in per_run, name
            producer = parameter.get("taskOutputParameter", {})
            # start-run is never cached; what cached tasks take from it is a content address and a config hash
            assert producer.get("producerTask") != "start-run" or producer["outputParameterKey"] in (
                "data_version", "config_hash"), name
    relearn, _ = _compile(tmp_path / "c", ["train.lr=0.01"])
    changed = {name for name, spec in _cache_inputs(relearn).items() if spec != cached[name]}
    assert changed == {"train"}


def test_config_hash_tracks_the_model_config_not_the_images(tmp_path):
    from moca.steps.config import load_pipeline_config

    base = load_pipeline_config(write_config(tmp_path / "a.yaml", tmp_path / "d"))
    images = load_pipeline_config(write_config(tmp_path / "b.yaml", tmp_path / "d", kfp={"cpu_image": "x@sha256:1"}))
    mining = load_pipeline_config(write_config(tmp_path / "c.yaml", tmp_path / "d",
                                               mining={"model": "dino_tiny", "k": 7}))
    assert base.model_config_hash() == images.model_config_hash() != mining.model_config_hash()


def test_bad_configs_fail_at_compile_time(tmp_path):
    with pytest.raises(ConfigError, match="unknown component"):
        compile_pipeline(write_config(tmp_path / "a.yaml", tmp_path / "d", kfp={"images": {"trian": "x"}}),
                         tmp_path / "a.out")
    with pytest.raises(ConfigError, match="infer"):
        compile_pipeline(write_config(tmp_path / "b.yaml", tmp_path / "d", infer={"mpm": "magic"}),
                         tmp_path / "b.out")
    real_dino = {"model": "dino_vitb16", "weights": {"uri": "s3://w/dino.pth", "sha256": None}}
    with pytest.raises(ConfigError, match="mining.weights.sha256: dino_vitb16 weights s3://w/dino.pth must name"):
        compile_pipeline(write_config(tmp_path / "c.yaml", tmp_path / "d", mining=real_dino), tmp_path / "c.out")
    with pytest.raises(ConfigError, match="infer.sam.weights: sam_vit_h needs its released weights"):
        compile_pipeline(write_config(tmp_path / "e.yaml", tmp_path / "d", infer={"sam": {"model": "sam_vit_h"}}),
                         tmp_path / "e.out")
    with pytest.raises(ConfigError, match="train.batch_size: expected an integer, got 'eight'"):
        compile_pipeline(write_config(tmp_path / "f.yaml", tmp_path / "d"), tmp_path / "f.out",
                         ["train.batch_size=eight"])
    with pytest.raises(ConfigError, match="kfp.resources: needs a `default`"):
        compile_pipeline(write_config(tmp_path / "g.yaml", tmp_path / "d", kfp={"resources": {"train": {}}}),
                         tmp_path / "g.out")
    assert not any((tmp_path / f"{n}.out").exists() for n in "abcefg")
    assert check_kfp_cron("0 0 3 * * *") == "0 0 3 * * *"
    with pytest.raises(ConfigError, match="6 fields"):
        check_kfp_cron("0 3 * * *")
