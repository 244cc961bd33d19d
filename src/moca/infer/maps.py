"""Audio-pixel maps and coarse masks (method.md item 8).

H(p) = <f^p, e_a> on the h x w patch grid, min-max normalised to [0, 1] per frame, then bilinear to the frame
size. The coarse mask is H >= threshold, or (k-means option) the union of the K clusters of patch features whose
mean H passes the threshold: clusters follow object boundaries in feature space where a plain threshold cuts
through an object whose response is uneven.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalise_map(raw: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each (h, w) map of a (B, h, w) batch to [0, 1]; a constant map becomes all zeros."""
    flat = raw.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    span = (high - low).clamp_min(torch.finfo(raw.dtype).tiny)  # constant map: nothing stands out, all zeros
    return ((flat - low[:, None]) / span[:, None]).view_as(raw)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) -> (B, H, W), bilinear (align_corners=False, as the frame resize used for the model input)."""
    return F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def threshold_mask(heatmap: torch.Tensor, threshold: float) -> torch.Tensor:
    """Coarse mask of an upsampled, normalised heatmap (H, W) -> bool (H, W)."""
    return heatmap >= threshold


def kmeans(points: torch.Tensor, k: int, iters: int) -> torch.Tensor:
    """Cluster labels (N,) of points (N, D) by Lloyd's k-means with deterministic farthest-point seeding.

    Farthest-point seeding (start at the point farthest from the mean) makes the result a function of the input
    only: inference must be reproducible without a random seed.
    """
    k = min(k, len(points))
    centre = points.mean(0, keepdim=True)
    seeds = [int(torch.cdist(points, centre)[:, 0].argmax())]
    for _ in range(1, k):
        nearest = torch.cdist(points, points[seeds]).min(1).values
        seeds.append(int(nearest.argmax()))
    centres = points[seeds].clone()
    labels = torch.zeros(len(points), dtype=torch.long)
    for step in range(iters):
        new_labels = torch.cdist(points, centres).argmin(1)
        if step > 0 and torch.equal(new_labels, labels):
            break
        labels = new_labels
        for c in range(k):
            members = points[labels == c]
            if len(members):  # an emptied cluster keeps its centre
                centres[c] = members.mean(0)
    return labels


def kmeans_mask(features: torch.Tensor, patch_map: torch.Tensor, size: tuple[int, int], threshold: float,
                k: int = 3, iters: int = 20) -> torch.Tensor:
    """Coarse mask from k-means on patch features (h, w, D) and the normalised patch map (h, w) -> bool (H, W).

    A cluster is kept when its mean H >= threshold; when none passes, the cluster with the highest mean H is kept
    (the frame always has a most audio-like region, and an empty coarse mask would leave MPM nothing to match).
    """
    h, w = patch_map.shape
    labels = kmeans(features.reshape(h * w, -1).float(), k, iters)
    scores = patch_map.reshape(-1)
    means = torch.stack([scores[labels == c].mean() if (labels == c).any() else scores.new_tensor(-1.0)
                         for c in range(int(labels.max()) + 1)])
    keep = means >= threshold
    if not keep.any():
        keep[means.argmax()] = True
    patch_mask = keep[labels].view(1, h, w).float()
    return upsample(patch_mask, size)[0] >= 0.5


def peak_points(patch_map: torch.Tensor, num: int, threshold: float) -> torch.Tensor:
    """Top-`num` local maxima of a normalised patch map (h, w) with H >= threshold, as patch (row, col) indices
    (M, 2), strongest first; at least the global maximum. Local maxima are 3x3 max-pool fixed points, so two
    prompts never land on neighbouring patches of one bump."""
    pooled = F.max_pool2d(patch_map[None, None], 3, stride=1, padding=1)[0, 0]
    is_peak = (patch_map == pooled) & (patch_map >= threshold)
    rows, cols = torch.nonzero(is_peak, as_tuple=True)
    if len(rows) == 0:
        flat = int(patch_map.argmax())
        return torch.tensor([[flat // patch_map.shape[1], flat % patch_map.shape[1]]])
    order = patch_map[rows, cols].argsort(descending=True)[:num]
    return torch.stack([rows[order], cols[order]], dim=1)


def patch_to_pixel(points: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Patch (row, col) indices -> pixel (x, y) of the patch centres in a frame of `size` (H, W), SAM's order."""
    (h, w), (height, width) = grid, size
    y = (points[:, 0].float() + 0.5) * height / h
    x = (points[:, 1].float() + 0.5) * width / w
    return torch.stack([x, y], dim=1)
