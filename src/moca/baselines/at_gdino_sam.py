"""AT-GDINO-SAM (method.md "Baselines"): audio tagger labels -> text-prompted detector boxes -> SAM -> union.

No audio tagger or Grounding DINO ships with moca, so this is a documented plug-in point. Configure both as
"package.module:factory" (baseline config keys `tagger` and `text_detector`); each factory returns an object
implementing the protocol below. Without them the baseline stops with a clear error instead of inventing output.

    tags = tagger.tag(waveform, sample_rate)            -> [(label, score), ...]
    keep labels with score >= tag_threshold (at most max_tags, best first)
    boxes, scores = detector.detect(rgb, labels, box_threshold=0.35, text_threshold=0.25)
    SAM mask per box (box prompts on one image embedding) -> union (empty when no tag or box survives)
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from moca.baselines.config import BaselineConfig, load_plugin
from moca.errors import ConfigError
from moca.infer.sam import SamProposer


class AudioTagger(Protocol):
    def tag(self, waveform: torch.Tensor, sample_rate: int) -> list[tuple[str, float]]:
        """Sound-event labels of a mono waveform with their scores in [0, 1]."""
        ...


class TextPromptedDetector(Protocol):
    def detect(self, rgb: np.ndarray, prompts: list[str], box_threshold: float,
               text_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (N, 4) x0 y0 x1 y1 in pixels and scores (N,) for the objects the text prompts name, already
        filtered by the detector's box and text thresholds (as Grounding DINO's `predict` does)."""
        ...


def plugins_from_config(cfg: BaselineConfig) -> tuple[AudioTagger, TextPromptedDetector]:
    missing = [key for key in ("tagger", "text_detector") if not getattr(cfg, key)]
    if missing:
        raise ConfigError(
            f"at-gdino-sam needs an audio tagger and a text-prompted detector; not configured: {', '.join(missing)}. "
            "Set baseline config keys tagger / text_detector to 'package.module:factory' (see docs/inference.md)"
        )
    return load_plugin(cfg.tagger, "baseline.tagger"), load_plugin(cfg.text_detector, "baseline.text_detector")


def select_tags(tags: list[tuple[str, float]], threshold: float, max_tags: int) -> list[str]:
    """Labels scoring at least `threshold`, best first, at most `max_tags`, each once."""
    ranked = sorted((t for t in tags if t[1] >= threshold), key=lambda t: t[1], reverse=True)
    labels: list[str] = []
    for label, _score in ranked:
        if label not in labels:
            labels.append(label)
    return labels[:max_tags]


class AtGdinoSam:
    """AT-GDINO-SAM for one frame: `predict(rgb, waveform, sample_rate) -> (H, W) bool`."""

    def __init__(self, tagger: AudioTagger, detector: TextPromptedDetector, proposer: SamProposer,
                 cfg: BaselineConfig):
        self.tagger, self.detector, self.proposer, self.cfg = tagger, detector, proposer, cfg

    def predict(self, rgb: np.ndarray, waveform: torch.Tensor, sample_rate: int) -> np.ndarray:
        empty = np.zeros(rgb.shape[:2], dtype=bool)
        labels = select_tags(self.tagger.tag(waveform, sample_rate), self.cfg.tag_threshold, self.cfg.max_tags)
        if not labels:
            return empty
        boxes, _scores = self.detector.detect(rgb, labels, self.cfg.box_threshold, self.cfg.text_threshold)
        if len(boxes) == 0:
            return empty
        self.proposer.set_frame(rgb)
        masks, _iou = self.proposer.boxes(torch.as_tensor(boxes, dtype=torch.float32))
        return masks.cpu().any(0).numpy()
