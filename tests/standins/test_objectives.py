"""The stand-ins' training objectives and their pieces, on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moca.standins.dino import cls_features, cosine_schedule, dino_loss, infonce_loss, swap_backgrounds
from moca.standins.sam import dice_loss, focal_loss, mask_box, mask_iou, visible_regions


def test_dino_loss_is_the_cross_entropy_over_pairs_of_different_views():
    # 2 global + 1 local view of a batch of 1, 2 prototypes; the teacher's targets after centring are one-hot-ish
    teacher = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    student = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    center = torch.zeros(1, 2)
    targets = torch.softmax(teacher / 0.5, dim=-1)
    logp = torch.log_softmax(student / 1.0, dim=-1)
    pairs = [(0, 1), (0, 2), (1, 0), (1, 2)]  # (teacher view, student view), never the same view
    expected = np.mean([-(targets[t] * logp[s]).sum().item() for t, s in pairs])
    assert dino_loss(student, teacher, center, student_temp=1.0, teacher_temp=0.5).item() == pytest.approx(expected)
    # centring subtracts before sharpening: a centre equal to a constant teacher output makes the targets uniform
    constant = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    uniform = dino_loss(torch.zeros(3, 2), constant, constant[:1], student_temp=1.0, teacher_temp=0.04)
    assert uniform.item() == pytest.approx(math.log(2))


def test_infonce_picks_each_image_among_the_batch():
    views = torch.eye(3)  # batch of 3 orthonormal embeddings
    perfect = infonce_loss(torch.cat([views, views]), torch.cat([views, views]), temperature=0.01)
    assert perfect.item() == pytest.approx(0.0, abs=1e-6)
    confused = infonce_loss(torch.cat([views, views.roll(1, 0)]), torch.cat([views, views.roll(1, 0)]), 0.01)
    assert confused.item() > 50  # every view is nearest to another image's view
    same = torch.ones(6, 3) / math.sqrt(3)
    assert infonce_loss(same, same, 0.2).item() == pytest.approx(math.log(3))  # all alike: chance


def test_cls_features_match_timm_at_the_model_size_and_run_at_others():
    from moca.models import build_model

    torch.manual_seed(0)
    vit = build_model("dino_tiny")
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(cls_features(vit, images), vit.forward_features(images)[:, 0])
        assert cls_features(vit, torch.randn(2, 3, 96, 96)).shape == (2, 64)


def test_cosine_schedule_warms_up_then_decays():
    values = cosine_schedule(1.0, 0.0, steps=6, warmup_steps=2)
    assert values[:2] == [0.0, 0.5] and values[2] == 1.0 and values[-1] == pytest.approx(0.1464, abs=1e-3)
    assert cosine_schedule(0.5, 0.5, steps=3) == [0.5, 0.5, 0.5]


def test_swap_backgrounds_keeps_the_objects_and_replaces_the_rest():
    images = torch.full((2, 3, 4, 4), 200, dtype=torch.uint8)
    foreground = torch.zeros(2, 4, 4, dtype=torch.bool)
    foreground[:, 1:3, 1:3] = True
    generator = torch.Generator().manual_seed(0)
    out = swap_backgrounds(images, foreground, torch.tensor([0, 1]), 1.0, generator)
    assert (out[:, :, 1:3, 1:3] == 200).all()
    assert (out[:, :, 0] != 200).all() and (out[:, :, 0] >= 70).all() and (out[:, :, 0] <= 170).all()
    unchanged = swap_backgrounds(images, foreground, torch.tensor([0, 1]), 0.0, generator)
    assert torch.equal(unchanged, images)


def test_mask_losses_by_hand():
    target = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    right = torch.tensor([[20.0, -20.0], [-20.0, -20.0]])
    wrong = -right
    assert focal_loss(right, target).item() == pytest.approx(0.0, abs=1e-8)
    assert dice_loss(right, target).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(wrong, target).item() == pytest.approx(1 - 1 / 5, abs=1e-6)  # (2*0 + 1) / (3 + 1 + 1)
    # a 0 logit everywhere: focal = mean of ce * (1 - p_t)^2 * alpha_t, ce = log 2, p_t = 0.5
    expected = (math.log(2) * 0.25 * 0.25 + 3 * math.log(2) * 0.25 * 0.75) / 4
    assert focal_loss(torch.zeros(2, 2), target).item() == pytest.approx(expected)
    assert mask_iou(right, target).item() == 1.0
    assert mask_iou(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]), target).item() == pytest.approx(0.5)


def test_mask_box_and_visible_regions():
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[1:3, 2:5] = True
    assert mask_box(mask).tolist() == [2.0, 1.0, 5.0, 3.0]
    owner = np.full((6, 6), -1)
    owner[:3, :3] = 0
    owner[5, 5] = 1  # one pixel: too small
    owner[3:, :2] = 2
    assert visible_regions(owner, min_area=4) == [0, 2, -1]
