from __future__ import annotations

import sys
from pathlib import Path

import pytest

from moca.data.synth import SynthConfig, synthesize

# at_doubles.py (the AT-GDINO-SAM test doubles, and the tiny SAM settings) is loaded by "module:factory" name, as a
# user's plug-in would be.
sys.path.insert(0, str(Path(__file__).parent))



@pytest.fixture(scope="session")
def s4_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("s4") / "data"
    synthesize(root, SynthConfig(benchmark="s4", videos=8, seed=0, image_size=96))
    return root
