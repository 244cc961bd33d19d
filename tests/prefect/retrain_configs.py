"""Retrain-flow configs for tests: the demo pipeline config pointed at test data, a .dvc file and a webhook."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
VERSION = "0123456789abcdef0123456789abcdef.dir"


def write_retrain_config(folder: Path, data: Path, webhook_url: str = "") -> Path:
    dvc_file = folder / "data.dvc"
    dvc_file.write_text(yaml.safe_dump({"outs": [{"md5": VERSION, "path": "data"}]}))
    config = yaml.safe_load((REPO / "configs" / "pipeline_demo.yaml").read_text())
    train = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    config.update(data={"path": str(data), "rev": "", "benchmark": "s4"}, train=train,
                  retrain={"cron": "0 3 * * *", "dvc_file": str(dvc_file), "webhook_url": webhook_url,
                           "wait_timeout_s": 60})  # fmt: skip
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
