"""Each Kubeflow component's own Python function (`component.python_func`), called directly on tiny synthetic data
with real KFP artifact objects, as Google's vertex-pipelines-end-to-end-samples test their components: the thin
wrapper parses its config section, calls the step and sets its outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kfp.dsl import HTML, Dataset, Markdown, Metrics, Model
from PIL import Image

from moca.data.layout import list_videos
from moca.io import read_json
from moca.steps.config import load_config

REPO = Path(__file__).resolve().parents[2]
KEYS = {"git_sha": "test-sha", "config_hash": "test-config"}


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
    version = ingest.python_func(config_json=section(demo, "data"), rev="", parent_run_id="", dataset=dataset,
                                 **KEYS)
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
                                   parent_run_id="", data_version=version, model_name="moca", report=report,
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
                                  config_json=section(demo, "evaluate"), parent_run_id="", data_version=version,
                                  evaluation=evaluation, metrics=metrics, table=table, **KEYS)
    assert scores.miou == pytest.approx(1.0) and scores.fscore == pytest.approx(1.0)
    assert metrics.metadata == {"test.miou": pytest.approx(1.0), "test.fscore": pytest.approx(1.0)}
    assert "| mIoU | 1.0000 |" in Path(table.path).read_text()


@pytest.mark.slow  # tiny DINO, a one-step training, SAM-tiny inference and an MLflow registration: ~1-2 min
def test_the_components_chained_by_hand_train_and_register_a_model(demo, ingested, tmp_path, tmp_tracking):
    from mlflow import MlflowClient

    from moca.components.evaluate import evaluate
    from moca.components.infer import infer
    from moca.components.mine_pairs import mine_pairs
    from moca.components.register import register
    from moca.components.start_run import start_run
    from moca.components.stop_run import stop_run
    from moca.components.train import train
    from moca.components.validate import validate
    from moca.errors import ValidationFailed

    dataset, version = ingested
    parent = start_run.python_func(run_name="by-hand", experiment="moca", config_json="{}", **KEYS)
    common = {"dataset": dataset, "benchmark": "s4", "parent_run_id": parent, "data_version": version, **KEYS}
    report = artifact(Dataset, tmp_path / "report")
    validate.python_func(config_json=section(demo, "validate"), model_name="moca", report=report,
                         page=artifact(HTML, tmp_path / "page.html"), **common)
    pairs = artifact(Dataset, tmp_path / "pairs")
    mine_pairs.python_func(config_json=section(demo, "mining"), pairs=pairs, **common)
    model = artifact(Model, tmp_path / "model")
    loss = train.python_func(pairs=pairs, config_json=section(demo, "train"), model=model, **common)
    assert np.isfinite(loss) and model.metadata["config_hash"] == "test-config"
    predictions = artifact(Dataset, tmp_path / "predictions")
    infer.python_func(model=model, config_json=section(demo, "infer"), predictions=predictions, **common)
    evaluation = artifact(Dataset, tmp_path / "evaluation")
    evaluate.python_func(predictions=predictions, config_json=section(demo, "evaluate"), evaluation=evaluation,
                         metrics=artifact(Metrics, tmp_path / "m"), table=artifact(Markdown, tmp_path / "t"),
                         **common)
    promotion = artifact(Dataset, tmp_path / "promotion")
    decision = register.python_func(model=model, evaluation=evaluation, report=report,
                                    config_json=section(demo, "register"), parent_run_id=parent,
                                    data_version=version, model_name="moca", promotion=promotion, **KEYS)
    assert (decision.version, decision.promoted) == ("1", True)
    assert MlflowClient().get_run(parent).info.status == "FINISHED"
    with pytest.raises(ValidationFailed, match="training not started: bad wav"):
        stop_run.python_func(parent_run_id=parent, reason="bad wav")
    assert MlflowClient().get_run(parent).info.status == "FAILED"
