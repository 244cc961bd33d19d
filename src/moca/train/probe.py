"""What an audio-pixel map gets right, measured on synthetic data whose answer is known (the proof harness's metrics).

Every synthetic frame holds one sounding object and 1-2 silent distractors drawn in the same style, so a map can
only tell them apart by listening. From the generator's plan (`moca.data.synth.plan_videos`) each frame's objects
are re-rendered (shapes do not depend on the background), giving per patch of the 16x16 grid a region:

    0 background, 1 sounding object, 2 distractor      (the owner of at least half of the patch's pixels)

Metrics of a map H (h, w) for one frame, averaged over a video's frames, then over videos:
  auc       sounding-vs-distractor AUC: P(H at a random sounding patch > H at a random distractor patch), ties
            count 1/2 (Mann-Whitney U / (n_s n_d)); undefined for a frame without both kinds of patch
  pointing  1 when the maximum of H, bilinearly upsampled to the frame as inference does, lies on the sounding
            object's pixels (the pointing game)
  miou      IoU of the coarse mask (min-max normalised map >= 0.5, method.md item 8) with the sounding mask,
            `moca.metrics.frame_iou` (the official per-frame IoU)
Confidence intervals are percentile bootstraps over videos (the unit the benchmark averages over).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

METRICS = ("auc", "pointing", "miou")
BACKGROUND, SOUNDING, DISTRACTOR = 0, 1, 2


@dataclass(frozen=True)
class FrameTruth:
    key: str  # the frame's prediction key (moca.data.layout.FrameRef.key)
    video: str
    regions: np.ndarray  # (h, w) int8: BACKGROUND / SOUNDING / DISTRACTOR per patch
    classes: np.ndarray  # (h, w) int16: synthetic class of the patch's object, -1 on background
    mask: np.ndarray  # (H, W) bool: pixels of the sounding object(s), as the benchmark's ground truth
    sounding_class: int
    object_classes: tuple[int, ...]  # every object in the frame


def patch_regions(owner: np.ndarray, sounding: Sequence[bool], classes: Sequence[int], grid: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Owner map (H, W) (object index per pixel, -1 background) -> per-patch region and class, (grid, grid) each."""
    size = owner.shape[0]
    if owner.shape != (size, size) or size % grid:
        raise ValueError(f"owner map {owner.shape} does not split into a {grid}x{grid} grid")
    patch = size // grid
    blocks = owner.reshape(grid, patch, grid, patch).transpose(0, 2, 1, 3).reshape(grid, grid, -1)
    regions = np.full((grid, grid), BACKGROUND, np.int8)
    patch_classes = np.full((grid, grid), -1, np.int16)
    for index, (sounds, cls) in enumerate(zip(sounding, classes)):
        majority = (blocks == index).mean(-1) >= 0.5
        regions[majority] = SOUNDING if sounds else DISTRACTOR
        patch_classes[majority] = cls
    return regions, patch_classes


