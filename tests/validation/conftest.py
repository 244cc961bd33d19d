"""Synthetic datasets in the AVSBench layout, generated once per session; tests damage private copies."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from moca.data.synth import SynthConfig, synthesize

VIDEOS = 6  # >= 3 so that every split gets a video; train 4, val 1, test 1


@pytest.fixture(scope="session")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("synth")
    return {b: synthesize(base / b, SynthConfig(benchmark=b, videos=VIDEOS, seed=3)) for b in ("s4", "ms3", "avss")}


@pytest.fixture
def s4_copy(datasets: dict[str, Path], tmp_path: Path) -> Path:
    """A private S4 dataset this test may damage."""
    return Path(shutil.copytree(datasets["s4"], tmp_path / "s4"))


def _write_wav(path: Path, seconds: float, rate: int = 16000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, subtype="PCM_16", format="WAV")


@pytest.fixture
def write_wav() -> Callable[..., None]:
    """`write_wav(path, seconds, rate=16000)`: a 440 Hz tone as 16-bit PCM."""
    return _write_wav
