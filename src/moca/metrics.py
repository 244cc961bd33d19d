"""The official AVSBench metrics (docs/metrics.md; definitions in shared/design/avsbench.md).

Binary (S4, MS3, AVSS binary protocol) take per-pixel foreground *scores* s in [0, 1]: sigmoid(logits) for model
outputs (`scores_from_logits`), value/255 for PNG probability maps. Per-frame arithmetic is float32, as the official
torch code runs, so thresholds and epsilons round the same way: notably `linspace(0, 1 - 1e-10, 255)` in float32
ends at exactly 1.0, and sigmoid(z) > 0.5 is false for tiny positive z whose float32 sigmoid rounds to 0.5.
Averages over frames, videos and classes are float64.

Speed: the official F-score compares every pixel with each of the 255 thresholds. Here each pixel's score is
placed once among the thresholds (its bucket, read off a small table indexed by the top bits of its float32
pattern), pixels are counted per (frame, bucket, in-G) with one bincount, and a reverse cumulative sum turns the
bucket counts into "#pixels with s >= t_j" and "#those in G" for all j at once. The IoU's counts (s > 0.5) come
from the same histogram, since t_127 is exactly 0.5. Counts are exact integers, so the result equals the
per-threshold loop (benchmarks/bench_metrics.py keeps that loop as the oracle).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

NUM_THRESHOLDS = 255
BETA2 = 0.3
IOU_EPS = 1e-7  # official mask_iou
PR_EPS = 1e-20  # official _eval_pr
SEMANTIC_EPS = 2.220446049250313e-16  # official AVSS _batch_miou_fscore (float64 machine epsilon)
NUM_AVSS_CLASSES = 71
_PIXEL_SLICE = 65_536  # pixels per bincount (a 224x224 frame is one slice)


Array = np.ndarray | torch.Tensor


def _array(x: Array, dtype: type) -> np.ndarray:
    # numpy, single-threaded: on small per-video arrays torch's bincount/searchsorted are 10-50x slower here
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x).astype(dtype, copy=False)


def _check_pair(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"{what} {a.shape} and ground truth {b.shape} must be equal (F, H, W)")


def scores_from_logits(logits: Array) -> np.ndarray:
    """sigmoid in float32 torch, as the official code applies it to model outputs."""
    return torch.sigmoid(torch.as_tensor(_array(logits, np.float32))).numpy()


@lru_cache(maxsize=4)
def thresholds(num: int = NUM_THRESHOLDS) -> np.ndarray:
    """The official thresholds, made by torch in float32: the last one is exactly 1.0 (1 - 1e-10 rounds up)."""
    values = torch.linspace(0, 1 - 1e-10, num).numpy()
    values.setflags(write=False)
    return values


@lru_cache(maxsize=4)
def _bucket_tables(num: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Tables that place a float32 score in [0, 1] among the thresholds from its bit pattern.

    Non-negative float32 values order like their bit patterns (uint32). Cell c holds the patterns whose top bits
    (pattern >> shift) are c; `shift` is chosen so no cell holds two thresholds. base[c] counts the thresholds
    <= the cell's first value, inner[c] is the pattern of the threshold inside the cell (or 2^32-1), so a score
    with pattern b in cell c has base[c] + (b >= inner[c]) thresholds <= it. One extra last cell serves -0.0
    (pattern 2^31, reached by clipping): only t_0 = 0.0 is <= it. The tables are ~160 KB, cache-resident.
    """
    edges, one = thresholds(num).view(np.uint32), int(np.float32(1).view(np.uint32))
    for shift in range(15, -1, -1):
        first = np.arange((one >> shift) + 1, dtype=np.uint64) << np.uint64(shift)  # cells up to 1.0's
        base = np.searchsorted(edges, first, side="right")
        after = np.searchsorted(edges, first + np.uint64((1 << shift) - 1), side="right")
        if (after - base <= 1).all():
            break
    inner = np.where(after > base, edges[np.minimum(base, num - 1)], np.uint32(0xFFFFFFFF)).astype(np.uint32)
    # the narrowest count type: np.take from a uint8 table is ~10x faster here than from an intp one
    counts = np.append(base, 1).astype(np.min_scalar_type(num))
    return shift, counts, np.append(inner, np.uint32(0xFFFFFFFF))


