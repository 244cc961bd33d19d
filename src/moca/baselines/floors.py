"""Floors every report includes, so a number has a reference: a centre prior and all-foreground.

AVSBench objects sit near the frame centre more often than not; a centred ellipse is what a model that ignores
both the image and the audio can score.
"""

from __future__ import annotations

import math

import numpy as np


def centre_prior(size: tuple[int, int], fraction: float = 0.25) -> np.ndarray:
    """A centred ellipse (H, W) bool with the frame's aspect ratio covering `fraction` of its area.

    Semi-axes s*W/2 and s*H/2 with pi s^2 / 4 = fraction; beyond pi/4 (the inscribed ellipse) the ellipse is
    clipped by the frame, so the covered fraction grows more slowly than asked, up to the full frame at s = sqrt 2.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"centre prior fraction must be in (0, 1], got {fraction}")
    height, width = size
    scale = math.sqrt(4 * fraction / math.pi)
    y = (np.arange(height) + 0.5 - height / 2) / (scale * height / 2)
    x = (np.arange(width) + 0.5 - width / 2) / (scale * width / 2)
    return (y[:, None] ** 2 + x[None, :] ** 2) <= 1.0


def all_foreground(size: tuple[int, int]) -> np.ndarray:
    """Every pixel foreground: the recall-1 floor (its F-score is the precision of guessing everything)."""
    return np.ones(size, dtype=bool)
