"""Training configuration. Every default is method.md item 7; YAML files override them (configs/*.yaml).

`LoopConfig` holds what the optimisation loop itself reads; `TrainConfig` (in `moca.train.run`) adds the model,
loss, data and audio sections that `moca train` needs to build the pieces the loop runs on.
"""

from __future__ import annotations

from dataclasses import dataclass

from moca.errors import ConfigError


@dataclass
class LoopConfig:
    # optimiser (AdamW over the adapter parameters only)
    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 0.0  # max global grad norm; 0 = no clipping (the norm is still logged)
    # schedule, stepped once per optimiser step
    schedule: str = "cosine"  # cosine | constant
    warmup_steps: int = 0  # linear warm-up from 0 before the cosine decay
    min_lr_ratio: float = 0.0  # cosine floor, as a fraction of lr
    # batches: `batch_size` is the global batch of one optimiser step, split over ranks and accumulation steps
    batch_size: int = 32
    grad_accum: int = 1
    epochs: int = 15
    max_steps: int = 0  # stop after this many optimiser steps (0 = run all epochs)
    bf16: bool = True  # bf16 autocast, used on GPU only
    seed: int = 0
    # checkpoints and logging
    checkpoint_every: int = 200  # optimiser steps
    keep_last: int = 3
    log_every: int = 1
    tracking: bool = True  # log params, per-step metrics and artifacts to MLflow
    experiment: str = "moca-train"
    # data loading and the frozen-prefix cache
    num_workers: int = 0
    # compute the frozen trunk before the first adapter once per frame (exact: no augmentation)
    cache_prefix: bool = True
    cache_dir: str = ""  # "" = keep the cache in memory; a folder = tensor files there, reused across runs
    device: str = "auto"  # auto | cpu | cuda

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule: {self.schedule!r} is not one of cosine, constant")
        for name in ("batch_size", "grad_accum", "epochs", "checkpoint_every", "keep_last", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("max_steps", "warmup_steps", "num_workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device: {self.device!r} is not one of auto, cpu, cuda")

    def micro_batch(self, world_size: int) -> int:
        """Samples per forward pass on one rank: the global batch split over ranks and accumulation steps."""
        parts = world_size * self.grad_accum
        if self.batch_size % parts:
            raise ConfigError(
                f"batch_size {self.batch_size} is not divisible by world_size {world_size} x grad_accum "
                f"{self.grad_accum}"
            )
        return self.batch_size // parts
