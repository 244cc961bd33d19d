"""Baseline settings (method.md "Baselines"); defaults are the method's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moca.config import coerce
from moca.data.audio import AudioConfig
from moca.errors import ConfigError
from moca.infer.config import SamConfig
from moca.models import WeightsSpec


@dataclass(frozen=True)
class BaselineConfig:
    centre_fraction: float = 0.25  # area of the centre prior's ellipse, as a fraction of the frame
    # OWOD-BIND
    detector: str | None = None  # "module:factory" -> BoxSource; None: SAM automatic proposals supply the boxes
    box_confidence: float = 0.15
    image_box_ratio: float = 0.9  # a box covering at least this fraction of the frame counts as "the image"
    blur_kernel: int = 21
    logit_scale: float = 20.0  # ImageBind's audio-embedding scale before the softmax over crops
    keep_probability: float = 0.2
    imagebind: str = "imagebind_huge"
    imagebind_weights: WeightsSpec | str | None = None  # {uri, sha256}; "random": explicitly random (tests)
    # AT-GDINO-SAM plug-in points: "module:factory" returning an AudioTagger / TextPromptedDetector
    tagger: str | None = None
    text_detector: str | None = None
    tag_threshold: float = 0.3
    max_tags: int = 3
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    # shared
    sam: SamConfig = field(default_factory=SamConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    logit: float = 10.0
    all_frames: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        if isinstance(self.imagebind_weights, Mapping):
            object.__setattr__(self, "imagebind_weights",
                               coerce(WeightsSpec, self.imagebind_weights, "baseline.imagebind_weights"))
        if isinstance(self.sam, Mapping):
            object.__setattr__(self, "sam", coerce(SamConfig, self.sam, "baseline.sam"))
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise ConfigError(f"baseline.blur_kernel must be odd and positive, got {self.blur_kernel}")
        for name in ("centre_fraction", "image_box_ratio", "keep_probability", "box_confidence",
                     "box_threshold", "text_threshold", "tag_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"baseline.{name} must be in [0, 1], got {getattr(self, name)!r}")


def baseline_config(value: BaselineConfig | Mapping[str, Any] | None) -> BaselineConfig:
    return coerce(BaselineConfig, value, "baseline")


def load_plugin(spec: str, what: str) -> Any:
    """Call the factory named "package.module:function" and return what it builds (a detector, a tagger)."""
    import importlib

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what}: expected 'package.module:factory', got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what}: cannot load {spec!r} ({exc})") from exc
    return factory()
