"""STAND-IN for SAM weights: the registry's `sam_tiny` trained with prompt -> mask supervision, class-agnostic.

SAM's recipe (Kirillov et al. 2023, section 3 and appendix A), kept where it matters here and scaled down:
- each instance mask of a training image is prompted with a foreground point drawn uniformly inside it, or with its
  bounding box jittered by noise of 10 % of the box side (at most 20 px);
- a single point is ambiguous, so the decoder's three multimask outputs are scored and only the lowest loss is
  back-propagated; a box also trains the single-mask output;
- mask loss: focal + dice; the IoU head regresses the actual IoU of every output (mean squared error), which is
  what SAM's automatic mask generator and OWOD-BIND's box confidence read. SAM weighs focal:dice 20:1; from
  scratch at this scale that locks the model into empty masks (measured: object IoU 0.03 after 300 steps on
  20 frames, against 0.34 after 150 steps at 1:1), so the stand-in weighs them 1:1;
- image encoder, prompt encoder and mask decoder all train, from scratch (AdamW, linear warm-up, then step
  decay as SAM's); the loss is taken at the decoder's own 4x-downsampled resolution, targets area-averaged.
Left out: the interactive rounds (points resampled from the error region, the previous mask fed back as a dense
prompt), since `moca` only prompts once with points or boxes. The masks are every object of the corpus and the
background region ("stuff", as SA-1B also annotates), from the generator's own owner maps: no class label is read.
Images go through SAM's own preprocessing (`ResizeLongestSide` then `Sam.preprocess`), as `SamPredictor` does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moca.progress import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamRecipe:
    steps: int = 800
    batch_size: int = 8  # images per step; every region of each image is prompted once
    lr: float = 1e-3
    warmup_steps: int = 10
    decay_at: tuple[float, float] = (0.8, 0.95)  # fractions of the run where the lr drops 10x (SAM: step decay)
    weight_decay: float = 0.1
    focal_weight: float = 1.0  # SAM: 20 (see the module doc)
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    box_noise: float = 0.1  # std of the box-corner noise, as a fraction of the box side (SAM: 10 %, max 20 px)
    box_noise_max_px: float = 20.0
    min_area_px: int = 64  # regions smaller than this (in the 224 px frame) are not prompted
    background_region: bool = True  # also prompt the background ("stuff") region
    seed: int = 0


def visible_regions(owner: np.ndarray | torch.Tensor, min_area: int, background: bool = True) -> list[int]:
    """Owner ids with at least `min_area` visible pixels: every object (>= 0) in index order, then the background
    (-1), which SAM's data (SA-1B) also annotates as a region."""
    owner = torch.as_tensor(owner)
    ids = list(range(int(owner.max()) + 1)) + ([-1] if background else [])
    return [i for i in ids if int((owner == i).sum()) >= min_area]


def mask_box(mask: torch.Tensor) -> torch.Tensor:
    """x0 y0 x1 y1 of a non-empty (H, W) mask, in pixels (exclusive right/bottom edge)."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss per mask, mean over pixels: (..., H, W) -> (...)."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma * (alpha * target + (1 - alpha) * (1 - target))
    return loss.flatten(-2).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice per mask: (..., H, W) -> (...)."""
    prob = logits.sigmoid().flatten(-2)
    target = target.flatten(-2)
    return 1 - (2 * (prob * target).sum(-1) + 1) / (prob.sum(-1) + target.sum(-1) + 1)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the binarised (logit > 0) masks with the targets: (..., H, W) -> (...)."""
    pred = logits > 0
    truth = target > 0.5
    inter = (pred & truth).flatten(-2).sum(-1)
    union = (pred | truth).flatten(-2).sum(-1)
    return inter / union.clamp_min(1)


@dataclass(frozen=True)
class Prepared:
    """Square training frames at SAM's input size S (so `Sam.preprocess` pads nothing): images, owner maps, and the
    region ids each frame prompts."""

    images: torch.Tensor  # (N, 3, S, S) uint8
    owners: torch.Tensor  # (N, S, S) int8
    regions: list[list[int]]


def prepare_frames(frames: Sequence, size: int, min_area: int, background: bool = True) -> Prepared:
    """Resize frames as `SamPredictor.set_image` does (`ResizeLongestSide`), and their owner maps (nearest)."""
    from segment_anything.utils.transforms import ResizeLongestSide

    transform = ResizeLongestSide(size)
    images = torch.zeros(len(frames), 3, size, size, dtype=torch.uint8)
    owners = torch.zeros((len(frames), size, size), dtype=torch.int8)
    for index, frame in enumerate(frames):
        if frame.image.shape[0] != frame.image.shape[1]:
            raise ValueError(f"{frame.video}: SAM stand-in frames must be square, got {frame.image.shape[:2]}")
        images[index] = torch.from_numpy(transform.apply_image(frame.image)).permute(2, 0, 1)
        owner = torch.from_numpy(frame.owner.astype(np.float32))[None, None]
        owners[index] = F.interpolate(owner, size=(size, size), mode="nearest")[0, 0].to(torch.int8)
    return Prepared(images, owners, [visible_regions(frame.owner, min_area, background) for frame in frames])


def _prompt(mask: torch.Tensor, use_box: bool, generator: torch.Generator,
            recipe: SamRecipe) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(point (1, 2), None) or (None, jittered box (4,)) for one region mask, in input pixels."""
    if not use_box:
        ys, xs = torch.nonzero(mask, as_tuple=True)
        pick = int(torch.randint(len(xs), (1,), generator=generator))
        return torch.stack([xs[pick], ys[pick]]).float()[None] + 0.5, None
    box = mask_box(mask)
    side = (box[2:] - box[:2]).repeat(2)
    noise = torch.randn(4, generator=generator) * recipe.box_noise * side
    return None, box + noise.clamp(-recipe.box_noise_max_px, recipe.box_noise_max_px)


