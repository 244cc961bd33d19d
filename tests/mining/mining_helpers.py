"""A descriptor function that knows the synth looks, standing in for DINO in mining tests.

A histogram of how many pixels carry each synthetic class's colour (chromaticity, so the texture's shading does
not matter). It sees every object, sounding or silent, exactly as DINO would, so a positive shares the
*sounding* class only as often as the mining makes it. (A uniquely named module, not conftest, so the import
cannot collide with another test folder's conftest.)
"""

from __future__ import annotations

import torch

from moca.data.synth import SYNTH_CLASSES
from moca.mining.descriptors import IMAGENET_MEAN, IMAGENET_STD


def colour_histogram(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) ImageNet-normalised -> (B, classes): share of pixels within a chromaticity radius of each class."""
    rgb = images * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    rgb = torch.nn.functional.avg_pool2d(rgb, 4)  # 16x fewer pixels; objects are 48-80 px wide, so they survive
    chroma = rgb / rgb.sum(dim=1, keepdim=True).clamp_min(1e-3)  # (B, 3, S, S)
    bright = rgb.amax(dim=1) > 0.15
    centres = torch.tensor([c.colour for c in SYNTH_CLASSES], dtype=torch.float32)
    centres = centres / centres.sum(dim=1, keepdim=True)
    distance = (chroma.unsqueeze(1) - centres.view(1, -1, 3, 1, 1)).norm(dim=2)  # (B, classes, S, S)
    return ((distance < 0.03) & bright.unsqueeze(1)).float().mean(dim=(2, 3)).sqrt()
