"""STAND-IN for real ImageBind weights: a short image-audio contrastive pre-training of the tiny ImageBind.

A randomly initialised tiny ImageBind has no audio-visual alignment, so the adapters have nothing to refine and the
audio-pixel map is noise. This makes the tiny encoders behave like aligned ones on synthetic data, so the demo
can show the adapters learning. It is NOT part of MoCA and NOT a substitute for `imagebind_huge.pth` on real data.

Objective (multiple-instance, as LVS / EZ-VSL): for frame i and audio clip j, score(i, j) = mean of the top_k
patch similarities <f_p(i), e_a(j)> (dense patch features through the vision head, as MoCA's audio-pixel map uses
them); symmetric InfoNCE over the batch, temperature tau. Pooling the best few patches asks the *sounding region*
to align with the audio, not the whole frame, which is what the coarse mask later reads; top_k ~ an object's
patch count (a synthetic source covers ~4 % of 256 patches) spreads the gradient over the object instead of one
patch. Vision and audio trunks and heads train; text stays.

Give it a corpus *other than the evaluation data* (`moca.train.proof` synthesises one with another seed), as
ImageBind never saw AVSBench: on a few dozen videos the contrastive task is solved by memorising each video's
background, which aligns nothing that transfers.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from moca.io import atomic_open, sha256_file
from moca.progress import progress

log = logging.getLogger(__name__)


def dense_and_audio(model: torch.nn.Module, image: torch.Tensor,
                    audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """With gradients: image (B, 3, 224, 224) -> patch features (B, N, D); audio (B, 1, 1, 128, 204) -> (B, D)."""
    vision = model.modality_preprocessors["vision"](vision=image)
    tokens = model.modality_trunks["vision"](**vision["trunk"])
    norm, _select_cls, project = model.modality_heads["vision"]
    dense = F.normalize(project(norm(tokens)[:, 1:]), dim=-1)
    processed = model.modality_preprocessors["audio"](audio=audio.flatten(0, 1))
    audio_tokens = model.modality_trunks["audio"](**processed["trunk"])
    emb = F.normalize(model.modality_heads["audio"](audio_tokens, **processed["head"]), dim=-1)
    return dense, emb


def multiple_instance_scores(dense: torch.Tensor, audio_emb: torch.Tensor, top_k: int) -> torch.Tensor:
    """(B_img, N, D) patch features, (B_aud, D) audio embeddings -> (B_img, B_aud): the mean of each image's top_k
    patch similarities to each audio (top_k = 1 is the max-pooling of LVS / EZ-VSL)."""
    similarity = torch.einsum("ind,jd->ijn", dense, audio_emb)
    return similarity.topk(min(top_k, similarity.shape[-1]), dim=-1).values.mean(-1)


def pretrain_tiny(data: str | Path, out: str | Path, steps: int = 1000, batch_size: int = 16, lr: float = 1e-3,
                  tau: float = 0.07, seed: int = 0, benchmark: str = "s4", top_k: int = 8, warmup_steps: int = 50,
                  frames_per_video: int = 2) -> str:
    """Train tiny ImageBind's vision and audio towers on the train split of `data` (a corpus that is NOT the
    evaluation data); write the full state dict to `out` (loadable as `model.backbone_weights: {uri: file://...,
    sha256: ...}`). Returns its sha256. Deterministic for given arguments and thread count.

    `frames_per_video`: the first N frames of each video are used (frames of one clip look alike; a larger corpus
    of videos is what helps). Measured setting (docs/training.md): a 1000-video corpus, 1000 steps."""
    from moca.data.datasets import TrainFrames
    from moca.models import build_model

    torch.manual_seed(seed)
    model = build_model("imagebind_tiny").train()
    frames = TrainFrames(data, benchmark, "train")
    chosen = [i for i, entry in enumerate(frames.entries) if entry.frame.index < frames_per_video]
    # Synthetic sets are small: load the frames once instead of decoding images and audio every step (half
    # precision: ~0.3 MB a frame; computation stays in float32).
    items = [frames[i] for i in progress(chosen, desc="loading frames")]
    images = torch.stack([it["image"].half() for it in items])
    audios = torch.stack([it["audio"] for it in items])
    # names look like "modality_trunks.vision.blocks.0..."; the other modalities keep their random weights
    params = [p for name, p in model.named_parameters() if name.split(".")[1] in ("vision", "audio")]
    model.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    # linear warm-up: a from-scratch transformer under Adam at a high lr otherwise stalls at chance
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, warmup_steps)))
    rng = random.Random(seed)
    cpu_start = time.process_time()
    for step in progress(range(steps), desc="pretrain tiny ImageBind"):
        # one frame per video in a batch: two frames of one clip share their sound, which would be a false negative
        by_video: dict[str, int] = {}
        for i in rng.sample(range(len(items)), len(items)):
            by_video.setdefault(items[i]["video"], i)
        index = list(by_video.values())[:batch_size]
        dense, emb = dense_and_audio(model, images[index].float(), audios[index])
        logits = multiple_instance_scores(dense, emb, top_k) / tau
        target = torch.arange(len(index))
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            log.info("pretrain step %d: loss %.4f", step, loss.item())
    # CPU time, not wall: the machines this demo runs on are shared, so wall time says little about the cost
    log.info("pretrain: %d steps in %.0f s CPU (%d threads)", steps, time.process_time() - cpu_start,
             torch.get_num_threads())
    with atomic_open(out, "wb") as handle:
        torch.save(model.eval().state_dict(), handle)
    return sha256_file(out)
