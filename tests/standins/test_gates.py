"""The gates' computations on hand-made cases (moca.standins.gates)."""

from __future__ import annotations

import numpy as np
import pytest

from moca.standins.gates import (
    FrameLabels,
    best_matches,
    binary_iou,
    centre_point,
    chance_rates,
    mined_pairs,
    pair_rates,
    patch_owners,
    rank_auc,
    retrieval_class_match,
    sounding_auc,
    visual_ceiling,
)


def labels(videos, sounding, present) -> FrameLabels:
    return FrameLabels(np.array(videos), np.array(sounding), np.array(present, dtype=bool))


# 4 frames, 3 classes: a (sounds 0, shows 0+1), b (sounds 1, shows 1+2), c (sounds 0, shows 0+2), d (sounds 2, shows 2)
FOUR = labels(["a", "b", "c", "d"], [0, 1, 0, 2],
              [[1, 1, 0], [0, 1, 1], [1, 0, 1], [0, 0, 1]])


def test_pair_rates_by_hand():
    rates = pair_rates(FOUR, np.array([0, 0, 3]), np.array([2, 1, 1]))
    # (a,c): same sounding 0, c shows 0, share class 0, jaccard 1/3; (a,b): no, no (b lacks 0), share 1, 1/3;
    # (d,b): no, b shows 2, share 2, jaccard 1/2
    assert rates.shares_sounding == pytest.approx(1 / 3)
    assert rates.contains_sounding == pytest.approx(2 / 3)
    assert rates.shares_any == pytest.approx(1.0)
    assert rates.jaccard == pytest.approx((1 / 3 + 1 / 3 + 1 / 2) / 3)


def test_chance_rates_average_every_other_video_frame():
    rates = chance_rates(FOUR)
    # each anchor against the 3 others; same sounding: a-c and c-a only -> (1/3 + 0 + 1/3 + 0) / 4
    assert rates.shares_sounding == pytest.approx(1 / 6)
    # contains: a: b no, c yes, d no; b: a yes, c no, d no; c: a yes, b no, d no; d: a no, b yes, c yes
    assert rates.contains_sounding == pytest.approx((1 / 3 + 1 / 3 + 1 / 3 + 2 / 3) / 4)
    brute = np.mean([np.mean([pair_rates(FOUR, np.array([i]), np.array([j])).jaccard for j in range(4) if j != i])
                     for i in range(4)])
    assert rates.jaccard == pytest.approx(brute)


def test_chance_ignores_frames_of_the_same_video():
    same = labels(["a", "a", "b"], [0, 0, 1], [[1, 0], [1, 0], [0, 1]])
    assert chance_rates(same).shares_sounding == 0.0  # the only same-class frame is in the anchor's own video


def test_mined_pairs_and_visual_ceiling():
    descriptors = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0], [0.141, 0.99]], np.float32)
    anchors, positives = mined_pairs(descriptors, np.array(["a", "b", "c", "d"]), k=1)
    assert anchors.tolist() == [0, 1, 2, 3] and positives.tolist() == [1, 0, 3, 2]
    # frames showing the same set are each other's neighbours under the multi-hot descriptor
    pairs = labels(["a", "b", "c", "d"], [0, 1, 2, 2], [[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]])
    ceiling = visual_ceiling(pairs, k=1)
    assert ceiling.shares_any == 1.0 and ceiling.jaccard == 1.0
    assert ceiling.shares_sounding == pytest.approx(0.5)  # a and b show the same two classes but sound different ones


def test_rank_auc_counts_ties_as_half():
    assert rank_auc(np.array([3.0, 2.0]), np.array([1.0, 0.0])) == 1.0
    assert rank_auc(np.array([0.0]), np.array([1.0])) == 0.0
    assert rank_auc(np.array([1.0, 3.0]), np.array([1.0, 2.0])) == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    with pytest.raises(ValueError):
        rank_auc(np.array([]), np.array([1.0]))


def test_patch_owners_take_the_majority():
    owner = np.full((4, 4), -1)
    owner[:2, :2] = 0  # top-left patch all object 0
    owner[2:, 2:] = 1
    owner[3, 3] = 0  # bottom-right patch: three of 1, one of 0
    owner[0, 2] = 1  # top-right patch: two -1, ... ties resolved to the smaller id
    owner[1, 2] = 1
    assert patch_owners(owner, 2).tolist() == [[0, -1], [-1, 1]]
    with pytest.raises(ValueError):
        patch_owners(np.zeros((5, 5)), 2)


def test_sounding_auc_ranks_source_patches_over_silent_ones():
    patches = np.array([[0, 1], [1, -1]])
    heat = np.array([[0.9, 0.2], [0.1, 5.0]])  # background is ignored, however hot
    assert sounding_auc(heat, patches, [True, False]) == 1.0
    assert sounding_auc(heat, patches, [False, True]) == 0.0
    assert sounding_auc(heat, np.array([[0, -1], [-1, -1]]), [True, False]) is None  # no distractor visible


def test_retrieval_skips_the_audio_s_own_video():
    scores = np.array([[9.0, 1.0, 2.0], [0.0, 9.0, 1.0], [3.0, 0.0, 9.0]])
    videos = np.array(["a", "a", "b"])
    classes = np.array([0, 1, 0])
    # audio 0 -> image 2 (class 0: match); audio 1 -> image 2 (class 0 vs 1: miss); audio 2 -> image 0 (match)
    assert retrieval_class_match(scores, classes, classes, videos) == pytest.approx(2 / 3)


def test_binary_iou_and_best_matches():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3] = True
    assert binary_iou(a, b) == pytest.approx(4 / 12)
    assert binary_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0
    assert best_matches(np.stack([b, a]), np.stack([a, ~a])).tolist() == pytest.approx([1.0, 4 / 12])
    assert best_matches(np.zeros((0, 4, 4), bool), np.stack([a])).tolist() == [0.0]


def test_centre_point_stays_inside_a_ring():
    yy, xx = np.mgrid[0:41, 0:41]
    radius = np.hypot(xx - 20, yy - 20)
    ring = (radius <= 20) & (radius >= 10)
    x, y = centre_point(ring)
    assert ring[int(y), int(x)]  # the centroid (20, 20) would fall in the hole
    square = np.zeros((9, 9), bool)
    square[2:7, 2:7] = True
    assert centre_point(square) == (4.5, 4.5)
