from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from moca.standins.registry import WEIGHTS_DIR, get_standin


@pytest.fixture
def tampered_weights(tmp_path) -> Path:
    """A copy of the shipped weights folder with one byte of the DINO stand-in flipped."""
    folder = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, folder)
    path = get_standin("dino_tiny_standin", folder).path(folder)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    return folder
