"""`moca train` end to end: config -> model, pairs, frames -> the loop -> adapters.pt + train_manifest.json.

Outputs in `--out`:
  config.yaml           the full resolved config of the run (every default spelled out)
  checkpoints/          step-NNNNNNNN.pt (+ .sha256), the newest `keep_last`
  adapters.pt           adapter state dict only; `torch.load(..., weights_only=True)` + `load_adapter_state_dict`
  train_manifest.json   inputs with hashes, config and its hash, steps, per-step losses, timing
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from moca.config import config_hash, from_dict, load_yaml, to_dict
from moca.data.audio import AudioConfig
from moca.data.layout import check_benchmark
from moca.errors import ConfigError, DataError
from moca.io import atomic_open, atomic_write_text, sha256_file, write_json
from moca.losses import LossConfig, PairObjective
from moca.models import MocaConfig
from moca.train import distributed as D
from moca.train.checkpoint import list_checkpoints
from moca.train.config import LoopConfig
from moca.train.data import PairDataset, read_pairs
from moca.train.loop import TrainResult, train
from moca.train.tracker import MlflowTracker, NullTracker, Tracker

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    root: str = ""  # the AVSBench root (the folder holding Single-source/ ...); --data overrides it
    benchmark: str = "s4"
    split: str = "train"


@dataclass
class TrainConfig(LoopConfig):
    model: MocaConfig = field(default_factory=MocaConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)


# Settings that change how a run executes but not what it computes: a run may resume with different values.
RUNTIME_FIELDS = ("num_workers", "log_every", "tracking", "experiment", "cache_prefix", "cache_dir", "device")


def load_train_config(path: str | Path) -> TrainConfig:
    return from_dict(TrainConfig, load_yaml(path), where=f"{path}:")


def resume_hash(cfg: TrainConfig) -> str:
    """Hash of everything that determines the trained weights (what a checkpoint must have been written with)."""
    data = {k: v for k, v in to_dict(cfg).items() if k not in RUNTIME_FIELDS}
    data["data"].pop("root")  # the same dataset may be mounted elsewhere when a job is rescheduled
    return config_hash(data)


def _plain(cfg: Any) -> dict[str, Any]:
    return json.loads(json.dumps(to_dict(cfg), default=str))  # tuples -> lists, for YAML and MLflow


def _frame_store(cfg: TrainConfig, root: Path) -> Any:
    from moca.data.datasets import TrainFrames, WaveformAudio

    return TrainFrames(root, cfg.data.benchmark, cfg.data.split, audio_fn=WaveformAudio(cfg.audio))


def _check_keys(pairs_path: Path, dataset: PairDataset) -> None:
    known = {entry.frame.key for entry in dataset.store.entries}
    unknown = [k for k in dataset.frame_keys() if k not in known]
    if unknown:
        raise DataError(pairs_path, f"{len(unknown)} frame key(s) not in the dataset, e.g. {unknown[:3]} "
                                    "(pairs mined on other data?)")


def _cache_id(cfg: TrainConfig, root: Path) -> str:
    """What the frozen features depend on: backbone and weights, where the trunk is cut, audio front end, data."""
    return config_hash({"backbone": cfg.model.backbone, "weights": _plain(cfg.model)["backbone_weights"],
                        "cut": cfg.model.adapter.positions[0], "audio": _plain(cfg.audio),
                        "data": [str(root.resolve()), cfg.data.benchmark, cfg.data.split]})


def _open_tracker(cfg: TrainConfig, out: Path, ctx: D.DistContext) -> Tracker:
    if not (cfg.tracking and ctx.is_main):
        return NullTracker()
    return MlflowTracker(cfg.experiment, run_name=out.name)


def run_training(cfg: TrainConfig, pairs: str | Path, out: str | Path, resume: bool = False,
                 data_root: str | Path | None = None) -> TrainResult:
    """Train adapters as `cfg` says on the mined `pairs`; writes the files listed in the module doc to `out`."""
    from moca.models import MocaModel

    pairs, out = Path(pairs), Path(out)
    root = Path(data_root or cfg.data.root)
    if not str(root) or not root.is_dir():
        raise DataError(root, "data root not found (set data.root in the config or pass --data)")
    check_benchmark(cfg.data.benchmark)
    if list_checkpoints(out / "checkpoints") and not resume:
        raise ConfigError(f"{out}: holds checkpoints of an earlier run; pass --resume to continue it or use a new "
                          "--out")
    ctx = D.init_distributed(cfg.device)
    digest = resume_hash(cfg)
    if ctx.is_main:
        atomic_write_text(out / "config.yaml", yaml.safe_dump(_plain(cfg), sort_keys=False))

    torch.manual_seed(cfg.seed)  # the adapters' initial weights (then broadcast from rank 0 anyway)
    model = MocaModel(cfg.model)
    dataset = PairDataset(read_pairs(pairs), _frame_store(cfg, root), seed=cfg.seed, positives=cfg.loss.positives,
                          negatives=cfg.loss.negatives)
    _check_keys(pairs, dataset)
    objective = PairObjective(cfg.loss)

    tracker = _open_tracker(cfg, out, ctx)
    tracker.log_params({**_plain(cfg), "config_hash": digest, "world_size": ctx.world_size})
    status = "FAILED"
    try:
        result = train(model, objective, dataset, cfg, out, config_hash=digest, model_id=_cache_id(cfg, root),
                       resume=resume, ctx=ctx, tracker=tracker)
        if ctx.is_main:
            _write_outputs(cfg, digest, pairs, root, out, result, ctx, tracker)
        status = "FINISHED"
    finally:
        tracker.close(status)
        D.shutdown(ctx)
    return result


def _write_outputs(cfg: TrainConfig, digest: str, pairs: Path, root: Path, out: Path, result: TrainResult,
                   ctx: D.DistContext, tracker: Tracker) -> None:
    with atomic_open(out / "adapters.pt", "wb") as handle:
        torch.save(result.adapters, handle)
    weights = cfg.model.backbone_weights
    manifest = {
        "inputs": {
            "pairs": {"path": str(pairs), "sha256": sha256_file(pairs)},
            "data": {"root": str(root), "benchmark": cfg.data.benchmark, "split": cfg.data.split},
            "backbone": {"name": cfg.model.backbone, "weights": None if weights is None else _plain(weights)},
        },
        "config": _plain(cfg),
        "config_hash": digest,
        "outputs": {"adapters": {"path": "adapters.pt", "sha256": sha256_file(out / "adapters.pt")}},
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "losses": result.losses,
        "seconds_per_step": result.seconds_per_step,
        "world_size": ctx.world_size,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    write_json(out / "train_manifest.json", manifest)
    for name in ("config.yaml", "adapters.pt", "train_manifest.json"):
        tracker.log_artifact(out / name)
    checkpoints = list_checkpoints(out / "checkpoints")
    if checkpoints:
        tracker.log_artifact(checkpoints[0].path)
