from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from moca.cli.models import register
from moca.errors import ConfigError
from moca.models import AdaAVConfig, MocaConfig, MocaModel, count_parameters
from moca.models.info import config_info, registry_info
from moca.models.moca_model import moca_parameter_counts

CONFIG = """
model:
  backbone: imagebind_tiny
  backbone_weights: {{uri: "{present}"}}
  adapter: {{positions: [2, 4], bottleneck: 32, heads: 4}}
mining:
  dino: {{backbone: dino_tiny, backbone_weights: {{uri: "{missing}"}}}}
infer:
  sam: {{backbone: sam_tiny, backbone_weights: {{uri: "s3://models/sam.pth", sha256: "{sha}"}}}}
"""


@pytest.fixture
def config_file(tmp_path):
    (tmp_path / "ib.pth").write_bytes(b"x")
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG.format(present=tmp_path / "ib.pth", missing=tmp_path / "none.pth", sha="ab" * 32))
    return path


def test_meta_counts_equal_a_real_build():
    config = MocaConfig(backbone="imagebind_tiny", adapter=AdaAVConfig(positions=(1, 3), bottleneck=16, heads=2,
                                                                       mlp=True))
    model = MocaModel(config)
    assert moca_parameter_counts(config) == (model.num_parameters(), model.num_parameters(trainable_only=True))


def test_config_rows_report_counts_and_weights_state(config_file, tmp_path):
    rows = {row.where: row for row in config_info(config_file, tmp_path / "cache")}
    assert set(rows) == {"model", "mining.dino", "infer.sam"}
    assert rows["model"].family == "moca" and 0 < rows["model"].trainable < rows["model"].total
    assert rows["model"].weights_state == "present"
    assert rows["mining.dino"].weights_state == "missing"
    assert rows["infer.sam"].weights_state == "not cached" and rows["infer.sam"].weights.sha256 == "ab" * 32
    assert rows["infer.sam"].total == rows["infer.sam"].trainable == count_parameters("sam_tiny")


def test_config_without_models_or_with_unknown_model_is_an_error(tmp_path):
    (tmp_path / "empty.yaml").write_text("train: {lr: 0.001}\n")
    with pytest.raises(ConfigError, match="no model reference"):
        config_info(tmp_path / "empty.yaml")
    (tmp_path / "typo.yaml").write_text("model: {backbone: imagebind_hgue}\n")
    with pytest.raises(ConfigError, match="unknown model 'imagebind_hgue'"):
        config_info(tmp_path / "typo.yaml")


def test_registry_rows_cover_every_model():
    rows = registry_info()
    assert len(rows) == 8 and all(row.total > 0 for row in rows)


def test_cli_prints_the_table(config_file):
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["models", "info", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert "mining.dino" in result.output and "not cached" in result.output and "abababababab" in result.output
