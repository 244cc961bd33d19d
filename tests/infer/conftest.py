"""Shared fixtures: a small synthetic S4 dataset and a tiny MoCA checkpoint laid out as `moca train` writes it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # infer_helpers.py, beside this file

from infer_helpers import write_tiny_checkpoint  # noqa: E402

from moca.data.synth import SynthConfig, synthesize  # noqa: E402


@pytest.fixture(scope="session")
def s4_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("s4") / "data"
    synthesize(root, SynthConfig(benchmark="s4", videos=8, seed=0, image_size=96))
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "train_out")