def _threshold_buckets(s: np.ndarray, num: int) -> np.ndarray:
    """For each float32 score, how many thresholds are <= it (0..num), exactly as float32 comparisons decide
    (NaN: none, as `NaN >= t` is false)."""
    if s.size and 0 <= s.min() and s.max() <= 1:  # NaN fails both
        shift, base, inner = _bucket_tables(num)
        bits = s.view(np.uint32)
        cell = bits >> shift
        count = np.take(base, cell, mode="clip")
        count += bits >= np.take(inner, cell, mode="clip")
        return count
    # scores outside [0, 1] (never from a sigmoid or a PNG map): a binary search per pixel
    return np.where(np.isnan(s), 0, np.searchsorted(thresholds(num), s, side="right"))


@dataclass(frozen=True)
class _FrameCounts:
    """Exact pixel counts of each frame of one video (F frames, T thresholds), from which both metrics follow."""

    pixels: int  # H * W
    truth: np.ndarray  # (F,) |G|
    at_or_above: np.ndarray  # (F, T) |s >= t_j|
    true_at_or_above: np.ndarray  # (F, T) |s >= t_j and G|
    predicted: np.ndarray  # (F,) |P|, P = s > 0.5
    hits: np.ndarray  # (F,) |P and G|


def _frame_counts(scores: Array, gt: Array, num_thresholds: int = NUM_THRESHOLDS) -> _FrameCounts:
    s, truth = _array(scores, np.float32), _array(gt, bool)
    _check_pair(s, truth, "scores")
    frames, buckets = s.shape[0], num_thresholds + 1
    s, truth = s.reshape(frames, -1), truth.reshape(frames, -1)
    histogram = np.zeros((frames, 2 * buckets), dtype=np.intp)  # per frame: counts per (bucket, in G)
    exactly_half = np.zeros((frames, 2), dtype=np.intp)  # per frame: pixels with s == 0.5, all and in G
    # A slice of pixels at a time (a 224x224 frame is one): the ~1 MB working set stays in the core's cache,
    # 3x faster on a busy machine than whole-video arrays. Bucket k = number of thresholds <= s, so s >= t_j
    # exactly when k > j.
    for f in range(frames):
        for start in range(0, s.shape[1], _PIXEL_SLICE):
            score, inside = s[f, start : start + _PIXEL_SLICE], truth[f, start : start + _PIXEL_SLICE]
            key = _threshold_buckets(score, num_thresholds).astype(np.intp)
            key <<= 1
            key |= inside
            histogram[f] += np.bincount(key, minlength=2 * buckets)
            at_half = score == np.float32(0.5)
            if at_half.any():
                exactly_half[f] += np.count_nonzero(at_half), np.count_nonzero(at_half & inside)
    histogram = histogram.reshape(frames, buckets, 2)
    above = histogram[:, ::-1].cumsum(1)[:, ::-1][:, 1:]  # [f, j] = sum over buckets > j, i.e. s >= t_j
    at_or_above, true_at_or_above = above.sum(2), above[:, :, 1]
    # P = s > 0.5: s >= 0.5 (0.5 is t_127 of the official 255 thresholds) less the pixels exactly at 0.5
    half = int(np.searchsorted(thresholds(num_thresholds), 0.5))
    if thresholds(num_thresholds)[half] == 0.5:
        predicted = at_or_above[:, half] - exactly_half[:, 0]
        hits = true_at_or_above[:, half] - exactly_half[:, 1]
    else:  # a threshold count without 0.5 among its thresholds (not the official 255): count P directly
        positive = s > 0.5
        predicted, hits = positive.sum(1), (positive & truth).sum(1)
    return _FrameCounts(s.shape[1], histogram[:, :, 1].sum(1), at_or_above, true_at_or_above, predicted, hits)


