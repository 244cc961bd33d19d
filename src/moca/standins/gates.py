"""What each stand-in must carry, measured on the held-out gate set (`corpus.GATE_SEED`), never on its corpus.

- DINO: do mined positives share the anchor's *sounding* class more often than chance? A frame holds the sounding
  object and 1-2 silent distractors drawn alike, so a purely visual descriptor cannot know which object sounds:
  its ceiling is the rate reached by the best purely visual descriptor, the multi-hot set of classes in the frame
  (`visual_ceiling`). Also reported: the rate of positives holding the anchor's sounding class anywhere, sharing
  any class, and the mean Jaccard overlap of the two frames' class sets (neighbour class purity).
- SAM: mean IoU of prompted masks against instance masks.
- ImageBind: does the audio-pixel map rank the sounding object's patches above the distractors' (AUC), and does
  an audio clip retrieve an image of its own sounding class?
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FrameLabels:
    """Per frame: video id, sounding class, and multi-hot (N, C) bool of the classes present."""

    videos: np.ndarray
    sounding: np.ndarray
    present: np.ndarray

    @classmethod
    def from_frames(cls, frames: Sequence, classes: int) -> FrameLabels:
        present = np.zeros((len(frames), classes), bool)
        for i, frame in enumerate(frames):
            present[i, list(frame.classes)] = True
        return cls(np.asarray([f.video for f in frames]), np.asarray([f.sounding_class for f in frames]), present)


@dataclass(frozen=True)
class PairRates:
    shares_sounding: float  # the positive's sounding class is the anchor's
    contains_sounding: float  # the positive shows an object of the anchor's sounding class (sounding or not)
    shares_any: float  # the two frames have a class in common
    jaccard: float  # |classes(a) & classes(p)| / |classes(a) | classes(p)|

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def pair_rates(labels: FrameLabels, anchors: np.ndarray, positives: np.ndarray) -> PairRates:
    """Rates over the (anchor, positive) pairs given as two flat index arrays of equal length."""
    present = labels.present
    inter = (present[anchors] & present[positives]).sum(1)
    union = (present[anchors] | present[positives]).sum(1)
    return PairRates(
        shares_sounding=float(np.mean(labels.sounding[anchors] == labels.sounding[positives])),
        contains_sounding=float(np.mean(present[positives, labels.sounding[anchors]])),
        shares_any=float(np.mean(inter > 0)),
        jaccard=float(np.mean(inter / np.maximum(union, 1))),
    )


def chance_rates(labels: FrameLabels) -> PairRates:
    """The rates of a positive drawn uniformly from the other videos' frames: per anchor the mean over every
    other-video frame, then the mean over anchors (as each anchor contributes the same number of positives)."""
    present = labels.present.astype(np.float64)
    other = labels.videos[:, None] != labels.videos[None, :]
    weights = other / other.sum(1, keepdims=True)
    inter = present @ present.T
    union = present.sum(1)[:, None] + present.sum(1)[None, :] - inter
    same_sounding = labels.sounding[:, None] == labels.sounding[None, :]
    contains = present[:, labels.sounding].T  # [a, p]: frame p shows anchor a's sounding class
    return PairRates(
        shares_sounding=float(np.mean((weights * same_sounding).sum(1))),
        contains_sounding=float(np.mean((weights * contains).sum(1))),
        shares_any=float(np.mean((weights * (inter > 0)).sum(1))),
        jaccard=float(np.mean((weights * inter / np.maximum(union, 1)).sum(1))),
    )


def mined_pairs(descriptors: np.ndarray, videos: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(anchor, positive) flat index arrays of `moca.mining`'s kNN positives (other videos only) for `descriptors`."""
    from moca.mining.knn import mine_neighbours

    positives = mine_neighbours(descriptors, videos, k=k, negatives=0).positives
    anchors, slots = np.nonzero(positives >= 0)
    return anchors, positives[anchors, slots]


def visual_ceiling(labels: FrameLabels, k: int) -> PairRates:
    """The rates of the best purely visual descriptor: the L2-normalised multi-hot set of classes in the frame."""
    present = labels.present.astype(np.float32)
    descriptors = present / np.linalg.norm(present, axis=1, keepdims=True)
    return pair_rates(labels, *mined_pairs(descriptors, labels.videos, k))


def binary_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean masks; 1.0 when both are empty."""
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def centre_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) pixel centre of the mask pixel farthest from the mask's boundary: the prompt of SAM's single-point
    evaluation (the object's 'centre', which stays inside a ring or a crescent where the centroid would not)."""
    from scipy.ndimage import distance_transform_edt

    distance = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return x + 0.5, y + 0.5


def best_matches(proposals: np.ndarray, truths: np.ndarray) -> np.ndarray:
    """For each true mask (T, H, W), the best IoU any proposal (P, H, W) reaches (0 without proposals)."""
    if len(proposals) == 0:
        return np.zeros(len(truths))
    p = proposals.reshape(len(proposals), -1).astype(np.float64)
    t = truths.reshape(len(truths), -1).astype(np.float64)
    inter = t @ p.T
    union = t.sum(1)[:, None] + p.sum(1)[None, :] - inter
    return (inter / np.maximum(union, 1)).max(1)


def rank_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting one half (Mann-Whitney U)."""
    pos, neg = np.asarray(positives, np.float64).ravel(), np.asarray(negatives, np.float64).ravel()
    if not len(pos) or not len(neg):
        raise ValueError("rank_auc needs at least one positive and one negative score")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def patch_owners(owner: np.ndarray, grid: int) -> np.ndarray:
    """(grid, grid) owner per patch of a square (S, S) owner map: the id covering most of the patch's pixels
    (background -1 included), ties to the smaller id."""
    size = owner.shape[0]
    if size % grid or owner.shape[1] != size:
        raise ValueError(f"owner map {owner.shape} does not split into {grid}x{grid} patches")
    step = size // grid
    blocks = owner.reshape(grid, step, grid, step).transpose(0, 2, 1, 3).reshape(grid, grid, -1)
    ids = np.unique(owner)
    counts = np.stack([(blocks == i).sum(-1) for i in ids], axis=-1)
    return ids[counts.argmax(-1)]


def sounding_auc(heat: np.ndarray, patches: np.ndarray, sounding: Sequence[bool]) -> float | None:
    """AUC of the audio-pixel map `heat` (g, g) ranking the sounding objects' patches above the silent
    distractors' (`patches` from `patch_owners`); None when the frame shows no patch of one of the two."""
    sources = [i for i, s in enumerate(sounding) if s]
    silent = [i for i, s in enumerate(sounding) if not s]
    pos, neg = heat[np.isin(patches, sources)], heat[np.isin(patches, silent)]
    return rank_auc(pos, neg) if len(pos) and len(neg) else None


def retrieval_class_match(scores: np.ndarray, audio_class: np.ndarray, image_class: np.ndarray,
                          videos: np.ndarray) -> float:
    """Each audio (row of `scores`, (A, I) audio-image scores) retrieves its best image from another video: the
    fraction whose sounding class is the audio's."""
    masked = np.where(videos[:, None] == videos[None, :], -np.inf, scores)
    return float(np.mean(image_class[masked.argmax(1)] == audio_class))