def _decode(sam: nn.Module, embedding: torch.Tensor, points: torch.Tensor | None,
            boxes: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """All four low-resolution mask logits (P, 4, S/4, S/4) and their IoU predictions (P, 4) for P prompts of one
    kind on one image embedding (1, C, h, w)."""
    point_input = None if points is None else (points, torch.ones(points.shape[:2], dtype=torch.int))
    sparse, dense = sam.prompt_encoder(points=point_input, boxes=boxes, masks=None)
    return sam.mask_decoder.predict_masks(embedding, sam.prompt_encoder.get_dense_pe(), sparse, dense)


def _step_loss(sam: nn.Module, data: Prepared, index: list[int], generator: torch.Generator,
               recipe: SamRecipe) -> tuple[torch.Tensor, dict[str, float]]:
    embeddings = sam.image_encoder(sam.preprocess(data.images[index].float()))
    mask_terms, iou_terms, ious = [], [], []
    for embedding, frame in zip(embeddings, index):
        masks = [data.owners[frame] == region for region in data.regions[frame]]
        kinds = (torch.rand(len(masks), generator=generator) < 0.5).tolist()  # True: box prompt
        for use_box in (False, True):
            chosen = [mask for mask, kind in zip(masks, kinds) if kind == use_box]
            if not chosen:
                continue
            prompts = [_prompt(mask, use_box, generator, recipe) for mask in chosen]
            points = None if use_box else torch.stack([p for p, _ in prompts])
            boxes = torch.stack([b for _, b in prompts]) if use_box else None
            logits, iou_pred = _decode(sam, embedding[None], points, boxes)
            # the decoder's own 4x-downsampled resolution, targets area-averaged to it: 16x cheaper than full size
            target = F.adaptive_avg_pool2d(torch.stack(chosen)[:, None].float(), logits.shape[-2:]).expand_as(logits)
            per_mask = recipe.focal_weight * focal_loss(logits, target) + recipe.dice_weight * dice_loss(logits, target)
            # ambiguity-aware: only the best of the three multimask outputs learns; a box also trains output 0
            best = per_mask[:, 1:].min(1).values
            mask_terms.append(best + per_mask[:, 0] if use_box else best)
            actual = mask_iou(logits.detach(), target)
            iou_terms.append(((iou_pred - actual) ** 2).mean(1))
            ious.append(actual[:, 1:].max(1).values[torch.tensor([m.float().mean() < 0.5 for m in chosen])])
    mask_loss = torch.cat(mask_terms).mean()
    iou_loss = torch.cat(iou_terms).mean()
    loss = mask_loss + recipe.iou_weight * iou_loss
    parts = {"mask": mask_loss.item(), "iou_mse": iou_loss.item(), "object_best_iou": torch.cat(ious).mean().item()}
    return loss, parts


def train_sam(frames: Sequence, recipe: SamRecipe) -> nn.Module:
    """Train `sam_tiny` on `frames` (`corpus.CorpusFrame`: images and owner maps); returns it in eval mode.
    Deterministic for a given recipe and frames on one thread."""
    from moca.models import build_model

    torch.manual_seed(recipe.seed)
    sam = build_model("sam_tiny").train()
    data = prepare_frames(frames, sam.image_encoder.img_size, recipe.min_area_px, recipe.background_region)
    decay = [int(f * recipe.steps) for f in recipe.decay_at]

    def lr_factor(step: int) -> float:
        return min(1.0, (step + 1) / max(recipe.warmup_steps, 1)) * 0.1 ** sum(step >= d for d in decay)

    optimizer = torch.optim.AdamW(sam.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    generator = torch.Generator().manual_seed(recipe.seed)
    cpu_start = time.process_time()
    for step in progress(range(recipe.steps), desc="SAM stand-in"):
        index = torch.randint(len(data.images), (recipe.batch_size,), generator=generator).tolist()
        loss, parts = _step_loss(sam, data, index, generator, recipe)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 25 == 0 or step == recipe.steps - 1:
            log.info("SAM step %d: loss %.4f (%s)", step, loss.item(),
                     ", ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    log.info("SAM stand-in: %d steps in %.0f s CPU (%d threads)", recipe.steps, time.process_time() - cpu_start,
             torch.get_num_threads())
    return sam.eval()