def _iou(c: _FrameCounts) -> np.ndarray:
    """Non-empty G: |P & G| / (|P | G| + 1e-7). Empty G: |~P & ~G| / (H*W + 1e-7), the fraction of pixels correctly
    left background (the official code puts H*W in the union and keeps the epsilon)."""
    empty = c.truth == 0
    inter = np.where(empty, c.pixels - c.predicted, c.hits).astype(np.float32)
    union = np.where(empty, c.pixels, c.predicted + c.truth - c.hits).astype(np.float32)
    return inter / (union + np.float32(IOU_EPS))


def _fscore_curves(c: _FrameCounts) -> tuple[np.ndarray, np.ndarray]:
    tp, predicted = c.true_at_or_above.astype(np.float32), c.at_or_above.astype(np.float32)
    positives = c.truth[:, None].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / (predicted + np.float32(PR_EPS))
        recall = tp / (positives + np.float32(PR_EPS))
        f = np.float32(1 + BETA2) * precision * recall / (np.float32(BETA2) * precision + recall)
    return np.nan_to_num(f, nan=0.0), c.truth > 0


def _video_fscore(c: _FrameCounts) -> float:
    curves, kept = _fscore_curves(c)
    if not kept.any():
        return 0.0
    return float(curves[kept].astype(np.float64).mean(0).max())


def frame_iou(scores: Array, gt: Array) -> np.ndarray:
    """IoU of each frame (F,) float32 from scores (F, H, W) and ground truth (F, H, W), with the empty-GT rule.

    P = s > 0.5. Non-empty G: |P & G| / (|P | G| + 1e-7). Empty G: |~P & ~G| / (H*W + 1e-7).
    """
    return _iou(_frame_counts(scores, gt))


