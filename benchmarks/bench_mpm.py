"""MPM per frame: point prompts at the peaks of the audio-pixel map vs SAM's automatic mask generator.

    python benchmarks/bench_mpm.py [--sam sam_tiny sam_vit_h] [--frames 5] [--skip-miou]

Random weights, CPU unless CUDA is present. For each SAM backbone, per frame: the image embedding (shared by both
modes, computed once), then proposals + matching in each mode; prints seconds and the ratio automatic / points,
for the proposal stage and for the whole frame (embedding included). `sam_vit_h` runs one frame (minutes on CPU).
Then runs `moca infer` on synthetic S4 data with the tiny models in both modes and prints the mIoU difference.
Automatic mode runs with SAM's defaults (32x32 grid, thresholds 0.88 / 0.95: the real-checkpoint setting); with
random weights those thresholds keep no proposal, so it is also timed with both at 0, the slowest case (every
proposal survives to NMS and RLE encoding).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from moca.data.synth import SynthConfig, synthesize
from moca.infer.config import InferConfig, SamConfig
from moca.infer.maps import threshold_mask, upsample
from moca.infer.mpm import match_proposals
from moca.infer.predict import proposals_for
from moca.infer.sam import SamProposer, build_sam


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _frame(seed: int) -> tuple[np.ndarray, torch.Tensor]:
    """A 224x224 synthetic-looking frame and a 16x16 map with two bumps (so point mode has two peaks)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    bump = lambda y, x: torch.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 6)  # noqa: E731
    patch_map = bump(*rng.uniform(3, 12, 2)) + 0.7 * bump(*rng.uniform(3, 12, 2))
    return rgb, patch_map / patch_map.max()


def time_modes(sam_name: str, frames: int, device: str) -> dict[str, float]:
    configs = {"points": SamConfig(model=sam_name),
               "auto": SamConfig(model=sam_name),
               "auto (thresholds 0)": SamConfig(model=sam_name, pred_iou_thresh=0.0, stability_score_thresh=0.0)}
    proposer = SamProposer(build_sam(configs["points"], device), configs["points"])
    totals = dict.fromkeys(["embedding", *configs], 0.0)
    for i in range(frames):
        rgb, patch_map = _frame(i)
        coarse = threshold_mask(upsample(patch_map[None], rgb.shape[:2])[0], 0.5)
        start = time.perf_counter()
        proposer.set_frame(rgb)  # the embedding both modes share, computed once per frame
        _sync()
        totals["embedding"] += time.perf_counter() - start
        for mode, sam_cfg in configs.items():
            proposer.use_config(sam_cfg)
            start = time.perf_counter()
            infer_cfg = InferConfig(mpm="points" if mode == "points" else "auto", sam=sam_cfg)
            match_proposals(proposals_for(proposer, rgb, patch_map, infer_cfg), coarse)
            _sync()
            totals[mode] += time.perf_counter() - start
        assert proposer.embeddings_computed == i + 1
    return {k: v / frames for k, v in totals.items()}


def miou_difference(work: Path) -> dict[str, float]:
    """mIoU of `moca infer` with point prompts vs the automatic generator on synthetic S4 (tiny random models)."""
    from moca.evaluate import evaluate_predictions
    from moca.infer import run_inference
    from moca.models import MocaModel, tiny_moca_config

    root = work / "data"
    synthesize(root, SynthConfig(benchmark="s4", videos=12, seed=0))
    model_dir = work / "model"
    model_dir.mkdir()
    torch.manual_seed(0)
    torch.save(MocaModel(tiny_moca_config()).adapter_state_dict(), model_dir / "adapters.pt")
    (model_dir / "config.yaml").write_text(
        "model: {backbone: imagebind_tiny, adapter: {positions: [2, 4], bottleneck: 32, heads: 4}}\nseed: 0\n")
    # An 8x8 automatic grid (not 32x32): with every proposal surviving, SAM's post-processing of the full grid
    # costs minutes per frame on a shared CPU; the speed comparison above uses the full default grid.
    grid = SamConfig(model="sam_tiny", points_per_side=8)
    base = InferConfig(sam=grid)
    runs = {"points": base, "auto (SAM defaults)": replace(base, mpm="auto"),
            "auto (thresholds 0)": replace(base, mpm="auto", sam=replace(grid, pred_iou_thresh=0.0,
                                                                           stability_score_thresh=0.0))}
    scores = {}
    for name, cfg in runs.items():
        out = work / name.replace(" ", "_")
        manifest = run_inference(model_dir, root, "s4", "test", out, cfg)
        scores[name] = evaluate_predictions(out, root, "s4", "test")["miou"]
        print(f"  {name:22s} mIoU {scores[name]:.4f}  fallbacks {manifest['counts']['fallbacks']}"
              f"/{manifest['counts']['predicted']}  ({manifest['seconds']:.1f} s)")
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam", nargs="*", default=["sam_tiny", "sam_vit_h"], help="none: only the mIoU part")
    parser.add_argument("--frames", type=int, default=5, help="frames per backbone (sam_vit_h: always 1)")
    parser.add_argument("--skip-miou", action="store_true")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_grad_enabled(False)
    print(f"device {device}, torch threads {torch.get_num_threads()} (shared machine: numbers are noisy)")
    for sam_name in args.sam:
        frames = 1 if sam_name == "sam_vit_h" else args.frames
        t = time_modes(sam_name, frames, device)
        print(f"{sam_name} ({frames} frame(s), 224x224, random weights): embedding {t['embedding']:.3f} s/frame")
        for mode in ("points", "auto", "auto (thresholds 0)"):
            print(f"  {mode:20s} proposals+matching {t[mode]:.3f} s   whole frame {t['embedding'] + t[mode]:.3f} s")
        for auto in ("auto", "auto (thresholds 0)"):
            print(f"  ratio {auto} / points: proposal stage {t[auto] / t['points']:.1f}x, whole frame "
                  f"{(t['embedding'] + t[auto]) / (t['embedding'] + t['points']):.2f}x")
    if not args.skip_miou:
        print("mIoU on synthetic S4 test (12 videos, tiny random models, automatic grid 8x8):")
        with tempfile.TemporaryDirectory() as tmp:
            scores = miou_difference(Path(tmp))
        print(f"  mIoU points - auto (SAM defaults) = {scores['points'] - scores['auto (SAM defaults)']:+.4f}; "
              f"points - auto (thresholds 0) = {scores['points'] - scores['auto (thresholds 0)']:+.4f}")


if __name__ == "__main__":
    main()
