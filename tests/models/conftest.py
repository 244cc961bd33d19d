from __future__ import annotations

import pytest
import torch

from moca.models import MocaModel, tiny_moca_config


@pytest.fixture(scope="module")
def tiny_moca() -> MocaModel:
    torch.manual_seed(0)
    return MocaModel(tiny_moca_config())


@pytest.fixture
def image_audio() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 224, 224, generator=generator), torch.randn(2, 3, 1, 128, 204, generator=generator)
