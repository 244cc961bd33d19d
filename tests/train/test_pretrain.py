"""The tiny-ImageBind stand-in pre-training: it lowers its loss and writes weights the model registry accepts."""

from __future__ import annotations

import pytest
import torch
from train_standins import synthetic_run_inputs

from moca.models import MocaConfig, MocaModel, WeightsSpec, tiny_moca_config
from moca.train.pretrain import pretrain_tiny


@pytest.mark.slow  # loads ~20 frames and takes a few optimiser steps of both towers
def test_pretrained_tiny_weights_load_as_backbone_weights(tmp_path):
    root, _ = synthetic_run_inputs(tmp_path)
    out = tmp_path / "tiny.pt"
    digest = pretrain_tiny(root, out, steps=3, batch_size=4)
    adapter = tiny_moca_config().adapter
    model = MocaModel(MocaConfig("imagebind_tiny", WeightsSpec(out.resolve().as_uri(), digest), adapter))
    state = torch.load(out, weights_only=True)
    key = next(k for k in state if k.startswith("modality_trunks.vision"))
    assert torch.equal(model.backbone.state_dict()[key], state[key])
    torch.manual_seed(0)
    fresh = MocaModel(tiny_moca_config()).backbone.state_dict()
    assert not torch.equal(fresh[key], state[key])  # the vision tower did train
