"""Helpers that write AVSBench files by hand with PIL/soundfile (not by the generator), for fixtures and tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
from PIL import Image


def save_png(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


def save_wav(path: Path, seconds: float = 5.0, rate: int = 16000, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    soundfile.write(path, np.stack([tone] * channels, axis=1), rate, subtype="PCM_16")


def frame(value: int, size: tuple[int, int] = (224, 224)) -> np.ndarray:
    return np.full((*size, 3), value, np.uint8)


def square_mask(size: int = 224, on: int = 255) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[50:100, 60:120] = on
    return mask
