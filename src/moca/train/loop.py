"""The optimisation loop: adapters only, deterministic order, exact resume, data parallel over ranks.

One optimiser step = `batch_size` anchors, each with P mined positives and K negatives, split over ranks and
`grad_accum` micro-batches. For each micro-batch the frozen parts run without gradients (or come from the cache),
every image goes through the adapter-carrying suffix with its anchor's audio tokens (the candidates without
gradient when the objective says it needs none), and the loss compares the anchor's dense features with its
positives' and negatives'.

Exact resume: the data order is a function of (seed, epoch) and the step, every RNG is restored from the
checkpoint, and the frozen features are the same bits whether cached or not, so a run killed at any step and
resumed from its last checkpoint ends with the same adapter weights as one that never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from moca.errors import DataError
from moca.progress import progress
from moca.train import distributed as D
from moca.train.cache import FeatureCache
from moca.train.checkpoint import capture_rng_state, load_latest_checkpoint, restore_rng_state, save_checkpoint
from moca.train.config import LoopConfig
from moca.train.data import PairDataset, plan_epoch
from moca.train.tracker import NullTracker, Tracker

log = logging.getLogger(__name__)


class AdapterModel(Protocol):
    """What the loop needs from a model (`moca.models.MocaModel` provides it; tests use small stand-ins)."""

    def visual_prefix(self, image: torch.Tensor) -> torch.Tensor: ...

    def visual_suffix(self, prefix: torch.Tensor, audio_tokens: torch.Tensor) -> torch.Tensor: ...

    def encode_audio(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def trainable_parameters(self) -> Iterator[torch.nn.Parameter]: ...

    def adapter_state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_adapter_state_dict(self, state: dict[str, torch.Tensor]) -> Any: ...


class Objective(Protocol):
    """(anchor dense (b, h, w, D), positives (b, P, h, w, D), negatives (b, K, h, w, D), anchor audio embedding
    (b, D)) -> scalar loss. Optional attributes the loop reads: `candidates_need_grad` (default True; False runs
    positives and negatives without gradient) and `stats` (a dict of floats refreshed by each call, logged)."""

    def __call__(self, anchor: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                 audio_emb: torch.Tensor) -> torch.Tensor: ...


# Called once per optimiser step on the last micro-batch (keys and detached features, as the objective saw them);
# returns extra per-step diagnostics to log (e.g. the proof harness's PMA margin by region).
Inspector = Callable[[dict[str, Any], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], dict[str, float]]


@dataclass
class TrainResult:
    steps: int
    losses: list[float] = field(default_factory=list)  # mean loss over ranks, one per optimiser step
    # per step run by this process: loss, lr, grad norms (global and per adapter), objective stats, inspector's
    history: list[dict[str, float]] = field(default_factory=list)
    adapters: dict[str, torch.Tensor] = field(default_factory=dict)
    resumed_from: int = 0
    seconds_per_step: float = 0.0


def lr_factor(step: int, total: int, cfg: LoopConfig) -> float:
    """Multiplier of cfg.lr for optimiser step `step` (0-based): linear warm-up, then cosine or constant."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    progress_ = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress_, 1.0)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Features:
    """Frozen features of a micro-batch: from the caches when enabled, else computed now without gradients."""

    def __init__(self, model: AdapterModel, dataset: PairDataset, cfg: LoopConfig, model_id: str, device: torch.device):
        self.model, self.device = model, device
        self.visual = self.audio = None
        if cfg.cache_prefix:
            cache_dir = cfg.cache_dir or None
            self.visual = FeatureCache("visual_prefix", lambda x: (model.visual_prefix(x),), dataset.store.image,
                                       model_id, cache_dir)
            self.audio = FeatureCache("audio", model.encode_audio, dataset.store.audio, model_id, cache_dir)
            self.visual.warm(dataset.frame_keys(), device)
            self.audio.warm(dataset.anchor_keys(), device)

    def __call__(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> prefix of [anchors; positives; negatives] (b + bP + bK, ...) with each anchor's candidates together,
        audio tokens (b, ...), audio embedding (b, D)."""
        if self.visual is not None and self.audio is not None:
            keys = batch["anchor_key"] + [k for ks in batch["positive_keys"] for k in ks]
            keys += [k for ks in batch["negative_keys"] for k in ks]
            (prefix,) = self.visual.get(keys, self.device)
            tokens, emb = self.audio.get(batch["anchor_key"], self.device)
            return prefix, tokens, emb
        with torch.no_grad():
            images = torch.cat([batch["anchor_image"], batch["positive_images"].flatten(0, 1),
                                batch["negative_images"].flatten(0, 1)])
            prefix = self.model.visual_prefix(images.to(self.device))
            tokens, emb = self.model.encode_audio(batch["audio"].to(self.device))
        return prefix, tokens, emb


def micro_step_loss(model: AdapterModel, objective: Objective, features: _Features, batch: dict[str, Any],
                    autocast: contextlib.AbstractContextManager, inspect: Inspector | None = None
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one micro-batch and the diagnostics of `inspect` (empty without one)."""
    prefix, tokens, emb = features(batch)
    b = tokens.shape[0]
    n_pos, n_neg = len(batch["positive_keys"][0]), len(batch["negative_keys"][0])
    candidate_tokens = torch.cat([tokens.repeat_interleave(n_pos, 0), tokens.repeat_interleave(n_neg, 0)])
    with autocast:
        anchor = model.visual_suffix(prefix[:b], tokens)
        with torch.set_grad_enabled(getattr(objective, "candidates_need_grad", True) and torch.is_grad_enabled()):
            candidates = model.visual_suffix(prefix[b:], candidate_tokens)
    # the loss in fp32: PMA's max over pixel similarities and the small margin need more than bf16's 8 bits
    anchor, candidates = anchor.float(), candidates.float()
    positives = candidates[: b * n_pos].unflatten(0, (b, n_pos))
    negatives = candidates[b * n_pos :].unflatten(0, (b, n_neg))
    loss = objective(anchor, positives, negatives, emb.float())
    found = {}
    if inspect is not None:
        found = inspect(batch, anchor.detach(), positives.detach(), negatives.detach(), emb.detach().float())
    return loss, found


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in items[0]:
        values = [item[name] for item in items]
        out[name] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out


def train(
    model: AdapterModel,
    objective: Objective,
    dataset: PairDataset,
    cfg: LoopConfig,
    out: Path,
    *,
    config_hash: str,
    model_id: str,
    resume: bool = False,
    ctx: D.DistContext | None = None,
    tracker: Tracker | None = None,
    inspect: Inspector | None = None,
) -> TrainResult:
    """Train the adapters of `model` on `dataset`; checkpoints go to `out/checkpoints` (rank 0 only).

    `inspect` (rank 0 only) adds diagnostics of each step's last micro-batch to `result.history` and the tracker."""
    ctx = ctx or D.DistContext()
    tracker = tracker if (tracker is not None and ctx.is_main) else NullTracker()
    out = Path(out)
    cfg.micro_batch(ctx.world_size)  # fails early when the global batch does not split over ranks x accumulation
    steps_per_epoch = len(dataset) // cfg.batch_size
    if steps_per_epoch == 0:
        raise DataError(out, f"{len(dataset)} anchors cannot fill one batch of {cfg.batch_size}; lower batch_size")
    total = cfg.epochs * steps_per_epoch
    total = min(total, cfg.max_steps) if cfg.max_steps else total

    seed_everything(cfg.seed + ctx.rank)
    model.to(ctx.device)  # type: ignore[attr-defined]
    # No dropout anywhere: the frozen trunk must compute what it computes at inference (and what the cache holds).
    model.eval()  # type: ignore[attr-defined]
    params = list(model.trainable_parameters())
    D.broadcast_parameters_(ctx, params)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, cfg))

    result = TrainResult(steps=0)
    if resume:
        state = load_latest_checkpoint(out / "checkpoints", config_hash) if ctx.is_main else None
        state = D.broadcast_object(ctx, state)
        if state is not None:
            model.load_adapter_state_dict(state["adapters"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            rng = state["rng"]
            if len(rng) == ctx.world_size:
                restore_rng_state(rng[ctx.rank])
            else:
                log.warning("checkpoint from %d rank(s), now %d: RNG states not restored", len(rng), ctx.world_size)
            result.steps = result.resumed_from = int(state["step"])
            result.losses = list(state["losses"])

    use_bf16 = cfg.bf16 and ctx.device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
    features = _Features(model, dataset, cfg, model_id, ctx.device)
    dataset.load_inputs = not cfg.cache_prefix

    started = time.monotonic()
    bar = iter(progress(range(result.steps, total), desc="train", total=total - result.steps))
    while result.steps < total:
        epoch, first = divmod(result.steps, steps_per_epoch)
        dataset.set_epoch(epoch)
        plan = plan_epoch(len(dataset), cfg.seed, epoch, cfg.batch_size, ctx.world_size, ctx.rank, cfg.grad_accum)
        plan = plan[first : first + total - result.steps]
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=[mb for step in plan for mb in step], num_workers=cfg.num_workers,
            collate_fn=_collate,
        )
        batches = iter(loader)
        for _ in plan:
            tick = time.monotonic()
            step_loss = 0.0
            for _micro in range(cfg.grad_accum):
                loss, found = micro_step_loss(model, objective, features, next(batches), autocast,
                                              inspect if ctx.is_main else None)
                (loss / cfg.grad_accum).backward()
                step_loss += float(loss.detach()) / cfg.grad_accum
            D.average_gradients_(ctx, params)
            adapter_norms = _adapter_grad_norms(model)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            result.steps += 1
            result.losses.append(D.mean_over_ranks(ctx, step_loss))
            next(bar, None)
            seconds = time.monotonic() - tick
            metrics = {"loss": result.losses[-1], "lr": lr, "grad_norm": float(grad_norm), **adapter_norms,
                       **dict(getattr(objective, "stats", None) or {}), **found}
            result.history.append(metrics)
            if result.steps % cfg.log_every == 0:
                tracker.log_metrics({**metrics, "samples_per_s": cfg.batch_size / max(seconds, 1e-9), "epoch": epoch},
                                    step=result.steps)
            if result.steps % cfg.checkpoint_every == 0 or result.steps == total:
                _checkpoint(out, result, model, optimizer, scheduler, cfg, config_hash, ctx, epoch)
    next(bar, None)  # let the progress generator log its summary line
    done = result.steps - result.resumed_from
    result.seconds_per_step = (time.monotonic() - started) / max(done, 1)
    result.adapters = {k: v.detach().cpu().clone() for k, v in model.adapter_state_dict().items()}
    return result


def _adapter_grad_norms(model: AdapterModel) -> dict[str, float]:
    """Gradient norm of each adapter (`grad_norm/<block>`), when the model keeps them in an `adapters` ModuleDict."""
    adapters = getattr(model, "adapters", None)
    if not isinstance(adapters, torch.nn.ModuleDict):
        return {}
    norms = {}
    for name, adapter in adapters.items():
        grads = [p.grad.detach().float().norm() for p in adapter.parameters() if p.grad is not None]
        norms[f"grad_norm/{name}"] = float(torch.stack(grads).norm()) if grads else 0.0
    return norms


def _checkpoint(out: Path, result: TrainResult, model: AdapterModel, optimizer: torch.optim.Optimizer,
                scheduler: Any, cfg: LoopConfig, config_hash: str, ctx: D.DistContext, epoch: int) -> None:
    rng = D.gather_objects(ctx, capture_rng_state())  # collective: every rank takes part
    if ctx.is_main:
        state = {
            "config_hash": config_hash,
            "epoch": epoch,
            "adapters": {k: v.detach().cpu() for k, v in model.adapter_state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng,
            "losses": result.losses,
        }
        save_checkpoint(out / "checkpoints", result.steps, state, cfg.keep_last)
    D.barrier(ctx)
