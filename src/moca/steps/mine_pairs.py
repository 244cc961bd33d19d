"""Mine pairs: DINO positives and negatives over the training split (moca.mining), into `out/pairs/`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from moca.mining import MiningConfig
from moca.steps.manifest import StepResult, require_outputs, run_step
from moca.steps.tracking import log_step, step_tracking

PAIRS = "pairs"


def mine_pairs(data: str | Path, out: str | Path, benchmark: str, data_version: str,
               config: MiningConfig | None = None, split: str = "train",
               parent_run_id: str | None = None) -> StepResult:
    from moca.mining import mine_pairs as mine

    data, out = Path(data), Path(out)
    config = config or MiningConfig()
    step_config = {"benchmark": benchmark, "split": split, "mining": asdict(config)}

    def body(folder: Path) -> dict:
        manifest = mine(data, benchmark, folder / PAIRS, config, split=split)
        counts = manifest["counts"]
        return {"metrics": {"frames": counts["frames"], "pairs": counts["pairs"], "negatives": counts["negatives"]},
                "info": {"pairs": f"{PAIRS}/pairs.parquet"},
                "artifacts": [f"{PAIRS}/manifest.json"]}  # fmt: skip

    with step_tracking("mine_pairs", parent_run_id, step_config):
        result = run_step("mine_pairs", out, {"data": data_version}, step_config, body, data_version=data_version)
        log_step(result)
    require_outputs(out / PAIRS / "pairs.parquet")
    return result
