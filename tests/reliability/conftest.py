"""Shared inputs for the reliability tests: one small synthetic S4 dataset per session (12 videos, every split)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def s4_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only by convention: a test that damages data works on its own copy (shutil.copytree)."""
    from moca.data.synth import SynthConfig, synthesize

    return synthesize(tmp_path_factory.mktemp("s4") / "data", SynthConfig(benchmark="s4", videos=12, seed=0))
