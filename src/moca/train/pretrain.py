"""STAND-IN for real ImageBind weights: a short image-audio contrastive pre-training of the tiny ImageBind.

A randomly initialised tiny ImageBind has no audio-visual alignment, so the adapters have nothing to refine and the
audio-pixel map is noise. This makes the tiny encoders behave like aligned ones on synthetic data, so the demo
can show the adapters learning. It is NOT part of MoCA and NOT a substitute for `imagebind_huge.pth` on real data.

Objective: for frame i and audio clip j, score(i, j) = max over patches p of <f_p(i), e_a(j)> (dense patch features
through the vision head, as MoCA's audio-pixel map uses them); symmetric InfoNCE over the batch, temperature tau.
Taking the max over patches (multiple-instance style) asks the *sounding region* to align with the audio, not the
whole frame, which is what the coarse mask later reads. Vision and audio trunks and heads train; text stays.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import torch
import torch.nn.functional as F

from moca.io import atomic_open, sha256_file
from moca.progress import progress

log = logging.getLogger(__name__)


def dense_and_audio(model: torch.nn.Module, image: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """With gradients: image (B, 3, 224, 224) -> patch features (B, N, D); audio (B, 1, 1, 128, 204) -> (B, D)."""
    vision = model.modality_preprocessors["vision"](vision=image)
    tokens = model.modality_trunks["vision"](**vision["trunk"])
    norm, _select_cls, project = model.modality_heads["vision"]
    dense = F.normalize(project(norm(tokens)[:, 1:]), dim=-1)
    processed = model.modality_preprocessors["audio"](audio=audio.flatten(0, 1))
    audio_tokens = model.modality_trunks["audio"](**processed["trunk"])
    emb = F.normalize(model.modality_heads["audio"](audio_tokens, **processed["head"]), dim=-1)
    return dense, emb


def pretrain_tiny(data: str | Path, out: str | Path, steps: int = 80, batch_size: int = 16, lr: float = 1e-3,
                  tau: float = 0.07, seed: int = 0, benchmark: str = "s4") -> str:
    """Train tiny ImageBind's vision and audio towers on the train split of `data`; write the full state dict to
    `out` (loadable as `model.backbone_weights: {uri: file://..., sha256: ...}`). Returns its sha256."""
    from moca.data.datasets import TrainFrames
    from moca.models import build_model

    torch.manual_seed(seed)
    model = build_model("imagebind_tiny").train()
    frames = TrainFrames(data, benchmark, "train")
    # Synthetic sets are small: load every frame once instead of decoding images and audio every step.
    items = [frames[i] for i in progress(range(len(frames)), desc="loading frames")]
    images = torch.stack([it["image"] for it in items])
    audios = torch.stack([it["audio"] for it in items])
    # names look like "modality_trunks.vision.blocks.0..."; the other modalities keep their random weights
    params = [p for name, p in model.named_parameters() if name.split(".")[1] in ("vision", "audio")]
    model.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    rng = random.Random(seed)
    for step in progress(range(steps), desc="pretrain tiny ImageBind"):
        # one frame per video in a batch: two frames of one clip share their sound, which would be a false negative
        by_video: dict[str, int] = {}
        for i in rng.sample(range(len(items)), len(items)):
            by_video.setdefault(items[i]["video"], i)
        index = list(by_video.values())[:batch_size]
        dense, emb = dense_and_audio(model, images[index], audios[index])
        logits = torch.einsum("ind,jd->ijn", dense, emb).amax(-1) / tau
        target = torch.arange(len(index))
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 10 == 0 or step == steps - 1:
            log.info("pretrain step %d: loss %.4f", step, loss.item())
    with atomic_open(out, "wb") as handle:
        torch.save(model.eval().state_dict(), handle)
    return sha256_file(out)
