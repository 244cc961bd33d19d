"""benchmarks/gpu_check.sh on a CPU with tiny shapes, inside a simulated GPU image: the packages that image lacks
cannot be imported, and the pure-Python ones come only from the folder `--pack` made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
# In the project's venv but not on a stock PyTorch GPU image (docs/benchmarks/gpu.md, "Install step").
NOT_ON_THE_IMAGE = ("soundfile", "mlflow", "great_expectations", "dvc", "boto3", "botocore", "kfp", "prefect",
                    "faiss", "moto", "minio")
PACKED = ("imagebind", "segment_anything", "iopath", "ftfy", "wcwidth")

SITECUSTOMIZE = """
import importlib.abc, importlib.machinery, sys
BLOCKED, PACKED, PACK = {blocked!r}, {packed!r}, {pack!r}

class GpuImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on the GPU image)", name=name)
        if name in PACKED:  # only from the packed folder, never from this venv
            spec = importlib.machinery.PathFinder.find_spec(name, [PACK]) if PACK else None
            if spec is None:
                raise ModuleNotFoundError(f"No module named {{name!r}} (not packed)", name=name)
            return spec
        return None

sys.meta_path.insert(0, GpuImage())
"""


def _gpu_image(tmp_path: Path, pack: Path | None) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        SITECUSTOMIZE.format(blocked=NOT_ON_THE_IMAGE, packed=PACKED, pack=str(pack) if pack else ""))
    return {**os.environ, "PYTHONPATH": str(site), "MOCA_GPU_PYTHON": sys.executable, "MOCA_NUM_THREADS": "1",
            "OUT": str(tmp_path / "out")}


def test_without_the_packed_folder_it_says_what_is_missing_and_how_to_bring_it(tmp_path):
    done = subprocess.run([str(SCRIPT), "--tiny"], env=_gpu_image(tmp_path, None), capture_output=True, text=True,
                          check=False)
    assert done.returncode != 0
    assert "imagebind" in done.stderr and "--pack" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_tiny_run_gives_every_figure_with_only_the_gpu_image_and_the_pack(tmp_path):
    pack = tmp_path / "gpu_deps"
    packed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--pack", str(pack)],
                            capture_output=True, text=True, check=False)
    assert packed.returncode == 0, packed.stderr
    assert (pack / "imagebind" / "models" / "imagebind_model.py").is_file()
    assert (pack / "segment_anything" / "build_sam.py").is_file()

    done = subprocess.run([str(SCRIPT), "--tiny"], env=_gpu_image(tmp_path, pack), capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["tiny"] and report["errors"] == {} and report["cpu_threads"] == 1
    sections = report["sections"]
    assert sections["ceiling"]["bf16_matmul_tflops"] > 0
    ib = sections["imagebind"]
    assert ib["backbone"] == "imagebind_tiny" and ib["forward_images_per_s"] > 0 and ib["train_step_tflop"] > 0
    assert ib["train_step_achieved_tflops"] == pytest.approx(ib["train_step_tflop"] / ib["train_step_s"])
    assert sections["sam"]["image_encoder_s_per_frame"] > 0 and sections["sam"]["points_mpm_s_per_frame"] > 0
    assert sections["mining"]["frames"] == 3000 and sections["mining"]["negatives_found"] == 1.0
