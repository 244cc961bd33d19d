"""Helpers shared by the inference tests (a uniquely named module: every test folder has a conftest)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from moca.models import MocaModel, tiny_moca_config

# Lowered from SAM's defaults (0.88 / 0.95): with random tiny SAM weights the predicted IoU and stability scores
# sit far below them, so the automatic generator would keep no mask at all and every test would only exercise
# the fallback. Real checkpoints keep the defaults.
LOW_SAM_THRESHOLDS = {"model": "sam_tiny", "points_per_side": 8, "pred_iou_thresh": 0.0,
                      "stability_score_thresh": 0.0}


def write_tiny_checkpoint(folder: Path, seed: int = 0) -> Path:
    """adapters.pt + config.yaml as `moca train` writes them, for the tiny config (adapter gates opened a little so
    the audio actually changes the features)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)  # the backbone's random init, as training seeds it
    model = MocaModel(tiny_moca_config())
    state = model.adapter_state_dict()
    generator = torch.Generator().manual_seed(seed + 1)
    state = {k: (v + 0.1 * torch.randn(v.shape, generator=generator)) if v.is_floating_point() else v
             for k, v in state.items()}
    torch.save(state, folder / "adapters.pt")
    config = {"model": {"backbone": "imagebind_tiny", "backbone_weights": None,
                        "adapter": {"positions": [2, 4], "bottleneck": 32, "heads": 4}},
              "audio": {"window": "centered"}, "seed": seed}
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder
