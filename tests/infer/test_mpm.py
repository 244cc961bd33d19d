"""Mask proposal matching rules, and SAM proposals decoded from one image embedding per frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moca.infer.config import SamConfig
from moca.infer.mpm import inside_fraction, match_proposals


def _box(y0: int, y1: int, x0: int, x1: int, size: int = 10) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


COARSE = _box(0, 5, 0, 5)


def test_proposal_inside_coarse_mask_is_kept_and_outside_dropped() -> None:
    inside, outside = _box(1, 3, 1, 3), _box(6, 9, 6, 9)
    result = match_proposals(torch.stack([inside, outside]), COARSE)
    assert result.kept.tolist() == [True, False]
    assert torch.equal(result.mask, inside) and not result.fell_back


def test_half_inside_is_kept_just_below_half_is_not() -> None:
    half = _box(4, 6, 0, 2)  # 2 of its 4 pixels inside
    less = _box(4, 7, 0, 2)  # 2 of 6 inside
    assert inside_fraction(torch.stack([half, less]), COARSE).tolist() == pytest.approx([0.5, 1 / 3])
    assert match_proposals(torch.stack([half, less]), COARSE).kept.tolist() == [True, False]


def test_output_is_union_of_kept_proposals() -> None:
    a, b = _box(0, 2, 0, 2), _box(3, 5, 3, 5)
    result = match_proposals(torch.stack([a, b, _box(7, 9, 7, 9)]), COARSE)
    assert torch.equal(result.mask, a | b)


def test_falls_back_to_coarse_mask_when_none_kept() -> None:
    result = match_proposals(torch.stack([_box(6, 9, 6, 9), torch.zeros(10, 10, dtype=torch.bool)]), COARSE)
    assert result.fell_back and torch.equal(result.mask, COARSE)
    empty = match_proposals(torch.zeros(0, 10, 10, dtype=torch.bool), COARSE)
    assert empty.fell_back and torch.equal(empty.mask, COARSE)


def test_size_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        match_proposals(torch.zeros(1, 5, 5, dtype=torch.bool), COARSE)


@pytest.fixture(scope="module")
def proposer():
    from moca.infer.sam import SamProposer, build_sam

    # Thresholds lowered from SAM's 0.88 / 0.95: random tiny weights never reach them (see conftest).
    cfg = SamConfig(model="sam_tiny", points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    return SamProposer(build_sam(cfg), cfg)


def test_one_embedding_per_frame_for_points_boxes_and_automatic(proposer) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    before = proposer.embeddings_computed
    proposer.set_frame(rgb)
    masks, iou = proposer.points(torch.tensor([[10.0, 10.0], [40.0, 30.0], [60.0, 5.0]]))
    assert masks.shape == (3, 48, 64) and masks.dtype == torch.bool and iou.shape == (3,)
    boxes, _ = proposer.boxes(torch.tensor([[0.0, 0.0, 30.0, 20.0]]))
    assert boxes.shape == (1, 48, 64)
    automatic = proposer.automatic()
    assert automatic and automatic[0]["segmentation"].shape == (48, 64)
    proposer.set_frame(rgb)  # the same frame again: free
    assert proposer.embeddings_computed - before == 1
    proposer.set_frame(rgb.copy())
    assert proposer.embeddings_computed - before == 2
