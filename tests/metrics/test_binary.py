"""Binary mIoU and F-score (S4/MS3) on hand-computed cases, and against the official per-threshold loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moca.metrics import (
    BinaryScorer,
    binary_fscore,
    binary_miou,
    frame_fscore_curves,
    frame_iou,
    scores_from_logits,
    thresholds,
    video_fscore,
)

TOL = 1e-6


def square_mask(cells: list[tuple[int, int]], size: int = 4) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    for y, x in cells:
        mask[y, x] = True
    return mask


G = square_mask([(0, 0), (0, 1), (1, 0), (1, 1)])  # 4 of 16 pixels


def saturated(mask: np.ndarray) -> np.ndarray:
    return scores_from_logits(np.where(mask, 10.0, -10.0))


def test_thresholds_are_the_official_float32_values() -> None:
    t = thresholds()
    assert t.dtype == np.float32 and t.shape == (255,)
    assert t[0] == 0.0 and t[-1] == 1.0  # 1 - 1e-10 rounds to 1.0 in float32
    assert t[127] == 0.5


def test_perfect_prediction() -> None:
    scores = saturated(G)[None]
    assert frame_iou(scores, G[None])[0] == pytest.approx(1.0, abs=TOL)
    assert video_fscore(scores, G[None]) == pytest.approx(1.0, abs=TOL)
    # sigmoid(10) < 1.0 = last threshold: nothing is predicted there, so F is 0 at that threshold only
    curves, kept = frame_fscore_curves(scores, G[None])
    assert kept.tolist() == [True] and curves[0, -1] == 0.0 and curves[0, 1] == pytest.approx(1.0, abs=TOL)


def test_inverted_prediction() -> None:
    scores = saturated(~G)[None]
    assert frame_iou(scores, G[None])[0] == 0.0
    # only t_0 = 0 keeps every pixel: precision 4/16, recall 1 -> 1.3 * 0.25 / (0.3 * 0.25 + 1)
    assert video_fscore(scores, G[None]) == pytest.approx(1.3 * 0.25 / 1.075, abs=TOL)


def test_empty_ground_truth_scores_correct_background_fraction() -> None:
    pred = square_mask([(3, 3), (3, 2), (2, 3)])
    empty = np.zeros((4, 4), dtype=bool)
    assert frame_iou(saturated(pred)[None], empty[None])[0] == pytest.approx(13 / 16, abs=TOL)
    assert frame_iou(saturated(empty)[None], empty[None])[0] == pytest.approx(1.0, abs=TOL)


def test_empty_frames_are_skipped_by_f_and_all_empty_video_scores_zero() -> None:
    empty = np.zeros((4, 4), dtype=bool)
    scores = np.stack([saturated(~G), saturated(G)])
    gt = np.stack([empty, G])
    assert video_fscore(scores, gt) == pytest.approx(1.0, abs=TOL)  # the empty frame's curve is not averaged in
    assert video_fscore(saturated(G)[None], empty[None]) == 0.0
    all_empty = BinaryScorer().add("v", np.stack([saturated(G), saturated(empty)]), np.stack([empty, empty]))
    assert all_empty["fscore"] == 0.0
    assert all_empty["miou"] == pytest.approx((12 / 16 + 1.0) / 2, abs=TOL)


def test_logits_in_zero_one_collapse_the_sweep() -> None:
    # sigmoid(0) = 0.5 exactly, sigmoid(1) = 0.731: the 255 thresholds see only three levels
    predicted = square_mask([(0, 0), (0, 1), (3, 3), (3, 2)])  # 2 of G's 4 pixels, 2 outside
    scores = scores_from_logits(predicted.astype(np.float32))[None]
    curves, _ = frame_fscore_curves(scores, G[None])
    everything = 1.3 * 0.25 / (0.3 * 0.25 + 1)  # s >= t for every pixel: precision 4/16, recall 1
    half = 1.3 * 0.5 * 0.5 / (0.3 * 0.5 + 0.5)  # only the logit-1 pixels: precision 2/4, recall 2/4
    assert curves[0, 127] == pytest.approx(everything, abs=TOL)  # t_127 = 0.5 <= sigmoid(0)
    assert curves[0, 128] == pytest.approx(half, abs=TOL)
    # t_185 = 0.7283 <= sigmoid(1) = 0.7311 < t_186 = 0.7323: from t_186 on nothing is predicted
    assert curves[0, 185] == pytest.approx(half, abs=TOL) and curves[0, 186:].max() == 0.0
    assert video_fscore(scores, G[None]) == pytest.approx(0.5, abs=TOL)
    # mIoU: P = s > 0.5 = the logit-1 pixels; |P & G| = 2, |P | G| = 6
    assert frame_iou(scores, G[None])[0] == pytest.approx(2 / 6, abs=TOL)


def test_tiny_positive_logit_is_background_as_in_float32() -> None:
    scores = scores_from_logits(np.full((1, 4, 4), 1e-9, dtype=np.float32))
    assert frame_iou(scores, G[None])[0] == 0.0  # sigmoid(1e-9) rounds to 0.5, and P needs s > 0.5


def test_means_are_over_videos_not_frames() -> None:
    videos = [(saturated(G)[None], G[None]), (np.stack([saturated(~G)] * 3), np.stack([G] * 3))]
    assert binary_miou(videos) == pytest.approx(0.5, abs=TOL)
    assert binary_fscore(videos) == pytest.approx((1.0 + 1.3 * 0.25 / 1.075) / 2, abs=TOL)
    scorer = BinaryScorer()
    for i, (s, g) in enumerate(videos):
        scorer.add(f"v{i}", s, g)
    assert scorer.summary() == pytest.approx(
        {"miou": 0.5, "fscore": (1.0 + 1.3 * 0.25 / 1.075) / 2, "num_videos": 2, "num_frames": 4}, abs=TOL
    )
    with pytest.raises(ValueError, match="twice"):
        scorer.add("v0", *videos[0])


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="must be equal"):
        frame_iou(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))
    with pytest.raises(ValueError, match="must be equal"):
        frame_fscore_curves(np.zeros((4, 4)), np.zeros((4, 4)))


def test_matches_official_loop_on_random_videos(reference) -> None:
    for name, scores, gt in reference.synthetic_split(3, size=48, seed=3):
        # quantised scores put many pixels exactly on thresholds, where >= versus > would show
        for s in (scores, torch.round(scores * 254) / 254):
            assert video_fscore(s, gt) == pytest.approx(reference.reference_fscore(s, gt), abs=TOL), name
            ours, ref = frame_iou(s, gt), reference.reference_iou(s, gt).numpy()
            np.testing.assert_allclose(ours, ref, atol=TOL)


def _official_counts(s: np.ndarray) -> np.ndarray:
    """How many official thresholds are <= each score, straight from the definition (float32 comparisons)."""
    return (s[..., None] >= thresholds()).sum(-1)


def test_threshold_buckets_are_exact_at_and_around_every_threshold() -> None:
    from moca.metrics import _threshold_buckets

    t = thresholds()
    neighbours = np.concatenate([np.nextafter(t, np.float32(-1)), t, np.nextafter(t, np.float32(2))])
    in_range = np.concatenate([neighbours[(neighbours >= 0) & (neighbours <= 1)], np.float32([-0.0, 0.5])])
    random = np.random.default_rng(0).random(20_000, dtype=np.float32)
    for s in (in_range, random, random**8):  # the fast table path: every score in [0, 1]
        np.testing.assert_array_equal(_threshold_buckets(s.astype(np.float32), 255), _official_counts(s))
    odd = np.float32([-1.0, -1e-30, 1.0, 1.5, np.inf, -np.inf, 0.3])  # outside [0, 1]: the fallback search
    np.testing.assert_array_equal(_threshold_buckets(odd, 255), _official_counts(odd))
    with_nan = np.float32([np.nan, 0.2, 1.0])
    np.testing.assert_array_equal(_threshold_buckets(with_nan, 255), [0, _official_counts(np.float32(0.2)), 255])


@pytest.mark.parametrize("num", [2, 100, 255, 300])
def test_fscore_curves_match_the_loop_for_any_threshold_count(reference, num) -> None:
    _, scores, gt = next(reference.synthetic_split(1, size=32, seed=num))
    quantised = torch.round(scores * 100) / 100  # many pixels on or next to thresholds, some exactly 0.5
    curves, kept = frame_fscore_curves(quantised, gt, num_thresholds=num)
    t = torch.linspace(0, 1 - 1e-10, num)
    for f in np.nonzero(kept)[0]:
        y = gt[f].float()
        predicted = (quantised[f][None] >= t[:, None, None]).float()
        tp = (predicted * y).sum((1, 2))
        precision, recall = tp / (predicted.sum((1, 2)) + 1e-20), tp / (y.sum() + 1e-20)
        expected = torch.nan_to_num(1.3 * precision * recall / (0.3 * precision + recall), nan=0.0)
        np.testing.assert_allclose(curves[f], expected.numpy(), atol=TOL)


def test_scores_exactly_one_half_are_background_for_iou(reference) -> None:
    _, scores, gt = next(reference.synthetic_split(1, size=40, seed=9))
    scores = torch.where(torch.rand(scores.shape, generator=torch.Generator().manual_seed(0)) < 0.3, 0.5, scores)
    np.testing.assert_allclose(frame_iou(scores, gt), reference.reference_iou(scores, gt).numpy(), atol=TOL)
    scorer = BinaryScorer()
    result = scorer.add("v", scores, gt)
    assert result["miou"] == pytest.approx(float(reference.reference_iou(scores, gt).double().mean()), abs=TOL)
    assert result["fscore"] == pytest.approx(reference.reference_fscore(scores, gt), abs=TOL)
