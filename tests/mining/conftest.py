"""Fixtures for mining tests: a small synthetic S4 dataset and its ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moca.data.synth import SynthConfig, synthesize


@pytest.fixture(scope="session")
def synth_s4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 videos (28 train, 140 frames): enough for pair-quality rates."""
    root = tmp_path_factory.mktemp("mining") / "s4"
    synthesize(root, SynthConfig(benchmark="s4", videos=40, seed=3))
    return root


@pytest.fixture(scope="session")
def small_s4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 videos (5 train, 25 frames): for the plumbing tests, which need frames, not statistics."""
    root = tmp_path_factory.mktemp("mining-small") / "s4"
    synthesize(root, SynthConfig(benchmark="s4", videos=8, seed=4))
    return root


@pytest.fixture(scope="session")
def sounding_class(synth_s4: Path) -> dict[str, str]:
    """Video name -> the class of its (single) sounding object, from the generator's own record."""
    described = json.loads((synth_s4 / "synth.json").read_text())
    return {video["name"]: video["sources"][0] for video in described["videos"]}
