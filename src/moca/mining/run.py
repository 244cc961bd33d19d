"""The mining step: frames of one split -> DINO descriptors (cached) -> kNN pairs -> Parquet tables + manifest.

Outputs in `out/` (all written atomically; the manifest last, so its presence means the step completed):
  pairs.parquet      one row per (anchor, positive): anchor_key, anchor_video, positive_key, positive_video,
                     rank (1 = most similar), score (cosine similarity of the DINO descriptors)
  negatives.parquet  one row per (anchor, negative): anchor_key, anchor_video, negative_key, negative_video,
                     draw (0-based sampling order), score. A second flat table rather than a list column, so
                     either table can be filtered or joined on anchor_key without exploding lists.
  mining_manifest.json  inputs with content hashes, config, model, counts, timings, output hashes
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from moca.config import config_hash, to_dict
from moca.data.layout import SPLITS, list_videos, metadata_path
from moca.errors import ConfigError, DataError
from moca.io import atomic_open, sha256_file, write_json
from moca.mining.descriptors import DescriptorCache, Encoder, cls_encoder, describe_frames
from moca.mining.knn import Neighbours, mine_neighbours
from moca.models.weights import WeightsSpec

DINO_MODELS = ("dino_tiny", "dino_vitb16")
MANIFEST = "mining_manifest.json"
MINING_METHODS = ("exact", "ivf")


@dataclass
class MiningConfig:
    model: str = "dino_vitb16"
    k: int = 10  # positives per anchor
    negatives: int = 10  # sampled negatives per anchor (training adds in-batch ones)
    batch_size: int = 64  # frames per encoder forward
    chunk_size: int = 256  # anchor rows per similarity block: peak ~30 bytes x chunk_size x N
    image_size: int = 224
    seed: int = 0  # negative sampling, and the init of a model run without weights
    device: str = "cpu"  # the DINO encoder's, and exact mining's (its block buffers live there)
    # exact: blocked N x N (memory flat, time N^2; fine to ~100k frames on CPU, 1M on a GPU);
    # ivf: faiss inverted file for positives + a sampled median for negatives (moca.mining.ivf), for ~1M on CPU
    method: str = "exact"
    ivf_lists: int = 0  # coarse centroids; 0 = about 2 sqrt(N)
    ivf_probes: int = 8  # lists scanned per anchor
    ivf_candidates: int = 0  # neighbours re-scored exactly per anchor; 0 = 2k + longest video - 1
    quantile_sample: int = 1024  # frames the ivf negatives' median is estimated from
    split: str = "train"  # the split whose frames are mined
    # The DINO checkpoint {uri, sha256}; dino_vitb16 refuses to run without one unless this is "random" (a
    # randomly initialised DINO mines meaningless pairs: smoke tests only). dino_tiny (tests, demo) needs none.
    weights: WeightsSpec | str | None = None

    def __post_init__(self) -> None:
        if self.model not in DINO_MODELS:
            raise ConfigError(f"mining.model: {self.model!r} is not one of {DINO_MODELS}")
        if self.split not in SPLITS:
            raise ConfigError(f"mining.split: {self.split!r} is not one of {SPLITS}")
        if self.method not in MINING_METHODS:
            raise ConfigError(f"mining.method: {self.method!r} is not one of {MINING_METHODS}")
        for name in ("k", "batch_size", "chunk_size", "image_size", "ivf_probes", "quantile_sample"):
            if getattr(self, name) < 1:
                raise ConfigError(f"mining.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("negatives", "ivf_lists", "ivf_candidates"):
            if getattr(self, name) < 0:
                raise ConfigError(f"mining.{name}: must be >= 0, got {getattr(self, name)}")

    def neighbours(self, descriptors: np.ndarray, videos: np.ndarray) -> Neighbours:
        """Mine `descriptors` (N, D) of frames labelled by `videos` (N,) with this config's method."""
        if self.method == "ivf":
            from moca.mining.ivf import IvfSettings, mine_neighbours_ivf

            settings = IvfSettings(self.ivf_lists, self.ivf_probes, self.ivf_candidates, self.quantile_sample)
            return mine_neighbours_ivf(descriptors, videos, self.k, self.negatives, self.seed, self.chunk_size,
                                       settings)
        return mine_neighbours(descriptors, videos, self.k, self.negatives, self.seed, self.chunk_size, self.device)


def dino_identity(config: MiningConfig) -> tuple[Any, str, dict[str, Any]]:
    """The weights spec to build with (sha256 filled in), the model's cache identity, and its manifest entry.

    Without weights the model is randomly initialised from `config.seed`, so the identity (and cache) is
    reproducible; with weights, the identity is the checkpoint's sha256.
    """
    from moca.models import fetch_weights
    from moca.models.registry import usable_weights

    weights = usable_weights(config.model, config.weights, "mining.weights")
    if weights is None:
        return None, f"{config.model}:random-init-seed={config.seed}", {"name": config.model, "weights_uri": None}
    digest = weights.sha256 or sha256_file(fetch_weights(weights))
    info = {"name": config.model, "weights_uri": weights.uri, "weights_sha256": digest}
    return WeightsSpec(weights.uri, sha256=digest), f"{config.model}:sha256={digest}", info


