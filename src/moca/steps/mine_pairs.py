"""Mine pairs: DINO positives and negatives over one split (moca.mining): `pairs.parquet`, `negatives.parquet`
and `mining_manifest.json` in the step folder (with the descriptor cache, so a resumed attempt reuses it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moca.mining import MiningConfig
from moca.steps.runner import Inputs, step

PAIRS, NEGATIVES = "pairs.parquet", "negatives.parquet"


def check(config: MiningConfig, inputs: Inputs) -> None:
    """Refuse a released DINO without weights or hash before touching the data (moca.models.usable_weights)."""
    from moca.models.registry import usable_weights

    usable_weights(config.model, config.weights, "mining.weights")


@step("mine_pairs", section="mining", config=MiningConfig, produces="pairs", outputs=(PAIRS, NEGATIVES),
      volatile=("device", "batch_size", "chunk_size"), check=check, data_split=lambda config: config.split)
def run(config: MiningConfig, inputs: Inputs, folder: Path) -> dict[str, Any]:
    from moca.mining import mine_pairs

    manifest = mine_pairs(inputs.dataset(), inputs.benchmark, folder, config)
    counts = manifest["counts"]
    return {"metrics": {"frames": counts["frames"], "pairs": counts["pairs"], "negatives": counts["negatives"]},
            "info": counts,  # frames, videos, pairs, negatives, descriptor cache hits and misses
            "artifacts": ["mining_manifest.json"]}
