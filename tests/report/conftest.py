from __future__ import annotations

from pathlib import Path

import pytest

from moca.data.synth import SynthConfig, synthesize


@pytest.fixture(scope="session")
def s4_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("s4") / "data"
    synthesize(root, SynthConfig(benchmark="s4", videos=12, seed=1, image_size=64))
    return root
