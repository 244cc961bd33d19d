"""Small stand-ins with the interfaces the training loop uses: a model with a frozen trunk and a gated
cross-attention adapter, a deterministic frame store, and mined pairs. Used by tests and their subprocesses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from moca.train.data import AnchorPairs

IMAGE = (3, 16, 16)
AUDIO = (1, 1, 8, 10)


class StandInModel(nn.Module):
    """Frozen patch embedding + one frozen block (the cacheable prefix), then an adapter and a frozen head."""

    def __init__(self, dim: int = 8, adapter_seed: int = 0):
        super().__init__()
        torch.manual_seed(0)  # the frozen parts stand for loaded weights: the same everywhere
        self.patch = nn.Conv2d(3, dim, 4, stride=4)  # 16x16 -> 4x4 tokens
        self.block = nn.Linear(dim, dim)
        self.audio_trunk = nn.Linear(AUDIO[-1], dim)
        self.head = nn.Linear(dim, dim)
        torch.manual_seed(adapter_seed)
        # No key bias: softmax ignores it, so its gradient is rounding noise that Adam scales up to +-lr steps,
        # which would make two float-equivalent runs (1 vs 2 ranks) differ in a tensor that changes nothing.
        self.adapter = nn.MultiheadAttention(dim, 2, batch_first=True, bias=False)
        self.gate = nn.Parameter(torch.full((1,), 0.5))
        for name, p in self.named_parameters():
            p.requires_grad_(name.startswith(("adapter", "gate")))

    def visual_prefix(self, image: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(image).flatten(2).transpose(1, 2)  # (B, 16, D)
        return torch.tanh(self.block(tokens))

    def visual_suffix(self, prefix: torch.Tensor, audio_tokens: torch.Tensor) -> torch.Tensor:
        attended, _ = self.adapter(prefix, audio_tokens, audio_tokens, need_weights=False)
        dense = self.head(prefix + self.gate * attended)
        return nn.functional.normalize(dense, dim=-1).view(prefix.shape[0], 4, 4, -1)

    def encode_audio(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.tanh(self.audio_trunk(audio.flatten(1, 3)))  # (B, 8, D)
        return tokens, nn.functional.normalize(tokens.mean(1), dim=-1)

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return (p for p in self.parameters() if p.requires_grad)

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if k.startswith(("adapter", "gate"))}

    def load_adapter_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state, strict=False)


def _tensor(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


class StandInStore:
    def image(self, key: str) -> torch.Tensor:
        return _tensor("image:" + key, IMAGE)

    def audio(self, key: str) -> torch.Tensor:
        return _tensor("audio:" + key, AUDIO)


def stand_in_pairs(n_videos: int = 12, frames: int = 2, k: int = 3) -> list[AnchorPairs]:
    keys = [f"v{v}/f{f}" for v in range(n_videos) for f in range(frames)]
    out = []
    for i, key in enumerate(keys):
        others = [o for o in keys if o.split("/")[0] != key.split("/")[0]]
        out.append(AnchorPairs(key, tuple(others[i % len(others) :][:k] or others[:k]), tuple(others[-4:])))
    return out


def write_pairs_parquet(path: Path, anchors: list[AnchorPairs]) -> None:
    """pairs.parquet and negatives.parquet beside it, in the format `moca mine-pairs` writes."""
    import pandas as pd

    def video(key: str) -> str:
        return key.split("/")[0]

    positives = [{"anchor_key": a.anchor, "anchor_video": video(a.anchor), "positive_key": p,
                  "positive_video": video(p), "rank": r + 1, "score": 1.0 - 0.1 * r}
                 for a in anchors for r, p in enumerate(a.positives)]
    negatives = [{"anchor_key": a.anchor, "anchor_video": video(a.anchor), "negative_key": n,
                  "negative_video": video(n), "draw": d, "score": 0.0}
                 for a in anchors for d, n in enumerate(a.negatives)]
    pd.DataFrame(positives).to_parquet(path)
    pd.DataFrame(negatives).to_parquet(path.with_name("negatives.parquet"))


def margin_objective(anchor, positives, negatives, audio_emb):
    from moca.losses import LossConfig, contrastive_loss

    return contrastive_loss(anchor, positives, negatives, audio_emb, LossConfig())


def synthetic_run_inputs(tmp: Path, anchors: int = 4, frames: int = 8) -> tuple[Path, Path]:
    """A small synthetic S4 dataset and pairs over only `frames` of its training frames (so caching stays quick).

    Returns (data root, pairs.parquet). Positives come from other videos, as the miner guarantees.
    """
    from moca.data.layout import list_videos
    from moca.data.synth import SynthConfig, synthesize

    root = synthesize(tmp / "data", SynthConfig(benchmark="s4", videos=6, seed=0))
    keyed = [(v.name, f.key) for v in list_videos(root, "s4", "train") for f in v.frames[:2]][:frames]
    table = []
    for video, key in keyed[:anchors]:
        others = [k for v, k in keyed if v != video]
        table.append(AnchorPairs(key, tuple(others[:2]), tuple(others[-2:])))
    write_pairs_parquet(tmp / "pairs.parquet", table)
    return root, tmp / "pairs.parquet"


def tiny_config_yaml(path: Path, root: Path, **overrides: object) -> Path:
    """configs/demo.yaml with small batches, no tracking, and `overrides`."""
    import yaml

    from moca.config import load_yaml

    data = load_yaml(Path(__file__).parents[2] / "configs" / "demo.yaml")
    data.update({"batch_size": 2, "epochs": 3, "checkpoint_every": 1, "tracking": False, "warmup_steps": 0})
    data["data"]["root"] = str(root)
    data.update(overrides)
    path.write_text(yaml.safe_dump(data))
    return path
