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
each a Gaussian direction scaled to that squared norm, then L2-normalised (torch, so a GPU builds 1M in a
second). Expected cosines: same video ~0.85, same sub-cluster ~0.65, same class ~0.45, unrelated ~0.20 (each
+-0.02 from the 768-d noise). The figures are assumptions chosen to resemble DINO ViT-B/16 CLS statistics, not
fitted to real descriptors (none can be computed here: no weights); docs/benchmarks/mining.md says so next to
every recall figure.
"""

from __future__ import annotations

import numpy as np
import torch

WEIGHTS = {"common": 0.20, "class": 0.25, "subcluster": 0.20, "video": 0.20, "frame": 0.15}
FRAMES_PER_CLASS = 2000
SUBCLUSTERS = 8


def _directions(gen: torch.Generator, count: int, dim: int, weight: float) -> torch.Tensor:
    """`count` random Gaussian vectors whose squared norm is about `weight`."""
    return torch.randn(count, dim, generator=gen, device=gen.device) * (weight / dim) ** 0.5


def clustered_descriptor_tensor(
    n: int, dim: int = 768, frames_per_video: int = 5, seed: int = 0, device: str = "cpu", block: int = 65_536
) -> tuple[torch.Tensor, np.ndarray]:
    """(n, dim) float32 L2-normalised descriptors on `device` and (n,) int64 video labels (consecutive frames
    share a video). Built `block` rows at a time into one preallocated tensor (1M x 768 needs its 3 GB and little
    more); on a GPU in a second. The same seed gives the same values on one device type, not across them."""
    gen = torch.Generator(device=device).manual_seed(seed)
    videos = np.arange(n, dtype=np.int64) // frames_per_video
    n_videos = int(videos[-1]) + 1 if n else 0
    classes = max(1, n // FRAMES_PER_CLASS)
    common = _directions(gen, 1, dim, WEIGHTS["common"])
    class_centres = _directions(gen, classes, dim, WEIGHTS["class"])
    sub_centres = _directions(gen, classes * SUBCLUSTERS, dim, WEIGHTS["subcluster"])
    video_sub = torch.randint(0, classes * SUBCLUSTERS, (n_videos,), generator=gen, device=device)
    frame_video = torch.from_numpy(videos).to(device)
    out = torch.empty(n, dim, device=device)
    for start in range(0, n, block):
        rows = frame_video[start : start + block]
        sub = video_sub[rows]
        first_video = int(rows[0])
        offsets = _directions(gen, int(rows[-1]) - first_video + 1, dim, WEIGHTS["video"])
        x = common + class_centres[sub // SUBCLUSTERS] + sub_centres[sub] + offsets[rows - first_video]
        x += _directions(gen, len(rows), dim, WEIGHTS["frame"])
        out[start : start + block] = torch.nn.functional.normalize(x, dim=1)
    return out, videos


def clustered_descriptors(
    n: int, dim: int = 768, frames_per_video: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`clustered_descriptor_tensor` on the CPU, as numpy arrays."""
    descriptors, videos = clustered_descriptor_tensor(n, dim, frames_per_video, seed)
    return descriptors.numpy(), videos
