"""Crash-safe training checkpoints.

A checkpoint is `step-NNNNNNNN.pt` plus a sidecar `step-NNNNNNNN.pt.sha256` (JSON: sha256 and size), both written
atomically, the sidecar last. A checkpoint without a sidecar, or whose size or hash disagrees with it (a disk that
filled up, a copy cut short, bit rot), is skipped on resume with a warning and the previous good one is used.
Everything inside is plain tensors and Python scalars, so it loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moca.errors import ConfigError, MocaError
from moca.io import atomic_open, read_json, sha256_file, write_json

log = logging.getLogger(__name__)
FORMAT = 1
_NAME = re.compile(r"^step-(\d{8})\.pt$")


@dataclass(frozen=True)
class CheckpointFile:
    step: int
    path: Path

    @property
    def sidecar(self) -> Path:
        return self.path.with_name(self.path.name + ".sha256")


def capture_rng_state() -> dict[str, Any]:
    """This process's RNG states (torch CPU and CUDA, numpy, python) in a weights_only-loadable form."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(folder: Path) -> list[CheckpointFile]:
    """Checkpoint files in `folder`, newest first (sidecars not checked here)."""
    if not folder.is_dir():
        return []
    found = [CheckpointFile(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found, key=lambda c: c.step, reverse=True)


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    """Write `state` as the checkpoint of `step`, then drop all but the newest `keep_last` checkpoints."""
    ckpt = CheckpointFile(step, folder / f"step-{step:08d}.pt")
    with atomic_open(ckpt.path, "wb") as handle:
        torch.save({"format": FORMAT, "step": step, **state}, handle)
    write_json(ckpt.sidecar, {"sha256": sha256_file(ckpt.path), "size": ckpt.path.stat().st_size})
    for old in list_checkpoints(folder)[keep_last:]:
        old.sidecar.unlink(missing_ok=True)
        old.path.unlink(missing_ok=True)
    return ckpt.path


def _problem(ckpt: CheckpointFile) -> str | None:
    """Why `ckpt` cannot be trusted, or None when its size and hash match its sidecar."""
    if not ckpt.sidecar.is_file():
        return "no .sha256 sidecar (the write did not finish)"
    try:
        expected = read_json(ckpt.sidecar)
        size, digest = int(expected["size"]), str(expected["sha256"])
    except (MocaError, KeyError, TypeError, ValueError) as exc:
        return f"unreadable sidecar ({exc})"
    actual = ckpt.path.stat().st_size
    if actual != size:
        return f"size {actual} bytes, sidecar says {size} (truncated?)"
    if sha256_file(ckpt.path) != digest:
        return "sha256 differs from its sidecar (corrupted)"
    return None


def load_latest_checkpoint(folder: Path, config_hash: str) -> dict[str, Any] | None:
    """The newest checkpoint in `folder` that passes its size and hash check, or None when there is none.

    A good checkpoint written under a different config is an error, not something to skip: resuming it would
    silently mix two experiments.
    """
    for ckpt in list_checkpoints(folder):
        problem = _problem(ckpt)
        if problem is None:
            try:
                state = torch.load(ckpt.path, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - a pickle error here means the file is damaged
                problem = f"cannot be loaded ({exc})"
        if problem is not None:
            log.warning("skipping checkpoint %s: %s", ckpt.path, problem)
            continue
        if state.get("format") != FORMAT:
            raise ConfigError(f"{ckpt.path}: checkpoint format {state.get('format')}, expected {FORMAT}")
        if state.get("config_hash") != config_hash:
            raise ConfigError(
                f"{ckpt.path}: written with config {state.get('config_hash')}, this run's config is {config_hash}; "
                "resume with the same config or use a new --out"
            )
        log.info("resuming from %s (step %d)", ckpt.path, state["step"])
        return state
    return None
