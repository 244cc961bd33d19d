"""The files of a real tiny MoCA model, what `pyfunc.log_model` logs (it must predict its serving example)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "infer"))  # infer_helpers: the tiny checkpoint writer

from infer_helpers import write_tiny_checkpoint  # noqa: E402

TINY_BACKBONES = {"imagebind_tiny": {"uri": "random-init", "sha256": ""}}


def make_model_files(root: Path) -> tuple[Path, Path, dict[str, dict[str, str]]]:
    """adapters.pt and config.yaml of a tiny random-init MoCA model, and its backbone manifest."""
    folder = write_tiny_checkpoint(root)
    return folder / "adapters.pt", folder / "config.yaml", {k: dict(v) for k, v in TINY_BACKBONES.items()}


@pytest.fixture
def model_files():
    """`make_model_files` for tests (a fixture: conftest modules are not importable by name across areas)."""
    return make_model_files
