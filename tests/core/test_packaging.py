"""components/ and pipelines/ install as the packages moca.components and moca.pipelines (pyproject.toml maps the
folders), so `moca pipeline compile` works from any folder after a plain, non-editable install; the stand-in
weights travel as package data."""

from __future__ import annotations

import os
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_for_the_wheel():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(REPO / "src").parts) for p in (REPO / "src").rglob("__init__.py")}
    mapped = {name for name in setuptools["package-dir"] if name}
    assert set(setuptools["packages"]) == found | mapped
    assert {setuptools["package-dir"][name] for name in mapped} == {"components", "pipelines"}
    for name in mapped:  # every module of the mapped folders is importable under its package name
        folder = REPO / setuptools["package-dir"][name]
        for module in folder.glob("*.py"):
            __import__(f"{name}.{module.stem}" if module.stem != "__init__" else name)


@pytest.mark.slow  # builds a wheel and installs it into a scratch environment: ~30-60 s
def test_a_plain_install_compiles_the_pipeline_from_any_folder(image_install, tmp_path):
    names = set(zipfile.ZipFile(image_install.wheel).namelist())
    assert {"moca/components/train.py", "moca/pipelines/training_pipeline.py", "moca/pipelines/retrain_flow.py",
            "moca/pipelines/prefect.yaml", "moca/steps/runner.py", "moca/standins/weights/standins.json",
            "moca/standins/weights/dino_tiny_standin.pt", "moca/standins/weights/sam_tiny_standin.pt",
            "moca/standins/weights/imagebind_tiny_standin.pt"} <= names
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    located = subprocess.run([str(image_install.bin / "python"), "-c",
                              "import moca.pipelines; print(moca.pipelines.__file__)"],
                             cwd=elsewhere, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert Path(located.stdout.strip()).is_relative_to(image_install.site)
    result = subprocess.run([str(image_install.bin / "moca"), "pipeline", "compile", "--config",
                             str(REPO / "configs" / "pipeline_demo.yaml"), "--out", "pipeline.yaml"],
                            cwd=elsewhere, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    compiled = next(yaml.safe_load_all((elsewhere / "pipeline.yaml").read_text()))
    assert compiled["pipelineInfo"]["name"] == "moca-demo"
    # the stand-in weights are package data: the installed copy lists them, each matching its sha256
    listed = subprocess.run([str(image_install.bin / "moca"), "standins", "list"], cwd=elsewhere, env=env,
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stdout + listed.stderr[-3000:]
    assert str(image_install.site) in listed.stdout and listed.stdout.count("  ok") == 3
