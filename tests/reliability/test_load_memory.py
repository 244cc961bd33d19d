"""Evaluate and inference run in bounded memory: the RSS the work adds (peak minus the RSS after imports, each run in
a fresh process) does not grow with the number of videos. No timing is asserted; the full-size measurement
(10x the S4 test split) is benchmarks/bench_load.py, results in docs/benchmarks/load.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from bench_load import build_test_split, in_child, naive_mb, write_predictions, write_tiny_model  # noqa: E402


def _growth(result: dict) -> float:
    return result["peak_mb"] - result["baseline_mb"]


def test_evaluate_memory_does_not_grow_with_the_dataset(tmp_path: Path) -> None:
    small, large = 15, 60  # 75 vs 300 annotated 224x224 frames
    runs = {}
    for n in (small, large):
        data = build_test_split(tmp_path / f"data{n}", n, unique=5)
        runs[n] = in_child("evaluate", data, write_predictions(data, tmp_path / f"pred{n}"))
        assert runs[n]["frames"] == 5 * n and runs[n]["miou"] == pytest.approx(1.0)
    # Holding every frame would add naive_mb(225 frames) ~ 54 MB more at the large size; allow 24 MB of noise.
    extra = _growth(runs[large]) - _growth(runs[small])
    assert extra < 24, f"evaluate added {extra:.0f} MB more for 4x the videos: {runs}"
    assert naive_mb(5 * (large - small)) > 2 * 24  # the slack is small enough to catch an unbounded evaluate


@pytest.mark.slow  # tiny ImageBind + tiny SAM at ~1 s per frame on the shared CPUs: ~1.5 min
def test_inference_memory_does_not_grow_with_the_dataset(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "model")
    runs = {}
    for n in (2, 8):
        data = build_test_split(tmp_path / f"data{n}", n, unique=2, image_size=96)
        runs[n] = in_child("infer", data, model, tmp_path / f"out{n}", "points")
        assert runs[n]["frames"] == 5 * n
    extra = _growth(runs[8]) - _growth(runs[2])
    assert extra < 24, f"inference added {extra:.0f} MB more for 4x the videos: {runs}"
