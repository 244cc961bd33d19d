"""Pipeline configs for tests: configs/pipeline_demo.yaml pointed at test data, with overrides."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, data: Path, **overrides) -> Path:
    """configs/pipeline_demo.yaml pointed at `data`, with a one-step training and `overrides` on top."""
    config = yaml.safe_load((REPO / "configs" / "pipeline_demo.yaml").read_text())
    train = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    config.update(data={"path": str(data), "rev": "", "benchmark": "s4"}, train={**train, "max_steps": 1})
    config.update(overrides)
    path.write_text(yaml.safe_dump(config))
    return path
