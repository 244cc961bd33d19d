"""Retrain-flow configs for tests: the demo pipeline config, its data pushed to a local DVC remote (the flow
validates the version as fetched from the remote), a .dvc file naming it, and a webhook."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def write_retrain_config(folder: Path, data: Path, webhook_url: str = "", pointer: str = "") -> tuple[Path, str]:
    """(pipeline config, data version): `data` pushed to `folder/remote`; `retrain.dvc_file` is the local .dvc
    file, or the data pointer `pointer` (a URI) when given."""
    from moca.versioning import add_and_push

    producer = folder / "producer"
    (producer / ".dvc").mkdir(parents=True)
    # DVC takes a local remote as a path (a file:// URL would be a relative folder); the pipeline config names it
    # by URL, as pods without a DVC checkout do (moca.storage reads file:// URLs).
    (producer / ".dvc" / "config").write_text(f"[core]\n    no_scm = true\n    remote = local\n"
                                              f"['remote \"local\"']\n    url = {folder / 'remote'}\n")  # fmt: skip
    remote = (folder / "remote").as_uri()
    shutil.copytree(data, producer / "data")
    version = add_and_push(producer / "data")
    config = yaml.safe_load((REPO / "configs" / "pipeline_demo.yaml").read_text())
    train = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    config.update(data={"path": str(producer / "data"), "rev": "", "benchmark": "s4", "remote": remote}, train=train,
                  retrain={"cron": "0 3 * * *", "dvc_file": pointer or str(producer / "data.dvc"),
                           "webhook_url": webhook_url, "wait_timeout_s": 60})  # fmt: skip
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, version
