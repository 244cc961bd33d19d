"""The "no training" arm: a trained folder with its gates back at 0 is the frozen backbone, exactly."""

from __future__ import annotations

from pathlib import Path

import torch

from moca.infer.model import load_model, write_untrained
from moca.models import MocaModel, tiny_moca_config


def test_untrained_copy_is_the_frozen_backbone(tiny_checkpoint: Path, tmp_path: Path) -> None:
    untrained = load_model(write_untrained(tiny_checkpoint, tmp_path / "untrained")).model
    trained = load_model(tiny_checkpoint).model
    torch.manual_seed(0)  # the checkpoint's training seed: the same random-init backbone
    fresh = MocaModel(tiny_moca_config()).eval()  # gates at 0 from construction
    images, audio = torch.rand(2, 3, 224, 224), torch.rand(2, 1, 1, 128, 204)
    with torch.no_grad():
        maps = [model(images, audio).dense for model in (untrained, fresh, trained)]
    assert torch.equal(maps[0], maps[1])
    assert not torch.allclose(maps[0], maps[2])  # the checkpoint's open gates did change the map
    assert (tmp_path / "untrained" / "config.yaml").read_bytes() == (tiny_checkpoint / "config.yaml").read_bytes()
