"""Floors and the OWOD-BIND selection rules on hand-made boxes and similarities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moca.baselines.floors import all_foreground, centre_prior
from moca.baselines.owod_bind import blurred_crops, filter_boxes, select_crops


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_centre_prior_covers_the_asked_fraction_centred(fraction: float) -> None:
    mask = centre_prior((200, 300), fraction)
    assert mask.mean() == pytest.approx(fraction, abs=0.01)
    assert mask[100, 150] and not mask[0, 0]
    assert np.array_equal(mask, mask[::-1, ::-1])  # symmetric about the centre


def test_all_foreground_and_bad_fraction() -> None:
    assert all_foreground((3, 4)).all()
    with pytest.raises(ValueError):
        centre_prior((10, 10), 0.0)


def test_filter_boxes_drops_low_confidence_and_image_sized() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 100, 100], [0, 0, 96, 96]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.15, 0.9, 0.9])  # 0.15 is not "> 0.15"
    keep = filter_boxes(boxes, scores, (100, 100), confidence=0.15, image_ratio=0.9)
    assert keep.tolist() == [True, False, False, False]  # 96x96 covers 92 % of the frame: as large as the image


def test_select_crops_softmax_threshold() -> None:
    # one crop far more similar: softmax(20 * [0.5, 0, 0]) puts ~1.0 on it
    assert select_crops(torch.tensor([0.5, 0.0, 0.0]), 20.0, 0.2).tolist() == [True, False, False]
    # four equal crops: 0.25 each > 0.2, all kept; six equal: 1/6 < 0.2, none kept (empty output)
    assert select_crops(torch.zeros(4), 20.0, 0.2).all()
    assert not select_crops(torch.zeros(6), 20.0, 0.2).any()
    # two close crops share the mass: softmax(20 * [0.30, 0.28, 0]) = [0.60, 0.40, 0.002]
    assert select_crops(torch.tensor([0.30, 0.28, 0.0]), 20.0, 0.2).tolist() == [True, True, False]
    assert select_crops(torch.zeros(0), 20.0, 0.2).shape == (0,)


def test_blurred_crops_blur_only_outside_the_mask() -> None:
    rgb = np.zeros((40, 40, 3), dtype=np.uint8)
    rgb[::2] = 255  # stripes: blurring turns them grey
    mask = torch.zeros(40, 40, dtype=torch.bool)
    mask[10:20, 10:20] = True
    (crop,) = blurred_crops(rgb, mask[None], torch.tensor([[5.0, 5.0, 25.0, 30.0]]), 21)
    assert crop.shape == (25, 20, 3)
    assert np.array_equal(crop[5:15, 5:15], rgb[10:20, 10:20])  # inside the mask: untouched
    outside = crop[20:, :]
    assert 50 < outside.mean() < 205 and outside.std() < 60  # outside: stripes smoothed towards grey
