"""MPM per frame: point prompts at the peaks of the audio-pixel map vs SAM's automatic mask generator.

    python benchmarks/bench_mpm.py [--sam sam_tiny sam_vit_h] [--frames 5] [--skip-miou] [--threads 1]

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
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from harness import add_thread_option, pin_threads, print_load

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


MODES = ("points", "auto", "auto (thresholds 0)")


def time_modes(sam_name: str, frames: int, device: str, modes: tuple[str, ...] = MODES,
               warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per frame: the SAM image embedding, then proposals + matching in each of `modes`.

    `warmup` untimed frames first; the modes run in alternating order frame by frame (forward, then reversed),
    so that on a shared machine no mode always runs first."""
    every = {"points": SamConfig(model=sam_name),
             "auto": SamConfig(model=sam_name),
             "auto (thresholds 0)": SamConfig(model=sam_name, pred_iou_thresh=0.0, stability_score_thresh=0.0)}
    proposer = SamProposer(build_sam(every["points"], device), every["points"])
    times: dict[str, list[float]] = {name: [] for name in ["embedding", *modes]}
    for i in range(warmup + frames):
        rgb, patch_map = _frame(i)
        coarse = threshold_mask(upsample(patch_map[None], rgb.shape[:2])[0], 0.5)
        start = time.perf_counter()
        proposer.set_frame(rgb)  # the embedding both modes share, computed once per frame
        _sync()
        seconds = {"embedding": time.perf_counter() - start}
        for mode in modes if i % 2 == 0 else modes[::-1]:
            proposer.use_config(every[mode])
            start = time.perf_counter()
            infer_cfg = InferConfig(mpm="points" if mode == "points" else "auto", sam=every[mode])
            match_proposals(proposals_for(proposer, rgb, patch_map, infer_cfg), coarse)
            _sync()
            seconds[mode] = time.perf_counter() - start
        assert proposer.embeddings_computed == i + 1
        if i >= warmup:
            for name, value in seconds.items():
                times[name].append(value)
    return times


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
    parser.add_argument("--frames", type=int, default=5, help="timed frames per backbone (sam_vit_h: always 1)")
    parser.add_argument("--skip-miou", action="store_true")
    add_thread_option(parser)
    args = parser.parse_args()
    pin_threads(args.threads)
    print_load("before")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_grad_enabled(False)
    print(f"device {device}; one warm-up frame, then modes in alternating order; medians over frames")
    for sam_name in args.sam:
        frames = 1 if sam_name == "sam_vit_h" else args.frames
        t = time_modes(sam_name, frames, device)
        med = {name: statistics.median(values) for name, values in t.items()}
        print(f"{sam_name} ({frames} frame(s), 224x224, random weights): embedding {med['embedding']:.3f} s/frame")
        for mode in MODES:
            whole = med["embedding"] + med[mode]
            print(f"  {mode:20s} proposals+matching {med[mode]:.3f} s   whole frame {whole:.3f} s")
        for auto in MODES[1:]:
            per_frame = [a / p for a, p in zip(t[auto], t["points"])]
            print(f"  ratio {auto} / points: proposal stage {med[auto] / med['points']:.1f}x (per frame "
                  f"{min(per_frame):.1f}x-{max(per_frame):.1f}x), whole frame "
                  f"{(med['embedding'] + med[auto]) / (med['embedding'] + med['points']):.2f}x")
    if not args.skip_miou:
        print("mIoU on synthetic S4 test (12 videos, tiny random models, automatic grid 8x8):")
        with tempfile.TemporaryDirectory() as tmp:
            scores = miou_difference(Path(tmp))
        print(f"  mIoU points - auto (SAM defaults) = {scores['points'] - scores['auto (SAM defaults)']:+.4f}; "
              f"points - auto (thresholds 0) = {scores['points'] - scores['auto (thresholds 0)']:+.4f}")
    print_load("after")


if __name__ == "__main__":
    main()
