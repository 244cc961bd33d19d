"""A small logged pyfunc model (real files, real MLflow) that registry tests register as many versions."""

from __future__ import annotations

from pathlib import Path

import pytest


def make_model_files(root: Path) -> tuple[Path, Path, dict[str, dict[str, str]]]:
    root.mkdir(parents=True, exist_ok=True)
    weights = root / "adapter.pt"
    weights.write_bytes(b"not really torch, but bytes are bytes")
    config = root / "config.yaml"
    config.write_text("adapter:\n  positions: [8, 16, 24, 32]\n")
    backbones = {"imagebind": {"uri": "s3://moca-weights/imagebind_huge.pth", "sha256": "ab" * 32}}
    return weights, config, backbones


@pytest.fixture
def model_files():
    """`make_model_files` for tests (a fixture: conftest modules are not importable by name across areas)."""
    return make_model_files


@pytest.fixture
def logged_model(tmp_tracking: str, tmp_path: Path) -> str:
    """The `models:/m-...` URI of a pyfunc logged in a fresh local store."""
    from moca.tracking import pyfunc, runs

    weights, config, backbones = make_model_files(tmp_path / "model-src")
    with runs.pipeline_run("fixture"):
        return pyfunc.log_model(weights, config, backbones)
