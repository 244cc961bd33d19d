"""Pipeline test fixtures: tiny synthetic S4 data (12 videos: every split has annotated videos)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_s4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from moca.data.synth import SynthConfig, synthesize

    return synthesize(tmp_path_factory.mktemp("s4") / "data", SynthConfig(benchmark="s4", videos=12, seed=0))
