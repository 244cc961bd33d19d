"""Test doubles for the AT-GDINO-SAM plug-in points (a tagger and a text-prompted detector with known answers),
and the tiny SAM settings the baseline tests share."""

from __future__ import annotations

import numpy as np
import torch

CALLS: list[dict] = []

# Lowered from SAM's 0.88 / 0.95: random tiny SAM weights never reach those, and the generator would keep nothing.
TINY_SAM = {"model": "sam_tiny", "points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


class FixedTagger:
    def tag(self, waveform: torch.Tensor, sample_rate: int) -> list[tuple[str, float]]:
        return [("noise", 0.1), ("dog", 0.9), ("guitar", 0.5), ("dog", 0.4)]


class QuadrantDetector:
    """One box on the top-left quadrant per prompt, scored above both thresholds."""

    def detect(self, rgb: np.ndarray, prompts: list[str], box_threshold: float,
               text_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        CALLS.append({"prompts": list(prompts), "box": box_threshold, "text": text_threshold})
        height, width = rgb.shape[:2]
        boxes = torch.tensor([[0.0, 0.0, width / 2, height / 2]] * len(prompts))
        return boxes, torch.full((len(prompts),), 0.9)


def make_tagger() -> FixedTagger:
    return FixedTagger()


def make_detector() -> QuadrantDetector:
    return QuadrantDetector()
