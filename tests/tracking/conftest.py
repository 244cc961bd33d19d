"""The files of a real tiny MoCA model, what `pyfunc.log_model` logs (it must predict its serving example)."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_BACKBONES = {"imagebind_tiny": {"uri": "random-init", "sha256": ""}}


@pytest.fixture
def model_files(tiny_model):
    """`make(root)` -> adapters.pt and config.yaml of a tiny random-init MoCA model, and its backbone manifest."""

    def make(root: Path) -> tuple[Path, Path, dict[str, dict[str, str]]]:
        folder = tiny_model(root)
        return folder / "adapters.pt", folder / "config.yaml", {k: dict(v) for k, v in TINY_BACKBONES.items()}

    return make