def build_dino_encoder(config: MiningConfig, weights: Any = None) -> Encoder:
    """The registry's DINO model (`config.model`) as a CLS encoder; `weights` as `dino_identity` returns it."""
    import torch

    from moca.models import build_model

    if weights is None:
        torch.manual_seed(config.seed)
    return cls_encoder(build_model(config.model, weights), config.device)


def _built_on_first_use(build: Callable[[], Encoder]) -> Encoder:
    """Defer building the model until a frame misses the cache: a fully cached rerun never loads it."""
    built: list[Encoder] = []

    def encode(images):
        if not built:
            built.append(build())
        return built[0](images)

    return encode


def _tables(keys: list[str], videos: list[str], found: Neighbours) -> tuple[pd.DataFrame, pd.DataFrame]:
    keys_arr, videos_arr = np.asarray(keys, dtype=object), np.asarray(videos, dtype=object)

    def flat(indices: np.ndarray, scores: np.ndarray, other: str, order: str, first: int) -> pd.DataFrame:
        anchor, slot = np.nonzero(indices >= 0)
        picked = indices[anchor, slot]
        return pd.DataFrame({
            "anchor_key": keys_arr[anchor], "anchor_video": videos_arr[anchor],
            f"{other}_key": keys_arr[picked], f"{other}_video": videos_arr[picked],
            order: (slot + first).astype(np.int32), "score": scores[anchor, slot].astype(np.float32),
        })

    return (flat(found.positives, found.positive_scores, "positive", "rank", 1),
            flat(found.negatives, found.negative_scores, "negative", "draw", 0))


def _write_parquet(table: pd.DataFrame, path: Path) -> str:
    with atomic_open(path, "wb") as handle:
        table.to_parquet(handle, index=False)
    return sha256_file(path)


def mine_pairs(
    data: str | Path,
    benchmark: str,
    out: str | Path,
    config: MiningConfig | None = None,
    encoder: Encoder | None = None,
    model_id: str | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Mine pairs for every frame of `benchmark`/`config.split` under `data`; write the tables and manifest to `out`.

    `encoder` (with its `model_id`, the cache identity) replaces the registry's DINO model, e.g. in tests.
    The descriptor cache defaults to `out/descriptor_cache`. Returns the manifest.
    """
    config = config or MiningConfig()
    out, split = Path(out), config.split
    started = time.perf_counter()
    listed = list_videos(data, benchmark, split)
    if len(listed) < 2:  # positives come from other videos: one video gives no pair at all
        raise DataError(metadata_path(data, benchmark), f"{len(listed)} {split} video(s) listed; mining pairs needs "
                                                        "at least 2 (positives come from other videos)")
    frames_with_video = [(video.name, frame) for video in listed for frame in video.frames]
    videos, frames = (list(column) for column in zip(*frames_with_video))
    if encoder is None:
        weights, model_id, model_info = dino_identity(config)
        encoder = _built_on_first_use(lambda: build_dino_encoder(config, weights))
    else:
        if model_id is None:
            raise ValueError("an injected encoder needs a model_id (its descriptor cache identity)")
        model_info = {"name": model_id, "injected": True}
    cache = DescriptorCache(Path(cache_dir) if cache_dir is not None else out / "descriptor_cache", model_id)
    descriptors, hashes, stats = describe_frames(frames, encoder, cache, config.batch_size, config.image_size)
    described = time.perf_counter()
    found = config.neighbours(descriptors, np.asarray(videos))
    mined = time.perf_counter()
    pairs, negatives = _tables([f.key for f in frames], videos, found)
    outputs = {
        "pairs.parquet": _write_parquet(pairs, out / "pairs.parquet"),
        "negatives.parquet": _write_parquet(negatives, out / "negatives.parquet"),
    }
    frames_digest = hashlib.sha256("".join(f"{f.key}\0{h}\n" for f, h in zip(frames, hashes)).encode()).hexdigest()
    manifest = {
        "step": "mine-pairs",
        "inputs": {
            "data": str(data), "benchmark": benchmark, "split": split,
            "metadata_sha256": sha256_file(metadata_path(data, benchmark)),
            "frames_sha256": frames_digest,  # over every (frame key, image sha256), in frame order
        },
        "config": to_dict(config),
        "config_hash": config_hash(config),
        "model": {**model_info, "cache_id": model_id, "cache_file": cache.path.name},
        "counts": {
            "videos": len(set(videos)), "frames": len(frames), "descriptor_dim": int(descriptors.shape[1]),
            "pairs": len(pairs), "negatives": len(negatives),
            "cache_hits": stats.hits, "cache_misses": stats.misses,
        },
        "timings_s": {
            "describe": round(described - started, 3), "mine": round(mined - described, 3),
            "total": round(time.perf_counter() - started, 3),
        },
        "outputs": outputs,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__},
    }
    write_json(out / MANIFEST, manifest)
    return manifest