def frame_truths(root, synth_cfg, split: str, grid: int = 16, annotated_only: bool = True) -> list[FrameTruth]:
    """Ground truth of the frames of `split` in the order `moca.data.datasets.EvalFrames` (annotated frames) or,
    with `annotated_only=False`, `TrainFrames` (every frame) lists them.

    `synth_cfg` must be the `SynthConfig` the data under `root` was generated with (its plan is re-drawn)."""
    from moca.data.datasets import EvalFrames, TrainFrames
    from moca.data.synth import plan_videos, render_frame

    plans = {plan.name: plan for plan in plan_videos(synth_cfg)}
    blank = np.zeros((synth_cfg.image_size, synth_cfg.image_size, 3), np.uint8)
    listing = EvalFrames if annotated_only else TrainFrames
    truths = []
    for entry in listing(root, synth_cfg.benchmark, split, with_audio=False).entries:
        plan = plans[entry.video.name]
        objects = list(plan.objects)
        _, owner = render_frame(objects, blank, entry.frame.index / max(plan.frames - 1, 1))
        sounding = [o.sounding for o in objects]
        classes = [o.synth_class for o in objects]
        regions, patch_classes = patch_regions(owner, sounding, classes, grid)
        truths.append(FrameTruth(entry.frame.key, entry.video.name, regions, patch_classes,
                                 np.isin(owner, [i for i, s in enumerate(sounding) if s]),
                                 next(c for c, s in zip(classes, sounding) if s), tuple(classes)))
    return truths


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive score > a negative score) + 1/2 P(equal): Mann-Whitney U / (n_pos n_neg), NaN if either is empty."""
    positive, negative = np.asarray(positive, np.float64).ravel(), np.asarray(negative, np.float64).ravel()
    if not len(positive) or not len(negative):
        return float("nan")
    values = np.concatenate([positive, negative])
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    # average rank of each distinct value (ranks start at 1), so tied scores share their rank
    midranks = np.cumsum(counts) - (counts - 1) / 2
    rank_sum = midranks[inverse][: len(positive)].sum()
    return float((rank_sum - len(positive) * (len(positive) + 1) / 2) / (len(positive) * len(negative)))


def frame_scores(maps: torch.Tensor, truths: Sequence[FrameTruth]) -> np.ndarray:
    """Raw maps (N, h, w) -> (N, 3) auc, pointing, miou per frame (auc NaN where undefined)."""
    from moca.infer.maps import normalise_map, upsample
    from moca.metrics import frame_iou

    if len(maps) != len(truths):
        raise ValueError(f"{len(maps)} maps for {len(truths)} frames")
    size = truths[0].mask.shape
    heat = upsample(normalise_map(maps.detach().float()), size).numpy()
    raw = maps.detach().float().numpy()
    out = np.empty((len(truths), 3))
    for i, truth in enumerate(truths):
        out[i, 0] = auc(raw[i][truth.regions == SOUNDING], raw[i][truth.regions == DISTRACTOR])
        peak = np.unravel_index(np.argmax(heat[i]), heat[i].shape)
        out[i, 1] = float(truth.mask[peak])
        out[i, 2] = frame_iou((heat[i] >= 0.5)[None].astype(np.float32), truth.mask[None])[0]
    return out


def video_means(per_frame: np.ndarray, truths: Sequence[FrameTruth]) -> tuple[list[str], np.ndarray]:
    """(N, M) frame values -> video names (first-seen order) and (V, M) means over each video's frames (NaN-aware)."""
    videos = list(dict.fromkeys(t.video for t in truths))
    index = {v: i for i, v in enumerate(videos)}
    rows = np.array([index[t.video] for t in truths])
    means = np.full((len(videos), per_frame.shape[1]), np.nan)
    for i in range(len(videos)):
        block = per_frame[rows == i]
        with np.errstate(invalid="ignore"):
            valid = ~np.isnan(block)
            means[i] = np.where(valid.any(0), np.nansum(block, 0) / np.maximum(valid.sum(0), 1), np.nan)
    return videos, means


def bootstrap_ci(values: np.ndarray, samples: int = 2000, seed: int = 0, level: float = 0.95
                 ) -> tuple[float, float, float]:
    """Mean of `values` (NaNs dropped) and the percentile bootstrap interval of the mean, resampling values."""
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan"), float("nan")
    draws = np.random.default_rng(seed).integers(0, len(values), (samples, len(values)))
    means = values[draws].mean(1)
    tail = 100 * (1 - level) / 2
    return float(values.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def mismatched_audio(truths: Sequence[FrameTruth], seed: int = 0) -> np.ndarray:
    """For each frame, the index of a frame from another video whose sounding class differs (a fixed draw)."""
    rng = np.random.default_rng(seed)
    classes = np.array([t.sounding_class for t in truths])
    videos = np.array([t.video for t in truths])
    picks = []
    for i in range(len(truths)):
        candidates = np.flatnonzero((classes != classes[i]) & (videos != videos[i]))
        if not len(candidates):
            raise ValueError("mismatched audio needs frames of at least two sounding classes")
        picks.append(int(rng.choice(candidates)))
    return np.array(picks)


def class_match(dense: torch.Tensor, audio_emb: torch.Tensor, truths: Sequence[FrameTruth], classes: int) -> float:
    """Audio -> visual class match: how often a frame's audio embedding is nearest (cosine) to the visual prototype
    of its sounding class, a prototype being the mean dense feature over all patches of that class's objects
    (sounding or not) in `truths`. Chance is 1 / classes."""
    flat = dense.detach().float().flatten(1, 2)  # (N, h*w, D)
    patch_classes = torch.from_numpy(np.stack([t.classes for t in truths]).reshape(len(truths), -1))
    prototypes = torch.zeros(classes, flat.shape[-1])
    for c in range(classes):
        chosen = flat[patch_classes == c]
        if len(chosen):
            prototypes[c] = torch.nn.functional.normalize(chosen.mean(0), dim=0)
    predicted = (audio_emb.detach().float() @ prototypes.T).argmax(1).numpy()
    return float(np.mean(predicted == np.array([t.sounding_class for t in truths])))
