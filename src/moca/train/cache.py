"""Cache for what the frozen parts of the model compute: a pure function of a frame, so compute it once.

With adapters after blocks 8/16/24/32 of a 32-block trunk, the first 8 blocks never change during training; with no
augmentation their output for a frame is the same every epoch. `FeatureCache` maps a frame key to that output,
in memory or as one tensor file per frame under `cache_dir/<model_id>/` (reused by later runs with the same model
and weights: `model_id` must change when either does).

The cache is filled by `warm(keys)` in sorted-key chunks before training, not lazily inside training batches:
then a cached value does not depend on which training batch first met the frame, so an interrupted and resumed run
sees bit-identical features and reproduces the uninterrupted one exactly.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from moca.io import atomic_open
from moca.progress import progress

log = logging.getLogger(__name__)
Features = tuple[torch.Tensor, ...]


class FeatureCache:
    def __init__(
        self,
        name: str,
        compute: Callable[[torch.Tensor], Features],
        load_input: Callable[[str], torch.Tensor],
        model_id: str,
        cache_dir: str | Path | None = None,
        chunk_size: int = 16,
    ) -> None:
        self.name = name
        self.compute = compute  # batch of inputs -> tuple of batched outputs, called under no_grad
        self.load_input = load_input  # frame key -> one input (image or audio), unbatched
        self.chunk_size = chunk_size
        self.folder = Path(cache_dir) / model_id / name if cache_dir else None
        self.memory: dict[str, Features] = {}

    def _file(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pt"

    def _read(self, key: str) -> Features | None:
        file = self._file(key)
        if not file.is_file():
            return None
        try:
            value = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a damaged cache file is recomputed, never trusted
            log.warning("recomputing damaged cache file %s (%s)", file, exc)
            return None
        return tuple(value["features"]) if value.get("key") == key else None

    def _store(self, key: str, value: Features) -> None:
        if self.folder is None:
            self.memory[key] = value
            return
        with atomic_open(self._file(key), "wb") as handle:
            torch.save({"key": key, "features": list(value)}, handle)

    def _has(self, key: str) -> bool:
        return key in self.memory if self.folder is None else self._read(key) is not None

    @torch.no_grad()
    def warm(self, keys: Sequence[str], device: torch.device) -> None:
        """Compute and store the features of every key not cached yet, in sorted-key chunks."""
        missing = [k for k in sorted(set(keys)) if not self._has(k)]
        chunks = [missing[i : i + self.chunk_size] for i in range(0, len(missing), self.chunk_size)]
        for chunk in progress(chunks, desc=f"cache {self.name} ({len(missing)} frames)"):
            batch = torch.stack([self.load_input(k) for k in chunk]).to(device)
            outputs = self.compute(batch)
            for i, key in enumerate(chunk):
                # clone: a slice would keep the whole batch's storage alive (and be saved whole by torch.save)
                self._store(key, tuple(o[i].detach().to("cpu").clone() for o in outputs))

    def get(self, keys: Sequence[str], device: torch.device) -> Features:
        """Batched features for `keys` (all must have been warmed)."""
        values = [self.memory[k] if self.folder is None else self._read(k) for k in keys]
        if any(v is None for v in values):
            raise KeyError(f"{self.name} cache: {sum(v is None for v in values)} key(s) were not warmed")
        return tuple(torch.stack(parts).to(device) for parts in zip(*values))  # type: ignore[misc]
