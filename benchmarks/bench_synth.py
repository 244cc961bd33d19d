"""Synthetic data: generation speed, and how hard the scenes are (floors every report should beat).

1. Time `synthesize` for 100 S4 videos against a naive reference: the same generator with PIL's default PNG
   compression (level 6). Prints the ratio.
2. Score trivial predictors on the S4 test split with the official metrics (`moca.metrics`):
   - centre prior: a centred ellipse over 25 % of the frame;  all-foreground: every pixel;
   - look-only oracles, which see every object perfectly but cannot hear: "all objects" (union of every object)
     and "one random object" (a perfect mask of one object picked at random, averaged over 20 draws);
   - the listening oracle (the ground truth) scores 1 by construction.
3. Visual retrieval with a crude stand-in for DINO (histogram of the saturated colours of a frame): how often a
   frame's nearest neighbour (another video) has the same sounding class / shows that class at all, vs chance.
Usage: python benchmarks/bench_synth.py [--videos 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from harness import add_thread_option, pin_threads

from moca.data.layout import list_videos
from moca.data.readers import read_image, read_mask
from moca.data.synth import SynthConfig, plan_videos, render_frame, synthesize
from moca.metrics import binary_fscore, binary_miou

SATURATED = 10.0  # binary predictions are fed as saturated logits (avsbench.md)


def _timed(out: Path, cfg: SynthConfig) -> float:
    start = time.perf_counter()
    synthesize(out, cfg)
    return time.perf_counter() - start


def _centre_prior(size: int) -> np.ndarray:
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size - 0.5
    radius2 = 0.25 / np.pi  # ellipse (circle here) of area 0.25
    return (xx**2 + yy**2) <= radius2


def floors(root: Path, cfg: SynthConfig, split: str = "test", draws: int = 20) -> dict[str, tuple[float, float]]:
    plans = {p.name: p for p in plan_videos(cfg)}
    videos = list_videos(root, "s4", split)
    size = cfg.image_size
    background = np.zeros((size, size, 3), np.uint8)
    gts, owners = [], []
    for video in videos:
        plan = plans[video.name]
        gts.append(np.stack([read_mask(f.mask, "s4") for f in video.frames]))
        frames = [render_frame(list(plan.objects), background, f.index / (plan.frames - 1)) for f in video.frames]
        owners.append(np.stack([owner for _, owner in frames]))

    def score(predict) -> tuple[float, float]:
        pairs = [(np.where(predict(i), SATURATED, -SATURATED), gt) for i, gt in enumerate(gts)]
        scores = [(1 / (1 + np.exp(-logits)), gt) for logits, gt in pairs]
        return binary_miou(scores), binary_fscore(scores)

    centre = _centre_prior(size)
    results = {
        "centre prior": score(lambda i: np.broadcast_to(centre, gts[i].shape)),
        "all foreground": score(lambda i: np.ones_like(gts[i], dtype=bool)),
        "look-only: all objects": score(lambda i: owners[i] >= 0),
    }
    rng = np.random.default_rng(0)
    random_runs = []
    for _ in range(draws):
        picks = [rng.integers(len(plans[v.name].objects)) for v in videos]
        random_runs.append(score(lambda i, picks=picks: owners[i] == picks[i]))
    results["look-only: one random object"] = tuple(np.mean(random_runs, axis=0))  # type: ignore[assignment]
    results["ground truth (listening oracle)"] = score(lambda i: gts[i] > 0)
    return results


def _colour_descriptor(rgb: np.ndarray) -> np.ndarray:
    """sqrt of an 8x8x8 histogram of saturated pixels (objects are saturated, backgrounds muted), L2-normalised."""
    rgb = rgb.astype(np.int64)
    saturated = rgb.max(-1) - rgb.min(-1) > 90
    codes = (rgb // 32) @ np.array([64, 8, 1])
    hist = np.sqrt(np.bincount(codes[saturated], minlength=512).astype(np.float64))
    return hist / (np.linalg.norm(hist) + 1e-12)


def visual_retrieval(root: Path) -> dict[str, tuple[float, float]]:
    """(nearest-neighbour rate, chance rate) for 'same sounding class' and 'neighbour shows the class'."""
    manifest = {v["name"]: v for v in json.loads((root / "synth.json").read_text())["videos"]}
    videos = list_videos(root, "s4")
    features = np.stack([_colour_descriptor(read_image(v.frames[2].image)) for v in videos])
    similarity = features @ features.T
    np.fill_diagonal(similarity, -np.inf)
    source = [v.category for v in videos]
    shown = [set(manifest[v.name]["sources"] + manifest[v.name]["distractors"]) for v in videos]
    n = len(videos)
    same = np.array([[source[i] == source[j] for j in range(n)] for i in range(n)])
    shows = np.array([[source[i] in shown[j] for j in range(n)] for i in range(n)])
    off_diagonal = ~np.eye(n, dtype=bool)
    nearest = similarity.argmax(1)
    return {
        name: (float(table[np.arange(n), nearest].mean()), float(table[off_diagonal].mean()))
        for name, table in [("same sounding class", same), ("neighbour shows the sounding class", shows)]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    add_thread_option(parser)
    args = parser.parse_args()
    pin_threads(args.threads)
    cfg = SynthConfig(benchmark="s4", videos=args.videos, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        fast = _timed(Path(folder) / "fast", cfg)
        naive = _timed(Path(folder) / "naive", replace(cfg, png_compress_level=6))
        print(f"synthesize {args.videos} S4 videos: {fast:.2f} s (naive reference, PNG level 6: {naive:.2f} s, "
              f"ratio {naive / fast:.2f}x)")
        test_videos = len(list_videos(Path(folder) / "fast", "s4", "test"))
        print(f"floors on the S4 test split ({test_videos} videos x 5 frames), official metrics:")
        print(f"  {'predictor':34s} {'mIoU':>7s} {'F':>7s}")
        for name, (miou, fscore) in floors(Path(folder) / "fast", cfg).items():
            print(f"  {name:34s} {miou:7.4f} {fscore:7.4f}")
        print("visual retrieval, nearest neighbour by colour histogram (frame 3 of every video):")
        for name, (rate, chance) in visual_retrieval(Path(folder) / "fast").items():
            print(f"  {name:34s} {rate:.3f} (chance {chance:.3f})")


if __name__ == "__main__":
    main()
