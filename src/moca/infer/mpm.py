"""Mask proposal matching (method.md item 9): SAM proposals refined by the coarse audio mask.

A proposal is kept when at least `keep_ratio` of its own area lies inside the coarse mask (so a small object
fully inside a large coarse blob is kept, and a large background segment touching it is not); the output is the
union of the kept proposals, or the coarse mask itself when none is kept.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class MatchResult(NamedTuple):
    mask: torch.Tensor  # (H, W) bool
    kept: torch.Tensor  # (N,) bool, which proposals were kept
    fell_back: bool  # True when no proposal was kept and the coarse mask was returned


def inside_fraction(proposals: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    """Fraction of each proposal's area (N, H, W) inside the coarse mask (H, W) -> (N,); 0 for empty proposals."""
    area = proposals.flatten(1).sum(1)
    inside = (proposals & coarse).flatten(1).sum(1)
    return torch.where(area > 0, inside / area.clamp_min(1), torch.zeros_like(area, dtype=torch.float))


def match_proposals(proposals: torch.Tensor, coarse: torch.Tensor, keep_ratio: float = 0.5) -> MatchResult:
    """Union of the proposals (N, H, W) bool lying >= `keep_ratio` inside `coarse` (H, W); coarse if none does."""
    if proposals.shape[1:] != coarse.shape:
        raise ValueError(f"proposals {tuple(proposals.shape[1:])} and coarse mask {tuple(coarse.shape)} differ in size")
    proposals, coarse = proposals.bool(), coarse.bool()
    kept = inside_fraction(proposals, coarse) >= keep_ratio
    kept &= proposals.flatten(1).any(1)  # an empty proposal says nothing
    if not kept.any():
        return MatchResult(coarse.clone(), kept, True)
    return MatchResult(proposals[kept].any(0), kept, False)
