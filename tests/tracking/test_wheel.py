"""The project's wheel a logged model names (moca.tracking.wheel): built from a checkout, or packed again from an
installed wheel, as in the images, byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from moca.tracking import wheel

REPO = Path(__file__).resolve().parents[2]


def _files(path: Path) -> dict[str, bytes]:
    """A wheel's files and their bytes, RECORD aside (its hashes cover the rest; its line order is free)."""
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist() if not n.endswith(".dist-info/RECORD")}


def test_from_a_checkout_the_wheel_is_built_without_touching_it(tmp_path: Path) -> None:
    assert wheel.source_root() == REPO
    before = sorted(p.name for p in REPO.iterdir())
    built = wheel.build_from_source(REPO, tmp_path)
    assert built.name.startswith("moca-") and built.name.endswith("-py3-none-any.whl")
    assert {"moca/tracking/wheel.py", "moca/components/register.py", "moca/pipelines/prefect.yaml"} <= set(
        _files(built))
    assert sorted(p.name for p in REPO.iterdir()) == before  # no build/ or *.egg-info left in the checkout


@pytest.mark.slow  # builds a wheel, installs it into a scratch environment and packs it again there: ~30-60 s
def test_an_installed_wheel_is_packed_again_byte_for_byte(tmp_path: Path, scratch_venv) -> None:
    built = wheel.build_from_source(REPO, tmp_path / "dist")
    scratch = tmp_path / "venv"
    scratch_venv(built, scratch)
    python = scratch / "bin" / "python"
    repacked = tmp_path / "repacked"
    repacked.mkdir()
    script = ("import shutil, sys; from moca.tracking import wheel; assert wheel.source_root() is None; "
              "shutil.copy(wheel.project_wheel(), sys.argv[1])")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(python), "-c", script, str(repacked)], cwd=tmp_path, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (again,) = repacked.glob("*.whl")
    assert again.name == built.name and _files(again) == _files(built)
    # ... and pip takes it: its RECORD matches its files.
    target = tmp_path / "installed-again"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(again)],
                   check=True, capture_output=True)
    assert (target / "moca/tracking/wheel.py").read_bytes() == (REPO / "src/moca/tracking/wheel.py").read_bytes()
