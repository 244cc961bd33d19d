"""The tiny-ImageBind stand-in pre-training: its multiple-instance score, and weights the model registry accepts."""

from __future__ import annotations

import pytest
import torch
from train_standins import synthetic_run_inputs

from moca.models import MocaConfig, MocaModel, WeightsSpec, tiny_moca_config
from moca.train.pretrain import multiple_instance_scores, pretrain_tiny


def test_multiple_instance_score_pools_the_best_patches():
    # 2 images x 4 patches in 2-D; audio 0 points along x, audio 1 along y
    audio = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    dense = torch.tensor([
        [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.0, 1.0]],  # image 0: one x-patch, three y-ish patches
        [[0.8, 0.6], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]],
    ])
    top1 = multiple_instance_scores(dense, audio, top_k=1)
    torch.testing.assert_close(top1, torch.tensor([[1.0, 1.0], [0.8, 1.0]]))
    top2 = multiple_instance_scores(dense, audio, top_k=2)
    torch.testing.assert_close(top2, torch.tensor([[0.8, 1.0], [0.8, 0.8]]))
    # top_k beyond the patch count averages every patch instead of failing
    torch.testing.assert_close(multiple_instance_scores(dense, audio, top_k=99), dense.mean(1) @ audio.T)


@pytest.mark.slow  # loads ~20 frames and takes a few optimiser steps of both towers
def test_pretrained_tiny_weights_load_as_backbone_weights(tmp_path):
    root, _ = synthetic_run_inputs(tmp_path)
    out = tmp_path / "tiny.pt"
    digest = pretrain_tiny(root, out, steps=3, batch_size=4, top_k=2, warmup_steps=2)
    adapter = tiny_moca_config().adapter
    model = MocaModel(MocaConfig("imagebind_tiny", WeightsSpec(out.resolve().as_uri(), digest), adapter))
    state = torch.load(out, weights_only=True)
    for tower in ("vision", "audio"):
        key = next(k for k in state if k.startswith(f"modality_trunks.{tower}"))
        assert torch.equal(model.backbone.state_dict()[key], state[key])
        torch.manual_seed(0)
        fresh = MocaModel(tiny_moca_config()).backbone.state_dict()
        assert not torch.equal(fresh[key], state[key]), tower  # both towers did train
    text = next(k for k in state if k.startswith("modality_trunks.text"))
    torch.manual_seed(0)
    assert torch.equal(MocaModel(tiny_moca_config()).backbone.state_dict()[text], state[text])  # text stays
