"""Pipeline test fixtures: the repository root (where pipelines/ and components/ live) and a tiny config."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_configs import REPO


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_s4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from moca.data.synth import SynthConfig, synthesize

    return synthesize(tmp_path_factory.mktemp("s4") / "data", SynthConfig(benchmark="s4", videos=12, seed=0))
