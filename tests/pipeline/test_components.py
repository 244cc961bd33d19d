"""Each Kubeflow component's own Python function (`component.python_func`), called directly on tiny synthetic data
with real KFP artifact objects, as Google's vertex-pipelines-end-to-end-samples test their components: the thin
wrapper parses its config section, calls the step and sets its outputs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from kfp.dsl import HTML, Dataset, Markdown, Metrics, Model
from PIL import Image

from moca.data.layout import list_videos
from moca.errors import ConfigError
from moca.io import read_json
from moca.steps.config import load_config

REPO = Path(__file__).resolve().parents[2]
KEYS = {"git_sha": "test-sha"}
_DEMO_TRAIN = load_config(REPO / "configs" / "pipeline_demo.yaml").train
# the run's parameters as the demo config sets them (training cut to one step, as the `demo` fixture does)
RUNTIME = {"lr": _DEMO_TRAIN.lr, "epochs": _DEMO_TRAIN.epochs, "max_steps": 1, "batch_size": _DEMO_TRAIN.batch_size,
           "eval_split": "test", "promotion_metric": "miou"}


def artifact(kind, path: Path):
    return kind(uri=str(path))


def section(config, name: str) -> str:
    return json.dumps(config.section(name))


@pytest.fixture(scope="module")
def demo(tiny_s4: Path):
    """The demo pipeline config pointed at the tiny data, training cut to one step."""
    return load_config(REPO / "configs" / "pipeline_demo.yaml", [f"data.path={tiny_s4}", "train.max_steps=1"])


@pytest.fixture(scope="module")
def ingested(demo, tmp_path_factory) -> tuple[Dataset, str]:
    from moca.components.ingest import ingest

    dataset = artifact(Dataset, tmp_path_factory.mktemp("ingest") / "dataset")
    version = ingest.python_func(config_json=section(demo, "data"), rev="", experiment="", dataset=dataset, **KEYS)
    return dataset, version


def ground_truth_predictions(data: Path, out: Path) -> Path:
    for video in list_videos(data, "s4", "test"):
        for frame in (f for f in video.frames if f.mask is not None):
            target = out / f"{frame.key}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(((np.asarray(Image.open(frame.mask).convert("L")) > 0) * 255).astype(np.uint8)).save(
                target)
    return out


def test_ingest_sets_the_data_version_output_and_metadata(ingested, tiny_s4):
    from moca.io import sha256_tree

    dataset, version = ingested
    assert version == sha256_tree(tiny_s4) == dataset.metadata["data_version"]
    assert read_json(Path(dataset.path) / "manifest.json")["info"]["data_version"] == version


def test_validate_publishes_report_page_and_verdict(demo, ingested, tmp_path):
    from moca.components.validate import validate

    dataset, version = ingested
    report, page = artifact(Dataset, tmp_path / "report"), artifact(HTML, tmp_path / "page.html")
    verdict = validate.python_func(dataset=dataset, benchmark="s4", config_json=section(demo, "validate"),
                                   experiment="", data_version=version, model_name="moca", report=report,
                                   page=page, **KEYS)
    assert verdict.passed is True and verdict.summary == "passed"
    assert "PASSED" in Path(page.path).read_text() and (Path(report.path) / "summary.txt").is_file()


def test_evaluate_logs_metrics_and_the_markdown_table(demo, ingested, tmp_path):
    from moca.components.evaluate import evaluate

    dataset, version = ingested
    predictions = ground_truth_predictions(Path(dataset.path) / "data", tmp_path / "predictions")
    evaluation, metrics = artifact(Dataset, tmp_path / "evaluation"), artifact(Metrics, tmp_path / "metrics")
    table = artifact(Markdown, tmp_path / "table.md")
    scores = evaluate.python_func(dataset=dataset, predictions=artifact(Dataset, predictions), benchmark="s4",
                                  config_json=section(demo, "evaluate"), experiment="", data_version=version,
                                  eval_split="test", evaluation=evaluation, metrics=metrics, table=table, **KEYS)
    assert scores.miou == pytest.approx(1.0) and scores.fscore == pytest.approx(1.0)
    assert metrics.metadata == {"test.miou": pytest.approx(1.0), "test.fscore": pytest.approx(1.0)}
    assert read_json(metrics.path) == metrics.metadata  # every declared output is a file (kfp.local's cache)
    assert "| mIoU | 1.0000 |" in Path(table.path).read_text()


@pytest.mark.slow  # tiny DINO, a one-step training, SAM-tiny inference and an MLflow registration: ~1-2 min
def test_the_components_chained_by_hand_train_and_register_a_model(demo, ingested, tmp_path, tmp_tracking,
                                                                    monkeypatch):  # fmt: skip
    from mlflow import MlflowClient

    from moca.components.evaluate import evaluate
    from moca.components.finish_run import finish_run
    from moca.components.infer import infer
    from moca.components.mine_pairs import mine_pairs
    from moca.components.register import register
    from moca.components.start_run import start_run
    from moca.components.stop_run import stop_run
    from moca.components.train import train
    from moca.components.validate import validate
    from moca.errors import ValidationFailed
    from moca.steps.config import STEP_SECTIONS
    from moca.steps.pod import RUN_KEY_ENV
    from moca.tracking.runs import pipeline_run_for

    dataset, version = ingested
    monkeypatch.setenv(RUN_KEY_ENV, "by-hand-run")  # what the pod label gives every task of one run
    model_config = json.dumps({name: demo.section(name) for name in STEP_SECTIONS})
    started = start_run.python_func(run_name="by-hand", experiment="moca", data_rev=version, config_json=model_config,
                                    **KEYS, **RUNTIME)  # fmt: skip
    assert started.data_version == version and started.config_hash == demo.model_config_hash()
    parent = pipeline_run_for("by-hand-run", "moca")
    assert MlflowClient().get_run(parent).info.run_name == "by-hand"
    common = {"dataset": dataset, "benchmark": "s4", "experiment": "moca", "data_version": version, **KEYS}
    report = artifact(Dataset, tmp_path / "report")
    validate.python_func(config_json=section(demo, "validate"), model_name="moca", report=report,
                         page=artifact(HTML, tmp_path / "page.html"), **common)
    pairs = artifact(Dataset, tmp_path / "pairs")
    mine_pairs.python_func(config_json=section(demo, "mining"), pairs=pairs, **common)
    model = artifact(Model, tmp_path / "model")
    loss = train.python_func(pairs=pairs, config_json=section(demo, "train"), model=model,
                             config_hash=started.config_hash, **common, **{k: RUNTIME[k] for k in
                                                                           ("lr", "epochs", "max_steps", "batch_size")})
    assert np.isfinite(loss) and model.metadata["config_hash"] == started.config_hash
    predictions = artifact(Dataset, tmp_path / "predictions")
    infer.python_func(model=model, config_json=section(demo, "infer"), predictions=predictions, eval_split="test",
                      **common)
    evaluation = artifact(Dataset, tmp_path / "evaluation")
    evaluate.python_func(predictions=predictions, config_json=section(demo, "evaluate"), evaluation=evaluation,
                         metrics=artifact(Metrics, tmp_path / "m"), table=artifact(Markdown, tmp_path / "t"),
                         eval_split="test", **common)
    promotion = artifact(Dataset, tmp_path / "promotion")
    decision = register.python_func(model=model, evaluation=evaluation, report=report,
                                    config_json=section(demo, "register"), experiment="moca",
                                    data_version=version, model_name="moca", config_hash=started.config_hash,
                                    promotion_metric="miou", promotion=promotion, **KEYS)
    assert (decision.version, decision.promoted) == ("1", True)
    steps = MlflowClient().search_runs([MlflowClient().get_run(parent).info.experiment_id],
                                       filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    assert {r.data.tags["moca.step"] for r in steps} == {"validate", "mine_pairs", "train", "infer", "evaluate",
                                                         "register"}  # fmt: skip
    assert MlflowClient().get_run(parent).info.status == "FINISHED"
    with pytest.raises(ValidationFailed, match="training not started: bad wav"):
        stop_run.python_func(reason="bad wav")
    failed = SimpleNamespace(state="FAILED", error_message="task stop-run failed")
    assert finish_run.python_func(status=failed, experiment="moca") == "FAILED"
    assert MlflowClient().get_run(parent).info.status == "FAILED"


def test_runtime_parameters_override_only_their_own_section():
    from moca.steps.pod import section_config

    baked = json.dumps({"split": "test", "protocol": "binary"})
    assert section_config("evaluate", baked, {"eval_split": "val", "lr": 0.5}).split == "val"
    assert section_config("train", json.dumps({"lr": 1e-4, "epochs": 3}), {"lr": 0.5, "epochs": 7}).epochs == 7
    with pytest.raises(ConfigError, match="evaluate.split: 'nope' is not one of"):
        section_config("evaluate", baked, {"eval_split": "nope"})


def test_the_exit_handler_ends_a_running_parent_run_as_the_kubeflow_run_ended(tmp_tracking, monkeypatch):
    from mlflow import MlflowClient

    from moca.steps.pod import RUN_KEY_ENV, finish
    from moca.tracking.runs import pipeline_run_for

    for key, state, expected in (("ok", "SUCCEEDED", "FINISHED"), ("oom", "FAILED", "FAILED"),
                                 ("stop", "CANCELLED", "KILLED")):  # fmt: skip
        monkeypatch.setenv(RUN_KEY_ENV, key)
        parent = pipeline_run_for(key, "moca", run_name=key)
        assert finish("moca", state, "pod OOMKilled") == expected
        run = MlflowClient().get_run(parent)
        assert run.info.status == expected
        assert ("moca.failure" in run.data.tags) == (expected != "FINISHED")
    monkeypatch.delenv(RUN_KEY_ENV)
    with pytest.raises(ConfigError, match="MOCA_KFP_RUN_ID is not set"):
        finish("moca", "SUCCEEDED")
