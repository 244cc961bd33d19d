"""Checkpoints from URIs: fetch (local, file://, s3://, https://), verify sha256, load safely, fit to a model.

`standin:<name>` names a shipped STAND-IN (`moca.standins`, e.g. `standin:imagebind_tiny_standin`): the file in
the installed package's weights folder, read in place, so one config works from a checkout, a wheel or an image.

Three rules, because a checkpoint is both large and untrusted input:
- nothing is used before its sha256 matches the configured one (when one is configured);
- `torch.load(..., weights_only=True)`: a pickle that would run code is refused, never executed;
- `load_weights` is strict by default and names every missing, unexpected and mis-shaped key, instead of
  torch's wall of text or, worse, a silent partial load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import torch
from torch import nn

from moca.errors import ConfigError, StorageError, WeightsError
from moca.io import sha256_file

log = logging.getLogger(__name__)

CACHE_ENV = "MOCA_WEIGHTS_CACHE"
DEFAULT_CACHE = Path(".moca") / "cache" / "weights"
# Keys under which training scripts commonly nest the real state dict (timm, DINO, DDP, Lightning, our own).
_WRAPPER_KEYS = ("state_dict", "model", "module", "teacher", "model_state")
_MAX_LISTED = 10


@dataclass(frozen=True)
class WeightsSpec:
    """Where a checkpoint lives and, optionally, the sha256 it must have."""

    uri: str
    sha256: str | None = None

    def __post_init__(self) -> None:
        if not self.uri:
            raise WeightsError("weights: empty URI")
        if self.sha256 is not None:
            digest = self.sha256.lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise WeightsError(f"{self.uri}: sha256 must be 64 hex digits, got {self.sha256!r}")
            object.__setattr__(self, "sha256", digest)


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, DEFAULT_CACHE))


STANDIN_SCHEME = "standin"


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == STANDIN_SCHEME:
        from moca.standins.registry import get_standin

        try:
            return get_standin(parsed.path).path()
        except ConfigError as exc:
            raise WeightsError(f"{uri}: {exc}") from exc
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


def is_local_uri(uri: str) -> bool:
    """True for plain paths and file:// URIs, which are read in place rather than cached."""
    return _local_path(uri) is not None


def cache_path(spec: WeightsSpec, cache_dir: Path | None = None) -> Path:
    """Where `fetch_weights` keeps (or reads in place) the file `spec` names."""
    local = _local_path(spec.uri)
    if local is not None:
        return local
    # Keyed by the URI so two checkpoints with the same file name never collide.
    key = hashlib.sha256(spec.uri.encode()).hexdigest()[:16]
    name = Path(urlparse(spec.uri).path).name or "weights.pt"
    return (cache_dir or default_cache_dir()) / f"{key}-{name}"


def is_cached(spec: WeightsSpec, cache_dir: Path | None = None) -> bool:
    return cache_path(spec, cache_dir).is_file()


def _verify(spec: WeightsSpec, path: Path) -> None:
    if spec.sha256 is None:
        log.warning("%s: no sha256 configured, using the file unverified", spec.uri)
        return
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise WeightsError(f"{spec.uri}: sha256 mismatch: expected {spec.sha256}, got {actual}")


def fetch_weights(spec: WeightsSpec, cache_dir: Path | None = None) -> Path:
    """Return a local, verified path for `spec`: local files are read in place, remote ones cached."""
    from moca.storage import check_uri_allowed, download

    local = _local_path(spec.uri)
    try:  # local files too: a config must not read weights from outside the allowed roots
        if urlparse(spec.uri).scheme != STANDIN_SCHEME:  # a stand-in is package data, installed with the code
            check_uri_allowed(spec.uri if local is None else str(local))
    except StorageError as exc:
        raise WeightsError(str(exc)) from exc
    path = cache_path(spec, cache_dir)
    if local is not None:
        if not path.is_file():
            raise WeightsError(f"{spec.uri}: weights file not found")
        _verify(spec, path)
        return path
    if path.is_file():
        try:
            _verify(spec, path)
            return path
        except WeightsError:
            # A stale or corrupted cache entry: fetch again rather than fail on something the user cannot see.
            log.warning("%s: cached copy %s fails its hash, downloading again", spec.uri, path)
    try:
        download(spec.uri, path)
    except StorageError as exc:
        raise WeightsError(f"{spec.uri}: could not download weights ({exc})") from exc
    try:
        _verify(spec, path)
    except WeightsError:
        path.unlink(missing_ok=True)  # never leave a wrong file where the next run would find it
        raise
    return path


def load_checkpoint(path: Path, uri: str | None = None) -> dict[str, Any]:
    """`torch.load` with `weights_only=True`; anything that is not plain tensors and containers is refused."""
    where = uri or str(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickling_reason(exc)
        if "GLOBAL" in reason:  # the pickle names a Python callable/class: never run it
            raise WeightsError(f"{where}: refused to load: it holds Python objects, not only tensors "
                               f"({reason})") from exc
        raise WeightsError(f"{where}: not a readable torch checkpoint ({reason})") from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise WeightsError(f"{where}: not a readable torch checkpoint ({_unpickling_reason(exc)})") from exc
    if not isinstance(payload, Mapping):
        raise WeightsError(f"{where}: expected a state dict (mapping), got {type(payload).__name__}")
    return dict(payload)


# torch wraps the one useful line of a weights_only failure in paragraphs of advice; keep only that line.
# The numbered options include "re-run with weights_only=False": advice never to pass on for an untrusted file.
_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)")


def _unpickling_reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_BOILERPLATE)]
    return (useful or lines or [type(exc).__name__])[0]


def unwrap_state_dict(payload: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Strip the usual wrappers: a nesting key (`state_dict`, `model`, ...) and DDP's `module.` prefix."""
    state: Mapping[str, Any] = payload
    while not _is_tensor_dict(state):
        nested = next((state[k] for k in _WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if nested is None:
            break
        state = nested
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def _is_tensor_dict(state: Mapping[str, Any]) -> bool:
    return bool(state) and all(isinstance(v, torch.Tensor) for v in state.values())


@dataclass
class LoadReport:
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "key: checkpoint (a, b) vs model (c, d)"

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        parts = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("shape mismatch", self.mismatched)):
            if keys:
                more = f" (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
                parts.append(f"{len(keys)} {label}: {', '.join(keys[:_MAX_LISTED])}{more}")
        return "; ".join(parts) or "all keys match"


def load_weights(model: nn.Module, state_dict: Mapping[str, Any], strict: bool = True,
                 source: str = "checkpoint") -> LoadReport:
    """Copy `state_dict` into `model`. Strict: any missing/unexpected/mis-shaped key is a WeightsError.

    Not strict: every key that fits is loaded, the rest is reported (useful for partial fine-tuning).
    """
    state = unwrap_state_dict(state_dict)
    expected = model.state_dict()
    report = LoadReport(
        missing=sorted(set(expected) - set(state)),
        unexpected=sorted(set(state) - set(expected)),
        mismatched=[f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                    for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape],
    )
    if strict and not report.ok:
        raise WeightsError(f"{source}: does not fit {type(model).__name__}: {report.describe()}")
    fitting = {k: v for k, v in state.items() if k in expected and v.shape == expected[k].shape}
    model.load_state_dict(fitting, strict=False)
    return report

