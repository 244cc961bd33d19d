"""Tiny synthetic S4 data for the step tests (12 videos: every split has annotated videos)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def s4_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from moca.data.synth import SynthConfig, synthesize

    return synthesize(tmp_path_factory.mktemp("s4") / "data", SynthConfig(benchmark="s4", videos=12, seed=0))
