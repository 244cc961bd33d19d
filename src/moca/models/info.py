"""What `moca models info` reports: parameter counts and configured weights, without building any real model.

In a config file, a model reference is any mapping, at any depth, with a `backbone: NAME` key and optionally
`backbone_weights: {uri, sha256}`; an ImageBind reference with an `adapter:` mapping is a MoCA model (its
trainable count is the adapters'). `MocaConfig` is exactly such a mapping.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moca.config import from_dict, load_yaml
from moca.errors import ConfigError
from moca.models.moca_model import MocaConfig, moca_parameter_counts
from moca.models.registry import count_parameters, get_entry, list_models
from moca.models.weights import WeightsSpec, is_cached, is_local_uri


@dataclass(frozen=True)
class ModelInfo:
    where: str  # the registry, or the config path of the reference ("model", "mining.dino")
    name: str
    family: str
    total: int
    trainable: int
    weights: WeightsSpec | None
    weights_state: str  # "-", "present", "missing" (local), "cached", "not cached" (remote)


def _weights_state(spec: WeightsSpec | None, cache_dir: Path | None) -> str:
    if spec is None:
        return "-"
    if is_local_uri(spec.uri):
        return "present" if is_cached(spec, cache_dir) else "missing"
    return "cached" if is_cached(spec, cache_dir) else "not cached"


def registry_info() -> list[ModelInfo]:
    """Every registered backbone as built (all parameters trainable until MoCA freezes them)."""
    rows = []
    for name in list_models():
        total = count_parameters(name)
        rows.append(ModelInfo("registry", name, get_entry(name).family, total, total, None, "-"))
    return rows


def _references(node: Any, where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        if "backbone" in node:
            yield where, node
        for key, value in node.items():
            yield from _references(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _references(value, f"{where}[{index}]")


def config_info(path: Path, cache_dir: Path | None = None) -> list[ModelInfo]:
    """One row per model reference in the YAML config at `path`."""
    rows = []
    for where, ref in _references(load_yaml(path), ""):
        name, weights = ref["backbone"], ref.get("backbone_weights")
        label = where or "(top level)"
        if not isinstance(name, str):
            raise ConfigError(f"{path}: {label}.backbone must be a model name, got {name!r}")
        family = get_entry(name).family
        spec = from_dict(WeightsSpec, weights, f"{path}: {label}.backbone_weights") if weights else None
        if family == "imagebind" and "adapter" in ref:
            fields = {k: ref[k] for k in ("backbone", "backbone_weights", "adapter") if k in ref}
            total, trainable = moca_parameter_counts(from_dict(MocaConfig, fields, f"{path}: {label}"))
            family = "moca"
        else:
            total = trainable = count_parameters(name)
        rows.append(ModelInfo(label, name, family, total, trainable, spec, _weights_state(spec, cache_dir)))
    if not rows:
        raise ConfigError(f"{path}: no model reference found (a mapping with a `backbone:` key)")
    return rows
