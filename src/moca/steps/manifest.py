"""The contract every pipeline step keeps: files out in its own folder, then `manifest.json` written last.

The manifest records what the step read (content digests), its config and config hash, the git SHA, the data
version, timings, metrics and a sha256 of every file it wrote. A step whose folder already holds a manifest with
the same key (step, input digests, config hash, git SHA) and whose files still match their hashes is skipped: a
rerun with identical inputs costs one hash pass, and a rerun with anything changed starts from an empty folder.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moca.config import config_hash
from moca.errors import ConfigError, DataError
from moca.io import read_json, sha256_file, sha256_tree, write_json
from moca.tracking.runs import git_sha

log = logging.getLogger("moca.steps")
MANIFEST = "manifest.json"
OWNER = ".moca-step"
# What a step body returns: metrics (floats, logged to MLflow), info (anything, kept in the manifest) and
# artifacts (paths relative to the step folder, logged to the step's MLflow run).
StepBody = Callable[[Path], Mapping[str, Any]]


@dataclass(frozen=True)
class StepResult:
    step: str
    out: Path
    manifest: dict[str, Any]
    skipped: bool

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.manifest.get("metrics", {}))

    @property
    def info(self) -> dict[str, Any]:
        return dict(self.manifest.get("info", {}))


def digest(path: str | Path) -> str:
    """Content digest of an input: sha256 of a file, or of a folder's relative paths and file contents."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        return sha256_tree(path)
    raise DataError(path, "step input not found")


def output_hashes(out: Path) -> dict[str, str]:
    return {f.relative_to(out).as_posix(): sha256_file(f) for f in sorted(out.rglob("*"))
            if f.is_file() and f.name not in (MANIFEST, OWNER) and not f.name.endswith(".tmp")}  # fmt: skip


def step_key(step: str, inputs: Mapping[str, str], config: Mapping[str, Any]) -> dict[str, Any]:
    return {"step": step, "inputs": dict(sorted(inputs.items())), "config_hash": config_hash(dict(config)),
            "git_sha": git_sha()}  # fmt: skip


def _reusable(out: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The earlier manifest in `out` if it was made with `key` and every file it lists is intact."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = read_json(path)
    except DataError:
        return None
    if not isinstance(manifest, dict) or {k: manifest.get(k) for k in key} != key or "unknown" in key["git_sha"]:
        return None
    return manifest if output_hashes(out) == manifest.get("outputs") else None


def _prepare(out: Path, step: str) -> None:
    """Empty `out` for a fresh run, but only if it is empty or holds an earlier output of this same step."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: step output exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        _clear(out, step)
    out.mkdir(parents=True, exist_ok=True)
    # Marks the folder as this step's before anything is written, so a crashed attempt can be cleared next time.
    (out / OWNER).write_text(step + "\n", encoding="utf-8")


def _clear(out: Path, step: str) -> None:
    owner = (out / OWNER).read_text(encoding="utf-8").strip() if (out / OWNER).is_file() else None
    if owner != step:
        raise ConfigError(f"{out}: not empty and not an earlier output of step {step!r}; choose a new folder")
    for child in out.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def run_step(step: str, out: str | Path, inputs: Mapping[str, str], config: Mapping[str, Any], body: StepBody,
             data_version: str | None = None) -> StepResult:
    """Run `body(out)` unless `out` already holds this step's outputs for the same inputs, config and code."""
    out = Path(out)
    key = step_key(step, inputs, config)
    if (earlier := _reusable(out, key)) is not None:
        log.info("%s: inputs, config and code unchanged; reusing %s", step, out)
        return StepResult(step, out, earlier, skipped=True)
    _prepare(out, step)
    started = time.time()
    produced = dict(body(out))
    manifest = {
        **key,
        "config": dict(config),
        "data_version": data_version,
        "metrics": {k: float(v) for k, v in produced.get("metrics", {}).items()},
        "info": produced.get("info", {}),
        "artifacts": list(produced.get("artifacts", [])),
        "timings_s": {"started": round(started, 3), "total": round(time.time() - started, 3)},
        "outputs": output_hashes(out),
    }
    write_json(out / MANIFEST, manifest)
    return StepResult(step, out, manifest, skipped=False)


def require_outputs(*paths: str | Path) -> None:
    """Fail loudly when a step claims success but an output is missing or empty (KFP would pass it on)."""
    for path in map(Path, paths):
        if path.is_dir():
            empty = not any(path.iterdir())
        else:
            empty = not path.is_file() or path.stat().st_size == 0
        if empty:
            raise DataError(path, "step output is missing or empty")
