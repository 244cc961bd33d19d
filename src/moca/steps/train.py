"""Train: the AdaAV adapters on the mined pairs (moca.train), into the step folder: `adapters.pt`, `config.yaml`,
`train_manifest.json` and `checkpoints/`. An interrupted attempt continues from its newest intact checkpoint when
rerun with the same settings (exact resume); other settings are refused, naming the keys that differ."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from moca.errors import ConfigError
from moca.steps.runner import Inputs, step
from moca.train.run import RUNTIME_FIELDS, TrainConfig

ADAPTERS, CONFIG = "adapters.pt", "config.yaml"


def pairs_file(inputs: Inputs) -> Path:
    """The `pairs` input: a mine_pairs step folder, or its pairs.parquet itself (negatives.parquet beside it)."""
    path = inputs.path("pairs")
    return path / "pairs.parquet" if path.is_dir() else path


def check(config: TrainConfig, inputs: Inputs) -> None:
    from moca.models.registry import usable_weights

    if config.data.benchmark != inputs.benchmark:
        raise ConfigError(f"train.data.benchmark is {config.data.benchmark!r} but the data is {inputs.benchmark!r}")
    usable_weights(config.model.backbone, config.model.backbone_weights, "train.model.backbone_weights")


# How a run executes, not what it computes: changing these neither retrains nor blocks a resume (moca.train.run).
VOLATILE = (*RUNTIME_FIELDS, "data.root")


@step("train", section="train", config=TrainConfig, produces="model", reads=("pairs",), outputs=(ADAPTERS, CONFIG),
      keep=True, volatile=VOLATILE, check=check, data_split=lambda config: config.data.split)
def run(config: TrainConfig, inputs: Inputs, folder: Path) -> dict[str, Any]:
    """Train on `inputs.data` (it replaces `train.data.root`); per-step losses go to MLflow when `train.tracking`
    is on, nested under this step's run in a tracked pipeline."""
    from moca.train.run import run_training

    data = inputs.dataset()
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, root=str(data)))
    # The runner continues only an attempt made with these very settings, so resuming is always exact here.
    result = run_training(config, pairs_file(inputs), folder, resume=True, data_root=data)
    return {"metrics": {"steps": result.steps, "final_loss": result.losses[-1] if result.losses else float("nan")},
            "info": {"adapters": ADAPTERS, "config": CONFIG, "resumed_from": result.resumed_from},
            "artifacts": ["train_manifest.json"]}  # fmt: skip
