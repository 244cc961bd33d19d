"""The MoCA model: frozen ImageBind + AdaAV adapters -> dense audio-enhanced features (method.md items 3, 4, 8).

The vision trunk is split at the first adapter so training can cache the expensive, adapter-independent part:

    image -> visual_prefix  (preprocessor, pre-LN, blocks 1..p1; frozen, no grad)   -> (B, 257, Dv)
          -> visual_suffix  (adapter p1, blocks p1+1.., an adapter after each configured block,
                             then the vision head's LayerNorm + Linear on every patch token, L2-normalised)
          -> dense (B, 16, 16, D)

ImageBind's blocks work sequence-first (L, B, D); the prefix is returned batch-first so it can be cached and
indexed per sample, and the suffix restores the exact sequence-first, contiguous layout the frozen trunk uses,
which is what makes "gates at 0 == frozen ImageBind" hold bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from moca.config import coerce
from moca.errors import ConfigError, WeightsError
from moca.models.adaav import AdaAV, AdaAVConfig
from moca.models.imagebind import AUDIO, AUDIO_SHAPE, IMAGE_SIZE, VISION
from moca.models.registry import build_model, get_entry, parameters_on_meta
from moca.models.weights import WeightsSpec, load_weights


@dataclass(frozen=True)
class MocaConfig:
    backbone: str = "imagebind_huge"
    backbone_weights: WeightsSpec | None = None
    adapter: AdaAVConfig = field(default_factory=AdaAVConfig)

    def __post_init__(self) -> None:
        if isinstance(self.backbone_weights, Mapping):  # from YAML: {uri: ..., sha256: ...}
            object.__setattr__(self, "backbone_weights",
                               coerce(WeightsSpec, self.backbone_weights, "model.backbone_weights"))
        if get_entry(self.backbone).family != "imagebind":
            raise ConfigError(f"model.backbone must be an ImageBind model, got {self.backbone!r}")


def tiny_moca_config() -> MocaConfig:
    """The test/demo config: `imagebind_tiny` (4 vision blocks) with adapters after blocks 2 and 4."""
    return MocaConfig(backbone="imagebind_tiny", adapter=AdaAVConfig(positions=(2, 4), bottleneck=32, heads=4))


class MocaOutput(NamedTuple):
    dense: torch.Tensor  # (B, h, w, D) L2-normalised patch features in the joint space
    audio_emb: torch.Tensor  # (B, D) L2-normalised audio embedding
    audio_tokens: torch.Tensor  # (B, Na, Da) last audio block output, averaged over clips


def audio_pixel_map(dense: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
    """H(p) = <f^p, e_a>: (B, h, w, D) x (B, D) -> (B, h, w) cosine similarity per patch."""
    return torch.einsum("bhwd,bd->bhw", dense, audio_emb)


class MocaModel(nn.Module):
    def __init__(self, config: MocaConfig, cache_dir: Path | None = None):
        super().__init__()
        self.config = config
        self.backbone = build_model(config.backbone, config.backbone_weights, cache_dir)
        self.backbone.requires_grad_(False)
        trunk = self.backbone.modality_trunks[VISION]
        depth = len(trunk.blocks)
        positions = config.adapter.positions
        if positions[-1] > depth:
            raise ConfigError(f"adapter.positions {list(positions)}: {config.backbone} has only {depth} "
                              f"vision blocks (positions are 1-based, 'after block i')")
        visual_dim = trunk.blocks[0].norm_1.normalized_shape[0]
        audio_dim = self.backbone.modality_trunks[AUDIO].blocks[0].norm_1.normalized_shape[0]
        # Keyed by block number so checkpoints say where each adapter sits ("adapters.8.q.weight").
        self.adapters = nn.ModuleDict({str(p): AdaAV(visual_dim, audio_dim, config.adapter) for p in positions})
        self.backbone.eval()

    def train(self, mode: bool = True) -> MocaModel:
        """Only the adapters ever train: the backbone stays in eval mode (no drop-path, fixed statistics)."""
        super().train(mode)
        self.backbone.eval()
        return self

    # --- audio ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def encode_audio(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, 1, 128, 204) clips -> tokens (B, Na, Da) and embedding (B, D), both averaged over the C clips.

        The embedding is ImageBind's audio head (LN, CLS, Linear) per clip, L2-normalised, averaged and
        normalised again (ImageBind averages after its x20 logit scale; we drop the scale so <f, e_a> is a cosine).
        """
        if audio.ndim != 5 or tuple(audio.shape[2:]) != AUDIO_SHAPE:
            raise ValueError(f"audio must be (B, clips, {', '.join(map(str, AUDIO_SHAPE))}), got {tuple(audio.shape)}")
        batch, clips = audio.shape[:2]
        processed = self.backbone.modality_preprocessors[AUDIO](audio=audio.flatten(0, 1))
        tokens = self.backbone.modality_trunks[AUDIO](**processed["trunk"])  # (B*C, Na, Da)
        clip_emb = F.normalize(self.backbone.modality_heads[AUDIO](tokens, **processed["head"]), dim=-1)
        embedding = F.normalize(clip_emb.unflatten(0, (batch, clips)).mean(1), dim=-1)
        return tokens.unflatten(0, (batch, clips)).mean(1), embedding

    # --- vision --------------------------------------------------------------------------------------------

    @torch.no_grad()
    def visual_prefix(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, 224, 224) -> (B, 1 + h*w, Dv): the frozen trunk up to the first adapter; adapter-independent."""
        if image.ndim != 4 or tuple(image.shape[1:]) != (3, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"image must be (B, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), got {tuple(image.shape)}")
        trunk = self.backbone.modality_trunks[VISION]
        tokens = self.backbone.modality_preprocessors[VISION](vision=image)["trunk"]["tokens"]
        x = trunk.pre_transformer_layer(tokens)  # LayerNorm, then (B, L, D) -> (L, B, D)
        for block in trunk.blocks[: self.config.adapter.positions[0]]:
            x = block(x, attn_mask=None)
        return x.transpose(0, 1)

    def visual_suffix(self, prefix: torch.Tensor, audio_tokens: torch.Tensor) -> torch.Tensor:
        """Adapters and remaining blocks on a cached prefix -> dense (B, h, w, D), L2-normalised."""
        blocks = self.backbone.modality_trunks[VISION].blocks
        first = self.config.adapter.positions[0]
        x = prefix.transpose(0, 1).contiguous()  # the (L, B, D) layout the frozen trunk produced
        for number in range(first, len(blocks) + 1):  # 1-based block numbers; block `first` is in the prefix
            if number > first:
                x = blocks[number - 1](x, attn_mask=None)
            if str(number) in self.adapters:
                x = self.adapters[str(number)](x.transpose(0, 1), audio_tokens).transpose(0, 1).contiguous()
        return self._dense_head(x.transpose(0, 1))

    def _dense_head(self, tokens: torch.Tensor) -> torch.Tensor:
        """ImageBind's vision head is (LayerNorm, select CLS, Linear): apply its LN and Linear to every patch."""
        norm, _select_cls, project = self.backbone.modality_heads[VISION]
        patches = project(norm(tokens)[:, 1:])
        side = math.isqrt(patches.shape[1])
        return F.normalize(patches, dim=-1).unflatten(1, (side, side))

    def forward(self, image: torch.Tensor, audio: torch.Tensor) -> MocaOutput:
        audio_tokens, audio_emb = self.encode_audio(audio)
        dense = self.visual_suffix(self.visual_prefix(image), audio_tokens)
        return MocaOutput(dense, audio_emb, audio_tokens)

    # --- parameters and checkpoints -----------------------------------------------------------------------

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return (p for p in self.adapters.parameters() if p.requires_grad)

    def num_parameters(self, trainable_only: bool = False) -> int:
        params = self.trainable_parameters() if trainable_only else self.parameters()
        return sum(p.numel() for p in params)

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the adapter tensors (keys like `8.q.weight`): what a MoCA checkpoint needs besides the backbone."""
        return {k: v.detach().clone() for k, v in self.adapters.state_dict().items()}

    def load_adapter_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        try:
            load_weights(self.adapters, state, strict=True, source="adapter checkpoint")
        except WeightsError as exc:
            raise WeightsError(f"{exc} (adapter positions here: {list(self.config.adapter.positions)})") from exc


def untrained_adapter_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with every AdaAV gate back at 0, as before training: the model is then frozen ImageBind exactly
    (`moca.models.adaav`), whatever the other adapter weights hold. The "no training" arm of a comparison."""
    return {k: torch.zeros_like(v) if k.rsplit(".", 1)[-1] in ("gate", "mlp_gate") else v.clone()
            for k, v in state.items()}


def moca_parameter_counts(config: MocaConfig) -> tuple[int, int]:
    """(total, trainable) parameters of `MocaModel(config)`, computed on the meta device: no memory, no weights."""
    with parameters_on_meta():
        model = MocaModel(replace(config, backbone_weights=None))
    return model.num_parameters(), model.num_parameters(trainable_only=True)
