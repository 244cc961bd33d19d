"""STAND-IN for DINO weights: label-free view-invariance training of the registry's `dino_tiny` (DINO's recipe).

What is kept of DINO (Caron et al. 2021, facebookresearch/dino `main_dino.py`): a student and a teacher of the same
architecture (ViT + projection head: 3-layer MLP to an L2-normalised bottleneck); the teacher sees global views
(scale 0.4-1, 224 px), gets no gradient and follows the student by EMA; DINO's augmentations (random resized crop,
flip, colour jitter, blur, solarisation); centring of the teacher's outputs and a sharpening temperature; AdamW
with warm-up and cosine learning rate, weight decay cosine 0.04 -> 0.4 (none on biases and norms), per-parameter
gradient clipping at 3. The released checkpoint is the teacher's ViT, as DINO releases its teacher; its CLS token
is what `moca.mining` reads.

What the default recipe changes, each measured on the gate (docs/models.md, "Stand-in models", has the table):
- objective `infonce`: each student view must pick its own image's teacher view among the batch (temperature 0.2)
  on batch-centred embeddings. DINO's own loss (`objective="dino"`, kept) collapsed to uniform outputs within
  the few hundred steps a CPU build affords; so did InfoNCE without the centring (a shared CLS component grows
  faster than any image's own);
- teacher momentum 0 (the teacher is the student of the step before, without gradient): at this length any lag
  only slows learning (mined positives sharing the sounding class: 10 % at 0.9, 13 % at 0.5 -> 0.9, 16 % at 0);
- no hue jitter or grayscale, as colour is part of what makes a synthetic class; no local crops (they cost more
  than they gave);
- background removal (Ryali et al. 2021, "Characterizing and improving the robustness of self-supervised
  learning through background augmentations"): the teacher's views show the image's objects on a flat
  background, the student's do with probability 0.3. In this world every crop of a frame shares its background,
  which would otherwise be the easiest thing to be invariant to; the foreground comes from the corpus's owner
  maps, class-agnostic (which pixels belong to some object), the way Ryali et al. used saliency masks.
No class label and no audio is read.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from moca.mining.descriptors import IMAGENET_MEAN, IMAGENET_STD
from moca.progress import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DinoRecipe:
    steps: int = 300
    batch_size: int = 32
    local_crops: int = 0  # DINO: 8 local views
    global_size: int = 224
    local_size: int = 96
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)
    prototypes: int = 1024  # DINO's out_dim (65536 for ImageNet); objective "dino" only
    head_hidden: int = 256  # 2048 in DINO
    head_bottleneck: int = 64  # 256 in DINO
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 10
    weight_decay: tuple[float, float] = (0.04, 0.4)
    momentum: tuple[float, float] = (0.0, 0.0)  # teacher EMA, cosine from first to second; DINO: 0.996 -> 1
    student_temp: float = 0.1  # objective "dino"
    teacher_temp: tuple[float, float] = (0.04, 0.04)  # objective "dino": warm-up start and final value
    teacher_temp_warmup_steps: int = 0
    center_momentum: float = 0.9  # objective "dino"
    clip_grad: float = 3.0
    freeze_last_layer_steps: int = 10  # objective "dino"
    colour_jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.0)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8
    grayscale_p: float = 0.0  # DINO: 0.2
    # Views with the objects on a flat background, student / teacher. Off: in the worlds the stand-in serves, the
    # scene is what predicts the sounding class, and a descriptor taught to ignore backgrounds mined same-class
    # pairs less often than a random ViT (gates: 0.379 vs 0.651 at k=5 with 0.3 / 1.0).
    background_swap_p: float = 0.0
    teacher_background_swap_p: float = 0.0
    objective: str = "infonce"  # or "dino": DINO's self-distillation loss (collapsed at this budget)
    temperature: float = 0.2  # objective "infonce" (MoCo v3's)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in ("infonce", "dino"):
            raise ValueError(f"DinoRecipe.objective: {self.objective!r} is not 'infonce' or 'dino'")


class DinoHead(nn.Module):
    """DINO's projection head: MLP -> L2-normalised bottleneck -> prototypes with unit-norm weights (DINO's
    weight-normalised last layer with its gain fixed at 1, `norm_last_layer=True`)."""

    def __init__(self, dim: int, prototypes: int, hidden: int, bottleneck: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.prototypes = nn.Parameter(torch.empty(prototypes, bottleneck))
        nn.init.trunc_normal_(self.prototypes, std=0.02)
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The L2-normalised bottleneck."""
        return F.normalize(self.mlp(x), dim=-1)

    def centred_embed(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck minus its batch mean, L2-normalised: centring as in DINO, so the features cannot all
        agree (what a from-scratch ViT otherwise does first, letting a shared CLS component swamp the image's)."""
        bottleneck = self.mlp(x)
        return F.normalize(bottleneck - bottleneck.mean(0, keepdim=True), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.embed(x), F.normalize(self.prototypes, dim=-1))


def cls_features(vit: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The final-norm CLS token of a timm VisionTransformer for images of any multiple of the patch size (DINO's
    `interpolate_pos_encoding`): `forward_features(images)[:, 0]` at the model's own size, bicubic-resampled
    position embeddings elsewhere."""
    from timm.layers import resample_abs_pos_embed

    tokens = vit.patch_embed.norm(vit.patch_embed.proj(images).flatten(2).transpose(1, 2))
    grid = (images.shape[-2] // vit.patch_embed.patch_size[0], images.shape[-1] // vit.patch_embed.patch_size[1])
    pos = vit.pos_embed
    if tuple(vit.patch_embed.grid_size) != grid:
        pos = resample_abs_pos_embed(pos, new_size=grid, old_size=vit.patch_embed.grid_size, num_prefix_tokens=1)
    tokens = torch.cat([vit.cls_token.expand(len(tokens), -1, -1), tokens], dim=1) + pos
    return vit.norm(vit.blocks(vit.norm_pre(tokens)))[:, 0]


def dino_loss(student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor, student_temp: float,
              teacher_temp: float, global_views: int = 2) -> torch.Tensor:
    """DINO's loss: `student` (V*B, K) logits of all V views, `teacher` (G*B, K) of the G global views, views
    stacked view-major. Mean over (teacher view, different student view) pairs of H(softmax((t - c) / T_t),
    softmax(s / T_s))."""
    student_views = (student / student_temp).chunk(len(student) // (len(teacher) // global_views))
    targets = F.softmax((teacher - center) / teacher_temp, dim=-1).chunk(global_views)
    terms = [(-target * F.log_softmax(view, dim=-1)).sum(-1).mean()
             for t_index, target in enumerate(targets) for v_index, view in enumerate(student_views)
             if v_index != t_index]
    return torch.stack(terms).mean()


def infonce_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
                 global_views: int = 2) -> torch.Tensor:
    """Contrastive alternative (MoCo v3 with multi-crop): `student` (V*B, D) and `teacher` (G*B, D) L2-normalised
    embeddings, view-major; each student view must pick its own image's teacher view (another view) among the
    batch's. Mean over (teacher view, different student view) pairs of the cross-entropy."""
    batch = len(teacher) // global_views
    targets = torch.arange(batch)
    terms = [F.cross_entropy(view @ target.T / temperature, targets)
             for t_index, target in enumerate(teacher.chunk(global_views))
             for v_index, view in enumerate(student.split(batch)) if v_index != t_index]
    return torch.stack(terms).mean()


def cosine_schedule(start: float, end: float, steps: int, warmup_steps: int = 0,
                    warmup_from: float = 0.0) -> list[float]:
    """DINO's `cosine_scheduler` per step: linear warm-up from `warmup_from`, then cosine from `start` to `end`."""
    warmup = [warmup_from + (start - warmup_from) * i / warmup_steps for i in range(warmup_steps)]
    rest = max(steps - warmup_steps, 0)
    cosine = [end + 0.5 * (start - end) * (1 + math.cos(math.pi * i / max(rest, 1))) for i in range(rest)]
    return (warmup + cosine)[:steps]


def _augmentations(recipe: DinoRecipe) -> tuple[nn.Module, nn.Module, nn.Module]:
    """DINO's `DataAugmentationDINO` on uint8 tensors: first global, second global, local view transforms."""
    from torchvision.transforms import v2

    def view(size: int, scale: tuple[float, float], blur_p: float, solarize_p: float) -> nn.Module:
        return v2.Compose([
            v2.RandomResizedCrop(size, scale=scale, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(*recipe.colour_jitter)], p=recipe.jitter_p),
            v2.RandomGrayscale(p=recipe.grayscale_p),
            v2.RandomApply([v2.GaussianBlur(9, sigma=(0.1, 2.0))], p=blur_p),
            v2.RandomSolarize(128, p=solarize_p),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ])

    return (view(recipe.global_size, recipe.global_scale, 1.0, 0.0),
            view(recipe.global_size, recipe.global_scale, 0.1, 0.2),
            view(recipe.local_size, recipe.local_scale, 0.5, 0.0))


def _param_groups(module: nn.Module) -> list[dict]:
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        (no_decay if p.ndim == 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def swap_backgrounds(images: torch.Tensor, foreground: torch.Tensor, index: torch.Tensor, p: float,
                     generator: torch.Generator) -> torch.Tensor:
    """Images `index` of `images` (N, 3, H, W) uint8, each with probability `p` reduced to its `foreground`
    (N, H, W) pixels on a flat random colour in the range of the corpus's backgrounds (Ryali et al.'s background
    removal), so a view-invariance objective cannot recognise an image by its background."""
    swap = torch.rand(len(index), generator=generator) < p
    flat = torch.randint(70, 171, (len(index), 3, 1, 1), generator=generator, dtype=torch.uint8)
    keep = foreground[index] | ~swap[:, None, None]
    return torch.where(keep[:, None], images[index], flat)


def _views(images: torch.Tensor, foreground: torch.Tensor | None, index: torch.Tensor, transform: nn.Module,
           swap_p: float, generator: torch.Generator) -> torch.Tensor:
    """One augmented view of each image `index`, its background removed with probability `swap_p`."""
    batch = images[index] if foreground is None else swap_backgrounds(images, foreground, index, swap_p, generator)
    return torch.stack([transform(x) for x in batch])


def train_dino(images: torch.Tensor, recipe: DinoRecipe, foreground: torch.Tensor | None = None) -> nn.Module:
    """Train `dino_tiny` on `images` (N, 3, H, W) uint8 by `recipe` (module doc); `foreground` (N, H, W) bool marks
    object pixels for background removal (None: none). Returns the teacher ViT in eval mode. Deterministic for a
    given recipe and images on one thread."""
    from moca.models import build_model

    torch.manual_seed(recipe.seed)
    backbone = build_model("dino_tiny").train()
    dim = backbone.embed_dim
    student = nn.ModuleDict({"vit": backbone, "head": DinoHead(dim, recipe.prototypes, recipe.head_hidden,
                                                                recipe.head_bottleneck)})
    teacher = copy.deepcopy(student).requires_grad_(False)
    optimizer = torch.optim.AdamW(_param_groups(student), lr=recipe.lr)
    steps = recipe.steps
    lr = cosine_schedule(recipe.lr, recipe.min_lr, steps, recipe.warmup_steps)
    weight_decay = cosine_schedule(*recipe.weight_decay, steps)
    momentum = cosine_schedule(*recipe.momentum, steps)
    teacher_temp = cosine_schedule(recipe.teacher_temp[1], recipe.teacher_temp[1], steps,
                                   recipe.teacher_temp_warmup_steps, recipe.teacher_temp[0])
    center = torch.zeros(1, recipe.prototypes)
    first, second, local = _augmentations(recipe)
    generator = torch.Generator().manual_seed(recipe.seed)
    cpu_start = time.process_time()
    for step in progress(range(steps), desc="DINO stand-in"):
        for group in optimizer.param_groups:
            group["lr"] = lr[step]
            if group["weight_decay"]:
                group["weight_decay"] = weight_decay[step]
        index = torch.randint(len(images), (recipe.batch_size,), generator=generator)

        teacher_p, student_p = recipe.teacher_background_swap_p, recipe.background_swap_p
        teacher_globals = [_views(images, foreground, index, t, teacher_p, generator) for t in (first, second)]
        globals_ = [_views(images, foreground, index, t, student_p, generator) for t in (first, second)]
        locals_ = [_views(images, foreground, index, local, student_p, generator) for _ in range(recipe.local_crops)]
        contrastive = recipe.objective == "infonce"
        with torch.no_grad():
            teacher_feat = cls_features(teacher["vit"], torch.cat(teacher_globals))
            teacher_out = teacher["head"].centred_embed(teacher_feat) if contrastive else teacher["head"](teacher_feat)
        student_out = torch.cat([(student["head"].centred_embed if contrastive else student["head"])(
            cls_features(student["vit"], torch.cat(views))) for views in (globals_, locals_) if views])
        if contrastive:
            loss = infonce_loss(student_out, teacher_out, recipe.temperature)
        else:
            loss = dino_loss(student_out, teacher_out, center, recipe.student_temp, teacher_temp[step])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for p in student.parameters():  # DINO's clip_gradients: each parameter's gradient norm on its own
            if p.grad is not None:
                p.grad.mul_(torch.clamp(recipe.clip_grad / (p.grad.norm() + 1e-6), max=1.0))
        if step < recipe.freeze_last_layer_steps:
            student["head"].prototypes.grad = None
        optimizer.step()
        with torch.no_grad():
            for p_teacher, p_student in zip(teacher.parameters(), student.parameters()):
                p_teacher.mul_(momentum[step]).add_(p_student.detach(), alpha=1 - momentum[step])
            if not contrastive:
                center.mul_(recipe.center_momentum).add_(teacher_out.mean(0, keepdim=True),
                                                         alpha=1 - recipe.center_momentum)
        if (step % 25 == 0 or step == steps - 1) and contrastive:
            log.info("DINO stand-in step %d: InfoNCE loss %.4f lr %.2e", step, loss.item(), lr[step])
        elif step % 25 == 0 or step == steps - 1:
            target = F.softmax((teacher_out - center) / teacher_temp[step], dim=-1)
            entropy = -(target * target.clamp_min(1e-12).log()).sum(-1).mean().item()
            used = len(target.argmax(-1).unique())  # collapse shows as entropy -> log(K) or a single prototype
            log.info("DINO step %d: loss %.4f lr %.2e teacher entropy %.2f (max %.2f), prototypes used %d/%d",
                     step, loss.item(), lr[step], entropy, math.log(recipe.prototypes), used, len(target))
    log.info("DINO stand-in: %d steps in %.0f s CPU (%d threads)", steps, time.process_time() - cpu_start,
             torch.get_num_threads())
    return teacher["vit"].eval()
