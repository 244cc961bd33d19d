"""Inference settings (method.md items 8-9): every default below is the method's chosen default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moca.config import coerce
from moca.data.audio import AudioConfig
from moca.errors import ConfigError
from moca.models import WeightsSpec

MPM_MODES = ("none", "points", "auto")
COARSE_METHODS = ("threshold", "kmeans")


@dataclass(frozen=True)
class SamConfig:
    model: str = "sam_vit_h"
    # {uri, sha256} of the checkpoint; sam_vit_h/l/b refuse to run without one unless this is "random"
    weights: WeightsSpec | str | None = None
    # SAM's own automatic-generator defaults. With random (tiny) weights no mask passes them, so tests and the
    # synthetic demo lower both explicitly; real checkpoints keep these.
    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    box_nms_thresh: float = 0.7

    def __post_init__(self) -> None:
        if isinstance(self.weights, Mapping):  # from YAML: {uri: ..., sha256: ...}
            object.__setattr__(self, "weights", coerce(WeightsSpec, self.weights, "sam.weights"))


@dataclass(frozen=True)
class InferConfig:
    mpm: str = "points"  # none: the coarse mask is the output; points: prompts at peaks of H; auto: SAM's generator
    coarse: str = "threshold"  # threshold: H >= threshold; kmeans: K clusters of patch features, kept by mean H
    threshold: float = 0.5  # on the min-max normalised audio-pixel map
    kmeans_k: int = 3
    kmeans_iters: int = 20
    num_points: int = 3  # top-N local maxima of H used as point prompts
    keep_ratio: float = 0.5  # a proposal is kept when >= this fraction of its area lies in the coarse mask
    logit: float = 10.0  # saturated logits +-logit: binary masks must not collapse the F-score threshold sweep
    all_frames: bool = False  # False: only frames with a ground-truth mask (what `moca evaluate` reads)
    device: str = "cpu"
    sam: SamConfig = field(default_factory=SamConfig)
    audio: AudioConfig | None = None  # None: the audio front end the model was trained with

    def __post_init__(self) -> None:
        if self.mpm not in MPM_MODES:
            raise ConfigError(f"infer.mpm: {self.mpm!r} is not one of {MPM_MODES}")
        if self.coarse not in COARSE_METHODS:
            raise ConfigError(f"infer.coarse: {self.coarse!r} is not one of {COARSE_METHODS}")
        for name in ("threshold", "keep_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"infer.{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("kmeans_k", "kmeans_iters", "num_points"):
            if getattr(self, name) < 1:
                raise ConfigError(f"infer.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.logit <= 0:
            raise ConfigError(f"infer.logit must be positive, got {self.logit!r}")
        if isinstance(self.sam, Mapping):
            object.__setattr__(self, "sam", coerce(SamConfig, self.sam, "infer.sam"))
        if isinstance(self.audio, Mapping):
            object.__setattr__(self, "audio", coerce(AudioConfig, self.audio, "infer.audio"))


def infer_config(value: InferConfig | Mapping[str, Any] | None) -> InferConfig:
    """An InferConfig from a config object, a mapping (YAML section, pipeline config) or None (defaults)."""
    return coerce(InferConfig, value, "infer")
