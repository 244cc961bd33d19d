"""Train: the AdaAV adapters on the mined pairs (moca.train), into `out/model/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moca.config import from_dict
from moca.errors import ConfigError
from moca.steps.manifest import StepResult, digest, require_outputs, run_step
from moca.steps.tracking import log_step, step_tracking

MODEL = "model"


def train(data: str | Path, pairs: str | Path, out: str | Path, benchmark: str, data_version: str,
          config: dict[str, Any], parent_run_id: str | None = None) -> StepResult:
    """`config` is a TrainConfig mapping (configs/demo.yaml); its data root is replaced by `data`."""
    from moca.train.run import TrainConfig, run_training

    data, pairs, out = Path(data), Path(pairs), Path(out)
    cfg = from_dict(TrainConfig, config, where="train")
    if cfg.data.benchmark != benchmark:
        raise ConfigError(f"train.data.benchmark is {cfg.data.benchmark!r} but the pipeline ingests {benchmark!r}")
    # Training logs per-step losses into its own run, nested under this step's run; untracked when called alone.
    cfg.tracking = parent_run_id is not None
    step_config = {k: v for k, v in config.items() if k != "data"} | {"benchmark": benchmark}

    def body(folder: Path) -> dict:
        result = run_training(cfg, pairs, folder / MODEL, data_root=data)
        return {"metrics": {"steps": result.steps, "final_loss": result.losses[-1] if result.losses else float("nan")},
                "info": {"adapters": f"{MODEL}/adapters.pt", "config": f"{MODEL}/config.yaml"},
                "artifacts": [f"{MODEL}/train_manifest.json"]}  # fmt: skip

    inputs = {"data": data_version, "pairs": digest(pairs)}
    with step_tracking("train", parent_run_id, step_config):
        result = run_step("train", out, inputs, step_config, body, data_version=data_version)
        log_step(result)
    require_outputs(out / MODEL / "adapters.pt", out / MODEL / "config.yaml")
    return result
