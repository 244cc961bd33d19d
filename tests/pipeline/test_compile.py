"""`moca pipeline compile`: the IR YAML holds the tasks, the gate, GPU settings, retries, labels and cache keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pipeline_configs import write_config

from moca.errors import ConfigError
from moca.steps.kubeflow import check_kfp_cron, compile_pipeline

TASKS = {"start-run", "ingest", "validate", "mine-pairs", "train", "infer", "evaluate", "register", "stop-run"}
GPU = {"enabled": True, "accelerator_type": "nvidia.com/gpu", "accelerator_limit": 2,
       "node_selector": {"pool": "gpu"}, "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                          "effect": "NoSchedule"}]}  # fmt: skip


def _all_tasks(spec: dict) -> dict[str, dict]:
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


@pytest.fixture
def compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    kfp = {"cpu_image": "reg/moca-cpu@sha256:" + "a" * 64, "gpu_image": "reg/moca-gpu@sha256:" + "b" * 64,
           "retries": 3, "backoff_s": 45, "gpu": GPU, "caching": True}  # fmt: skip
    config = write_config(tmp_path / "pipeline.yaml", tmp_path / "data", kfp=kfp)
    monkeypatch.chdir(tmp_path)  # the pipeline and its components are imported as packages, from any folder
    out = compile_pipeline(config, tmp_path / "out" / "pipeline.yaml")
    pipeline, platform = list(yaml.safe_load_all(out.read_text()))
    return pipeline, platform


def test_every_step_is_a_task_behind_the_validation_gate(compiled):
    pipeline, _ = compiled
    tasks = _all_tasks(pipeline)
    assert TASKS <= set(tasks)
    conditions = [t["triggerPolicy"]["condition"] for t in tasks.values() if "triggerPolicy" in t]
    assert any("validate-passed" in c and not c.startswith("!") for c in conditions)
    assert any(c.startswith("!") and "validate-passed" in c for c in conditions)  # the Else branch: stop-run
    root_tasks = pipeline["root"]["dag"]["tasks"]
    assert "train" not in root_tasks and "register" not in root_tasks  # only reachable through the gate


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


def test_images_gpu_retries_labels_and_cache_keys(compiled):
    pipeline, platform = compiled
    executors = pipeline["deploymentSpec"]["executors"]
    images = {name.removeprefix("exec-"): e["container"]["image"] for name, e in executors.items()}
    assert images["train"].startswith("reg/moca-gpu@sha256:") and images["infer"].startswith("reg/moca-gpu@")
    assert images["validate"].startswith("reg/moca-cpu@sha256:")
    accelerator = executors["exec-train"]["container"]["resources"]["accelerator"]
    assert accelerator["resourceType"] == "nvidia.com/gpu" and accelerator["resourceCount"] == "2"
    assert "accelerator" not in executors["exec-validate"]["container"].get("resources", {})
    assert all("pip install" not in " ".join(e["container"]["command"]) for e in executors.values())
    tasks = _all_tasks(pipeline)
    assert tasks["train"]["retryPolicy"]["maxRetryCount"] == 3
    assert tasks["train"]["retryPolicy"]["backoffDuration"] == "45s"
    assert "retryPolicy" not in tasks["stop-run"]
    assert tasks["train"]["cachingOptions"].get("enableCache") is True
    assert not tasks["start-run"]["cachingOptions"].get("enableCache")
    for name in ("mine-pairs", "train", "infer", "evaluate", "register"):
        assert {"git_sha", "config_hash", "data_version"} <= set(tasks[name]["inputs"]["parameters"])
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert k8s["exec-train"]["nodeSelector"]["labels"] == {"pool": "gpu"}
    assert k8s["exec-train"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "nodeSelector" not in k8s["exec-evaluate"]
    assert all(e["podMetadata"]["labels"] == {"moca.io/pipeline-access": "true"} for e in k8s.values())
    assert set(k8s) == {f"exec-{t}" for t in TASKS}


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
    assert not any((tmp_path / f"{n}.out").exists() for n in "abcef")
    assert check_kfp_cron("0 0 3 * * *") == "0 0 3 * * *"
    with pytest.raises(ConfigError, match="6 fields"):
        check_kfp_cron("0 3 * * *")
