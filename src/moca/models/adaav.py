"""AdaAV: the audio-visual adapter MoCA trains (method.md item 3).

After a frozen vision block, visual tokens X attend to audio tokens A in a narrow bottleneck:

    X <- X + g * W_o(MHA(Q = LN(X) W_q, K = LN(A) W_k, V = LN(A) W_v))
    X <- X + g_mlp * MLP(LN(X))            (optional bottleneck MLP)

Both gates start at exactly 0, so an untrained model reproduces frozen ImageBind bit for bit and training
starts from the aligned embedding space instead of a random perturbation of it.

Gate shape: per channel by default (one value per visual channel, like CaiT's LayerScale), because it lets
the adapter open only the channels where audio helps while the others keep ImageBind's alignment with the
joint space; it costs D parameters (1280 for ImageBind-Huge). `gate="scalar"` gives Flamingo-style gating.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from moca.errors import ConfigError

GATE_SHAPES = ("channel", "scalar")


@dataclass(frozen=True)
class AdaAVConfig:
    positions: tuple[int, ...] = (8, 16, 24, 32)  # 1-based: an adapter after vision block i
    bottleneck: int = 256
    heads: int = 8
    mlp: bool = False
    mlp_ratio: float = 1.0  # MLP hidden width = bottleneck * mlp_ratio
    gate: str = "channel"  # "channel" or "scalar", see the module docstring

    def __post_init__(self) -> None:
        positions = tuple(int(p) for p in self.positions)
        if not positions or len(set(positions)) != len(positions) or min(positions) < 1:
            raise ConfigError(f"adapter.positions must be distinct block numbers >= 1, got {list(self.positions)}")
        object.__setattr__(self, "positions", tuple(sorted(positions)))
        if self.bottleneck < 1 or self.heads < 1 or self.bottleneck % self.heads:
            raise ConfigError(f"adapter.bottleneck ({self.bottleneck}) must be a positive multiple of "
                              f"adapter.heads ({self.heads})")
        if self.mlp_ratio <= 0:
            raise ConfigError(f"adapter.mlp_ratio must be > 0, got {self.mlp_ratio}")
        if self.gate not in GATE_SHAPES:
            raise ConfigError(f"adapter.gate must be one of {GATE_SHAPES}, got {self.gate!r}")


class AdaAV(nn.Module):
    """One adapter. Inputs are batch-first: visual (B, L, Dv), audio (B, Na, Da); returns the updated visual."""

    def __init__(self, visual_dim: int, audio_dim: int, config: AdaAVConfig):
        super().__init__()
        self.heads = config.heads
        width = config.bottleneck
        gate_shape = (visual_dim,) if config.gate == "channel" else (1,)
        self.norm_visual = nn.LayerNorm(visual_dim)
        self.norm_audio = nn.LayerNorm(audio_dim)
        self.q = nn.Linear(visual_dim, width)
        # no bias: softmax over keys is shift-invariant, so a key bias gets exactly zero gradient (dead weight)
        self.k = nn.Linear(audio_dim, width, bias=False)
        self.v = nn.Linear(audio_dim, width)
        self.out = nn.Linear(width, visual_dim)
        self.gate = nn.Parameter(torch.zeros(gate_shape))
        if config.mlp:
            hidden = max(1, round(width * config.mlp_ratio))
            self.mlp: nn.Module | None = nn.Sequential(
                nn.LayerNorm(visual_dim), nn.Linear(visual_dim, hidden), nn.GELU(), nn.Linear(hidden, visual_dim)
            )
            self.mlp_gate: nn.Parameter | None = nn.Parameter(torch.zeros(gate_shape))
        else:
            self.mlp, self.mlp_gate = None, None

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, W) -> (B, heads, L, W / heads)
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        audio = self.norm_audio(audio)
        q = self._split_heads(self.q(self.norm_visual(visual)))
        k, v = self._split_heads(self.k(audio)), self._split_heads(self.v(audio))
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        visual = visual + self.gate * self.out(attended)
        if self.mlp is not None:
            visual = visual + self.mlp_gate * self.mlp(visual)
        return visual