def frame_fscore_curves(
    scores: Array, gt: Array, num_thresholds: int = NUM_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """F-beta curves (F, num_thresholds) float32 over thresholds on s, and which frames count (non-empty G) (F,).

    Prec_j = TP_j / (|s >= t_j| + 1e-20), Rec_j = TP_j / (|G| + 1e-20), F_j = 1.3 Prec Rec / (0.3 Prec + Rec),
    NaN -> 0. Curves of empty-G frames are returned too (all 0) but flagged False.
    """
    return _fscore_curves(_frame_counts(scores, gt, num_thresholds))


def video_fscore(scores: Array, gt: Array) -> float:
    """A video's F: mean curve over its non-empty frames, max over thresholds; 0 when every frame is empty."""
    return _video_fscore(_frame_counts(scores, gt))


class BinaryScorer:
    """Accumulates binary mIoU and F video by video; `summary()` gives the means over videos."""

    def __init__(self) -> None:
        self.per_video: dict[str, dict[str, float | int]] = {}

    def add(self, video: str, scores: Array, gt: Array) -> dict[str, float | int]:
        """Score one video's annotated frames: scores in [0, 1] and gt, both shaped (F, H, W)."""
        if video in self.per_video:
            raise ValueError(f"video {video!r} scored twice")
        counts = _frame_counts(scores, gt)  # one pass over the pixels serves both metrics
        result = {
            "miou": float(_iou(counts).astype(np.float64).mean()),
            "fscore": _video_fscore(counts),
            "num_frames": int(np.shape(gt)[0]),
        }
        self.per_video[video] = result
        return result

    def summary(self) -> dict[str, float | int]:
        videos = list(self.per_video.values())
        return {
            "miou": float(np.mean([v["miou"] for v in videos])) if videos else 0.0,
            "fscore": float(np.mean([v["fscore"] for v in videos])) if videos else 0.0,
            "num_videos": len(videos),
            "num_frames": sum(int(v["num_frames"]) for v in videos),
        }


def binary_miou(videos: Iterable[tuple[Array, Array]]) -> float:
    """Mean over videos of the mean frame IoU; each item is one video's (scores, gt), shaped (F, H, W)."""
    means = [float(frame_iou(s, g).astype(np.float64).mean()) for s, g in videos]
    return float(np.mean(means)) if means else 0.0


def binary_fscore(videos: Iterable[tuple[Array, Array]]) -> float:
    """Mean over videos of `video_fscore`; each item is one video's (scores, gt), shaped (F, H, W)."""
    values = [video_fscore(s, g) for s, g in videos]
    return float(np.mean(values)) if values else 0.0


# ---------------------------------------------------------------------------------------------- AVSS semantic


def frame_class_areas(
    pred: Array, gt: Array, num_classes: int = NUM_AVSS_CLASSES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame and class (F, C) int64: intersection, predicted area, label area, from class maps (F, H, W)."""
    p, g = _array(pred, np.int64), _array(gt, np.int64)
    _check_pair(p, g, "prediction")
    for name, labels in (("prediction", p), ("ground truth", g)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} holds class indices outside 0..{num_classes - 1}")
    # one pass: a confusion matrix per frame (F, label, prediction); its diagonal is the intersection
    frames, c = p.shape[0], num_classes
    cell = (np.arange(frames)[:, None, None] * c + g) * c + p
    confusion = np.bincount(cell.ravel(), minlength=frames * c * c).reshape(frames, c, c)
    return np.diagonal(confusion, axis1=1, axis2=2).copy(), confusion.sum(1), confusion.sum(2)


class SemanticScorer:
    """AVSS semantic mIoU / F over `num_classes` classes: per-class sums over every frame, means over counts.

    For each frame f and class c: IoU = I / (U + 2.2e-16), counted for c only where U > 0; F = 1.3 (I/Pa)(I/La) /
    (0.3 I/Pa + I/La), NaN -> 0. Final: per-class sum / count (0 for a class never counted), mean over classes.
    """

    def __init__(self, num_classes: int = NUM_AVSS_CLASSES) -> None:
        self.num_classes = num_classes
        self.iou_sum = np.zeros(num_classes)
        self.f_sum = np.zeros(num_classes)
        self.count = np.zeros(num_classes, dtype=np.int64)
        self.per_video: dict[str, dict[str, float | int]] = {}

    def add(self, video: str, pred: Array, gt: Array, pad_to: int = 0) -> dict[str, float | int]:
        """Add one video's class maps (F, H, W). `pad_to`: also count background-only frames up to that many,
        as the official loader pads every clip to 10 frames (black image, background label; here the padded
        frames' prediction is taken to be background too, since no prediction exists for them)."""
        if video in self.per_video:
            raise ValueError(f"video {video!r} scored twice")
        inter, pred_area, label_area = frame_class_areas(pred, gt, self.num_classes)
        padding = max(pad_to - inter.shape[0], 0)
        if padding:
            background = np.zeros((padding, self.num_classes), dtype=np.int64)
            background[:, 0] = int(np.prod(np.shape(gt)[1:]))  # every pixel: I = Pa = La
            inter, pred_area, label_area = (np.concatenate([a, background]) for a in (inter, pred_area, label_area))
        inter_f, pred_f, label_f = (a.astype(np.float32) for a in (inter, pred_area, label_area))
        union = pred_f + label_f - inter_f
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter_f / (union + np.float32(SEMANTIC_EPS))
            precision, recall = inter_f / pred_f, inter_f / label_f
            f = np.float32(1 + BETA2) * precision * recall / (np.float32(BETA2) * precision + recall)
        iou_sum, f_sum = iou.astype(np.float64).sum(0), np.nan_to_num(f, nan=0.0).astype(np.float64).sum(0)
        count = (union > 0).sum(0)
        self.iou_sum += iou_sum
        self.f_sum += f_sum
        self.count += count
        result = {**_class_means(iou_sum, f_sum, count), "num_frames": int(np.shape(gt)[0]), "padded": padding}
        self.per_video[video] = result
        return result

    def summary(self) -> dict:
        safe = np.maximum(self.count, 1)
        return {
            **_class_means(self.iou_sum, self.f_sum, self.count),
            "per_class_iou": (self.iou_sum / safe).tolist(),
            "per_class_fscore": (self.f_sum / safe).tolist(),
            "class_count": self.count.tolist(),
            "num_videos": len(self.per_video),
            "num_frames": sum(int(v["num_frames"]) for v in self.per_video.values()),
        }


def _class_means(iou_sum: np.ndarray, f_sum: np.ndarray, count: np.ndarray) -> dict[str, float]:
    """mIoU and F: mean over all classes of sum / count, where a class never counted contributes 0."""
    safe = np.maximum(count, 1)
    return {"miou": float((iou_sum / safe).mean()), "fscore": float((f_sum / safe).mean())}
