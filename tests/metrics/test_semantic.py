"""AVSS semantic mIoU / F over 71 classes on hand-computed cases, and against the official histc loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moca.metrics import SemanticScorer, frame_class_areas

TOL = 1e-6
C = 71


def f_beta(precision: float, recall: float) -> float:
    return 1.3 * precision * recall / (0.3 * precision + recall)


def test_perfect_prediction_counts_only_classes_present() -> None:
    gt = np.array([[[0, 5], [5, 5]], [[0, 0], [5, 0]]])
    result = SemanticScorer().add("v", gt, gt)
    assert result["miou"] == pytest.approx(2 / C, abs=TOL)  # classes 0 and 5 score 1, the other 69 score 0
    assert result["fscore"] == pytest.approx(2 / C, abs=TOL)


def test_class_never_present_and_wrongly_predicted_class() -> None:
    gt = np.array([[[0, 5], [5, 5]]])
    pred = np.array([[[0, 7], [7, 5]]])
    scorer = SemanticScorer()
    scorer.add("v", pred, gt)
    summary = scorer.summary()
    # class 0: I=1, U=1 -> IoU 1, F 1. class 5: I=1, Pa=1, La=3 -> IoU 1/3, F(1, 1/3).
    # class 7 (never in the GT): I=0, U=2 -> counted with IoU 0 and F 0 (recall 0/0 = NaN -> 0).
    assert summary["miou"] == pytest.approx((1 + 1 / 3) / C, abs=TOL)
    assert summary["fscore"] == pytest.approx((1 + f_beta(1, 1 / 3)) / C, abs=TOL)
    assert summary["class_count"][7] == 1 and summary["class_count"][3] == 0
    assert summary["per_class_iou"][5] == pytest.approx(1 / 3, abs=TOL)


def test_padded_frames_count_as_background() -> None:
    gt = np.zeros((1, 2, 2), dtype=np.int64)
    pred = np.array([[[0, 0], [0, 5]]])
    unpadded = SemanticScorer().add("v", pred, gt)
    assert unpadded["miou"] == pytest.approx(0.75 / C, abs=TOL)  # class 0: 3/4; class 5: counted, 0
    padded = SemanticScorer().add("v", pred, gt, pad_to=2)  # one extra all-background frame: class 0 IoU 1
    assert padded["padded"] == 1 and padded["num_frames"] == 1
    assert padded["miou"] == pytest.approx((0.75 + 1) / 2 / C, abs=TOL)
    assert padded["fscore"] == pytest.approx((f_beta(1, 0.75) + 1) / 2 / C, abs=TOL)


def test_sums_accumulate_over_videos_per_class() -> None:
    scorer = SemanticScorer()
    scorer.add("a", np.array([[[3, 3], [3, 3]]]), np.array([[[3, 3], [3, 3]]]))  # class 3: IoU 1
    scorer.add("b", np.array([[[3, 3], [0, 0]]]), np.array([[[3, 3], [3, 3]]]))  # class 3: 1/2; class 0: 0
    summary = scorer.summary()
    assert summary["per_class_iou"][3] == pytest.approx(0.75, abs=TOL)
    assert summary["miou"] == pytest.approx(0.75 / C, abs=TOL)
    assert summary["num_videos"] == 2 and summary["num_frames"] == 2


def test_out_of_range_classes_are_refused() -> None:
    with pytest.raises(ValueError, match="outside 0..70"):
        frame_class_areas(np.full((1, 2, 2), 71), np.zeros((1, 2, 2)))


def test_matches_official_histc_loop(reference) -> None:
    gen = torch.Generator().manual_seed(1)
    gt = torch.randint(0, 6, (10, 16, 16), generator=gen)
    noise = torch.randint(0, 9, (10, 16, 16), generator=gen)
    pred = torch.where(torch.rand(10, 16, 16, generator=gen) < 0.6, gt, noise)
    scorer = SemanticScorer()
    scorer.add("v", pred, gt)
    ious, fscores, counts = reference.reference_semantic(pred, gt)
    assert scorer.count.tolist() == counts.long().tolist()
    np.testing.assert_allclose(scorer.iou_sum, ious.double().numpy(), atol=1e-5)
    np.testing.assert_allclose(scorer.f_sum, fscores.double().numpy(), atol=1e-5)
    expected_miou = torch.nan_to_num(ious / counts, nan=0.0).mean().item()
    assert scorer.summary()["miou"] == pytest.approx(expected_miou, abs=TOL)
