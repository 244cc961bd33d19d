"""`moca train` end to end on synthetic data with the tiny ImageBind: outputs, manifest, errors."""

from __future__ import annotations

import json

import pytest
import torch
from train_standins import synthetic_run_inputs, tiny_config_yaml
from typer.testing import CliRunner

from moca.cli import _register_all, app
from moca.errors import ConfigError, DataError
from moca.io import sha256_file
from moca.models import MocaModel
from moca.train.run import load_train_config, run_training


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return synthetic_run_inputs(tmp_path_factory.mktemp("run"))


def test_cli_trains_and_writes_adapters_config_and_manifest(inputs, tmp_path, monkeypatch):
    root, pairs = inputs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MOCA_ARTIFACT_ROOT", str(tmp_path / "mlartifacts"))
    config = tiny_config_yaml(tmp_path / "train.yaml", root, epochs=1, tracking=True, experiment="test-train")
    _register_all()
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--pairs", str(pairs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "trained 2 steps" in result.output
    manifest = json.loads((out / "train_manifest.json").read_text())
    assert manifest["steps"] == 2 and len(manifest["losses"]) == 2
    assert manifest["outputs"]["adapters"]["sha256"] == sha256_file(out / "adapters.pt")
    assert manifest["inputs"]["pairs"]["sha256"] == sha256_file(pairs)
    saved = load_train_config(out / "config.yaml")  # the saved config is complete and loads back
    assert saved.model.adapter.positions == (2, 4) and saved.batch_size == 2
    adapters = torch.load(out / "adapters.pt", weights_only=True)
    model = MocaModel(saved.model)
    model.load_adapter_state_dict(adapters)
    assert any(v.abs().sum() > 0 for k, v in adapters.items() if k.endswith("gate"))  # gates left 0

    import mlflow

    (run,) = mlflow.search_runs(experiment_names=["test-train"], output_format="list")
    losses = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == [1, 2]
    assert [m.value for m in losses] == pytest.approx(manifest["losses"])
    assert run.data.params["config_hash"] == manifest["config_hash"] and run.info.status == "FINISHED"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"adapters.pt", "train_manifest.json", "config.yaml"} <= artifacts


def test_rerun_into_a_used_folder_needs_resume_and_a_matching_config(inputs, tmp_path):
    root, pairs = inputs
    cfg = load_train_config(tiny_config_yaml(tmp_path / "a.yaml", root, epochs=1))
    run_training(cfg, pairs, tmp_path / "out")
    with pytest.raises(ConfigError, match="pass --resume"):
        run_training(cfg, pairs, tmp_path / "out")
    cfg.lr = 0.5
    with pytest.raises(ConfigError, match="resume with the same config"):
        run_training(cfg, pairs, tmp_path / "out", resume=True)


def test_pairs_from_other_data_and_missing_inputs_are_named(inputs, tmp_path):
    import shutil

    import pandas as pd

    root, pairs = inputs
    table = pd.read_parquet(pairs)
    table.loc[0, "anchor_key"] = "no_such/video/frame_1"
    bad = tmp_path / "pairs.parquet"
    table.to_parquet(bad)
    shutil.copy(pairs.with_name("negatives.parquet"), tmp_path / "negatives.parquet")
    cfg = load_train_config(tiny_config_yaml(tmp_path / "a.yaml", root))
    with pytest.raises(DataError, match="no negatives"):
        run_training(cfg, bad, tmp_path / "out")
    table.loc[0, "anchor_key"] = pd.read_parquet(pairs).loc[0, "anchor_key"]
    table.loc[0, "positive_key"] = "no_such/video/frame_1"
    table.to_parquet(bad)
    with pytest.raises(DataError, match="not in the dataset"):
        run_training(cfg, bad, tmp_path / "out")
    with pytest.raises(DataError, match="data root not found"):
        run_training(cfg, pairs, tmp_path / "out2", data_root=tmp_path / "nowhere")
    table.drop(columns=["rank"]).to_parquet(bad)
    with pytest.raises(DataError, match="missing column"):
        run_training(cfg, bad, tmp_path / "out3")
    table.to_parquet(bad)
    (tmp_path / "negatives.parquet").unlink()
    with pytest.raises(DataError, match="negatives.parquet: not found"):
        run_training(cfg, bad, tmp_path / "out4")
