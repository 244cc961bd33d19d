"""The proof harness's map metrics on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moca.train import probe
from moca.train.probe import BACKGROUND, DISTRACTOR, SOUNDING, FrameTruth


def test_auc_counts_pairs_and_half_ties():
    assert probe.auc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert probe.auc([1.0], [2.0, 3.0]) == 0.0
    # pairs (s, d): (2,1) win, (2,3) loss, (5,1) win, (5,3) win -> 3/4
    assert probe.auc([2.0, 5.0], [1.0, 3.0]) == pytest.approx(0.75, abs=1e-12)
    # one tie counts a half: (2,2) tie, (2,1) win -> 1.5 / 2
    assert probe.auc([2.0], [2.0, 1.0]) == pytest.approx(0.75, abs=1e-12)
    assert np.isnan(probe.auc([], [1.0]))
    # equals the brute-force definition on random scores with ties
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 17).astype(float), rng.integers(0, 5, 23).astype(float)
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert probe.auc(pos, neg) == pytest.approx(brute, abs=1e-12)


def test_patch_regions_take_the_majority_owner():
    owner = np.full((4, 4), -1, np.int16)
    owner[0:2, 0:2] = 0  # object 0 fills patch (0, 0)
    owner[2:4, 2:4] = 1  # object 1 fills patch (1, 1)
    owner[0, 2] = 1  # a quarter of patch (0, 1): below half, stays background
    regions, classes = probe.patch_regions(owner, sounding=[True, False], classes=[7, 3], grid=2)
    np.testing.assert_array_equal(regions, [[SOUNDING, BACKGROUND], [BACKGROUND, DISTRACTOR]])
    np.testing.assert_array_equal(classes, [[7, -1], [-1, 3]])
    with pytest.raises(ValueError, match="grid"):
        probe.patch_regions(owner, [True], [0], grid=3)


def _truth(video: str, sounding_class: int, mask: np.ndarray, regions: np.ndarray) -> FrameTruth:
    return FrameTruth(f"{video}/0", video, regions.astype(np.int8), np.where(regions > 0, sounding_class, -1), mask,
                      sounding_class, (sounding_class,))


def test_frame_scores_auc_pointing_and_iou_on_a_hand_made_frame():
    # 2x2 patch grid on a 4x4 frame: the sounding object is the top-left patch, a distractor the bottom-right
    regions = np.array([[SOUNDING, BACKGROUND], [BACKGROUND, DISTRACTOR]])
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    truth = _truth("v", 0, mask, regions)
    good = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])  # peaks on the sounding patch
    bad = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])  # peaks on the distractor
    good_scores = probe.frame_scores(good, [truth])[0]
    assert good_scores[0] == 1.0 and good_scores[1] == 1.0
    # the coarse mask is what inference builds (min-max normalised, bilinear to the frame, >= 0.5)
    from moca.infer.maps import normalise_map, upsample
    from moca.metrics import frame_iou

    expected = frame_iou((upsample(normalise_map(good), (4, 4)) >= 0.5).float().numpy(), mask[None])[0]
    assert good_scores[2] == pytest.approx(float(expected), abs=1e-6) and good_scores[2] > 0
    bad_scores = probe.frame_scores(bad, [truth])[0]
    assert bad_scores[0] == 0.0 and bad_scores[1] == 0.0 and bad_scores[2] == 0.0


def test_video_means_average_frames_and_skip_undefined_auc():
    truths = [_truth(v, 0, np.zeros((2, 2), bool), np.zeros((2, 2))) for v in ("a", "a", "b")]
    per_frame = np.array([[0.2, 1.0, 0.5], [np.nan, 0.0, 0.1], [np.nan, 1.0, 0.3]])
    videos, means = probe.video_means(per_frame, truths)
    assert videos == ["a", "b"]
    np.testing.assert_allclose(means[0], [0.2, 0.5, 0.3])
    assert np.isnan(means[1, 0]) and means[1, 1] == 1.0


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_more_values():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0.5, 0.1, 10), rng.normal(0.5, 0.1, 1000)
    mean, low, high = probe.bootstrap_ci(small)
    assert low < mean < high and mean == pytest.approx(small.mean())
    _, low_l, high_l = probe.bootstrap_ci(large)
    assert high_l - low_l < high - low
    assert probe.bootstrap_ci(np.array([0.3, np.nan]))[0] == pytest.approx(0.3)


def test_mismatched_audio_comes_from_another_video_of_another_class():
    truths = [_truth(v, c, np.zeros((2, 2), bool), np.zeros((2, 2))) for v, c in
              [("a", 0), ("a", 0), ("b", 1), ("c", 0), ("d", 2)]]
    picks = probe.mismatched_audio(truths, seed=3)
    for i, j in enumerate(picks):
        assert truths[j].video != truths[i].video and truths[j].sounding_class != truths[i].sounding_class
    with pytest.raises(ValueError, match="two sounding classes"):
        probe.mismatched_audio(truths[:2])


def test_class_match_finds_the_prototype_nearest_to_the_audio():
    # two frames, 1x2 patches, D=2: class 0 looks like x, class 1 like y; audio of frame 0 is x-ish, frame 1 y-ish
    regions = np.array([[SOUNDING, DISTRACTOR]])
    frames = [FrameTruth("a/0", "a", regions, np.array([[0, 1]]), np.zeros((2, 2), bool), 0, (0, 1)),
              FrameTruth("b/0", "b", regions, np.array([[1, 0]]), np.zeros((2, 2), bool), 1, (1, 0))]
    dense = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]], [[[0.0, 1.0], [1.0, 0.0]]]])
    right = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    assert probe.class_match(dense, right, frames, classes=2) == 1.0
    assert probe.class_match(dense, right.flip(0), frames, classes=2) == 0.0
