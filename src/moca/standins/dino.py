"""STAND-IN for DINO weights: self-distillation with no labels (Caron et al. 2021) of the registry's `dino_tiny`.

The recipe keeps what makes DINO DINO (facebookresearch/dino, `main_dino.py`), scaled to a 2-block ViT and a few
minutes of one CPU thread:
- multi-crop: 2 global views (scale 0.4-1, 224 px) and `local_crops` local views (scale 0.05-0.4, 96 px) of each
  image, with DINO's augmentations (flip, colour jitter p 0.8, grayscale p 0.2, blur, solarisation);
- a student and a teacher of the same architecture, each ViT + projection head (3-layer MLP, L2-normalised
  bottleneck, weight-normalised prototype layer); the teacher sees only the global views and is an exponential
  moving average of the student (momentum cosine-scheduled to 1), never trained by gradient;
- cross-entropy between the teacher's *centred* and *sharpened* (temperature 0.04) distribution and the student's
  (temperature 0.1) over every pair of different views; the centre is an EMA of the teacher's batch mean (this
  and the sharpening are what prevent collapse);
- AdamW with a linear warm-up then cosine learning rate, weight decay cosine 0.04 -> 0.4 (none on biases and
  norms), per-parameter gradient clipping at 3, the prototype layer frozen for the first steps.
Scaled down: head widths, prototype count, batch, step count; no stochastic depth (the registry's model has none).
No label, mask or audio is read: only the corpus's images. The released checkpoint is the teacher's ViT, as DINO
releases its teacher; its CLS token is what `moca.mining` reads.
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
    batch_size: int = 16
    local_crops: int = 6
    global_size: int = 224
    local_size: int = 96
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)
    prototypes: int = 1024  # DINO's out_dim (65536 for ImageNet)
    head_hidden: int = 256  # 2048 in DINO
    head_bottleneck: int = 64  # 256 in DINO
    head_batch_norm: bool = False  # DINO's use_bn_in_head
    lr: float = 2e-3
    min_lr: float = 1e-5
    warmup_steps: int = 30
    weight_decay: tuple[float, float] = (0.04, 0.4)
    momentum: tuple[float, float] = (0.99, 1.0)  # 0.996 in DINO, whose runs are ~100x longer
    student_temp: float = 0.1
    teacher_temp: tuple[float, float] = (0.04, 0.04)  # warm-up start and final value
    teacher_temp_warmup_steps: int = 0
    center_momentum: float = 0.9
    clip_grad: float = 3.0
    freeze_last_layer_steps: int = 30
    colour_jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    background_swap_p: float = 0.0  # student views: the objects on a flat background with this probability
    teacher_background_swap_p: float = 0.0  # the same for the teacher's global views (Ryali et al. 2021)
    objective: str = "dino"  # "dino": self-distillation; "infonce": contrastive with the same EMA teacher
    temperature: float = 0.2  # InfoNCE (MoCo v3's)
    seed: int = 0


class DinoHead(nn.Module):
    """DINO's projection head: MLP -> L2-normalised bottleneck -> prototypes with unit-norm weights (DINO's
    weight-normalised last layer with its gain fixed at 1, `norm_last_layer=True`)."""

    def __init__(self, dim: int, prototypes: int, hidden: int, bottleneck: int, batch_norm: bool = False):
        super().__init__()
        norm = (lambda: nn.BatchNorm1d(hidden)) if batch_norm else nn.Identity  # DINO's use_bn_in_head
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), norm(), nn.GELU(), nn.Linear(hidden, hidden), norm(),
                                 nn.GELU(), nn.Linear(hidden, bottleneck))
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


def cosine_schedule(start: float, end: float, steps: int, warmup_steps: int = 0, warmup_from: float = 0.0) -> list[float]:
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
    """Images `index` of `images` (N, 3, H, W), each with probability `p` pasted (its `foreground` (N, H, W)
    pixels) onto a random other image of the corpus: the background-swap augmentation of Ryali et al. 2021, which
    stops a view-invariance objective from recognising an image by its background."""
    swap = torch.rand(len(index), generator=generator) < p
    flat = torch.randint(70, 171, (len(index), 3, 1, 1), generator=generator, dtype=torch.uint8)
    keep = foreground[index] | ~swap[:, None, None]
    return torch.where(keep[:, None], images[index], flat)


def train_dino(images: torch.Tensor, recipe: DinoRecipe, foreground: torch.Tensor | None = None) -> nn.Module:
    """DINO self-distillation of `dino_tiny` on `images` (N, 3, H, W) uint8; returns the teacher ViT (eval mode).
    Deterministic for a given recipe and images on one thread."""
    from moca.models import build_model

    torch.manual_seed(recipe.seed)
    backbone = build_model("dino_tiny").train()
    dim = backbone.embed_dim
    student = nn.ModuleDict({"vit": backbone, "head": DinoHead(dim, recipe.prototypes, recipe.head_hidden,
                                                                recipe.head_bottleneck, recipe.head_batch_norm)})
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

        def views(transform: nn.Module, swap_p: float) -> torch.Tensor:
            batch = images[index] if foreground is None else swap_backgrounds(images, foreground, index, swap_p,
                                                                              generator)
            return torch.stack([transform(x) for x in batch])

        teacher_globals = [views(first, recipe.teacher_background_swap_p), views(second, recipe.teacher_background_swap_p)]
        globals_ = [views(first, recipe.background_swap_p), views(second, recipe.background_swap_p)]
        locals_ = [views(local, recipe.background_swap_p) for _ in range(recipe.local_crops)]
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
