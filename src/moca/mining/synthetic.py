"""Clustered stand-ins for DINO CLS descriptors, for mining benchmarks and tests at 100k-1M frames.

Uniform random vectors would make nearest neighbours meaningless (in 768 dimensions every pair is about equally
far), so approximate-search recall measured on them says nothing. Real CLS descriptors of video frames are
hierarchical: frames of one video are near-duplicates, videos of one scene type are close, classes are apart,
and all share a common direction (cosines of unrelated images are positive). Each frame here is the sum of
  a common vector (shared by all)      weight^2 0.20
  its class centre                     0.25   (~2,000 frames per class)
  its sub-cluster centre in the class  0.20   (8 per class: scene/viewpoint variants)
  its video's offset                   0.20
  frame noise                          0.15
each a Gaussian direction scaled to that squared norm, then L2-normalised. Expected cosines: same video ~0.85,
same sub-cluster ~0.65, same class ~0.45, unrelated ~0.20 (each +-0.02 from the 768-d noise). The figures are
assumptions chosen to resemble DINO ViT-B/16 CLS statistics, not fitted to real descriptors (none can be
computed here: no weights); docs/benchmarks/mining.md says so next to every recall figure.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = {"common": 0.20, "class": 0.25, "subcluster": 0.20, "video": 0.20, "frame": 0.15}
FRAMES_PER_CLASS = 2000
SUBCLUSTERS = 8


def _directions(rng: np.random.Generator, count: int, dim: int, weight: float) -> np.ndarray:
    """`count` random Gaussian vectors whose squared norm is about `weight`."""
    return rng.standard_normal((count, dim), dtype=np.float32) * np.float32(np.sqrt(weight / dim))


def clustered_descriptors(
    n: int, dim: int = 768, frames_per_video: int = 5, seed: int = 0, block: int = 65_536
) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 L2-normalised descriptors and (n,) int64 video labels (consecutive frames share a video).

    Built `block` rows at a time into one preallocated array, so 1M x 768 needs its 3 GB and little more.
    """
    rng = np.random.default_rng(seed)
    videos = np.arange(n, dtype=np.int64) // frames_per_video
    n_videos = int(videos[-1]) + 1 if n else 0
    classes = max(1, n // FRAMES_PER_CLASS)
    common = _directions(rng, 1, dim, WEIGHTS["common"])
    class_centres = _directions(rng, classes, dim, WEIGHTS["class"])
    sub_centres = _directions(rng, classes * SUBCLUSTERS, dim, WEIGHTS["subcluster"])
    video_sub = rng.integers(0, classes * SUBCLUSTERS, n_videos)  # a video's class is its sub-cluster's
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        sub = video_sub[videos[rows]]
        first_video, last_video = int(videos[rows][0]), int(videos[rows][-1])
        offsets = _directions(rng, last_video - first_video + 1, dim, WEIGHTS["video"])
        x = common + class_centres[sub // SUBCLUSTERS] + sub_centres[sub] + offsets[videos[rows] - first_video]
        x += _directions(rng, x.shape[0], dim, WEIGHTS["frame"])
        out[rows] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, videos
