"""Backbone registry: one builder per name, in the style of segment-anything's `sam_model_registry` and timm's
`@register_model`.

A builder takes no arguments and returns a randomly initialised model; weights are always loaded here, by
`build_model`, through the hash-checked, `weights_only` path in `moca.models.weights`. Builders never download.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from moca.errors import ConfigError, WeightsError
from moca.models.weights import WeightsSpec, fetch_weights, load_checkpoint, load_weights, unwrap_state_dict

log = logging.getLogger(__name__)
StateDict = dict[str, torch.Tensor]
RANDOM = "random"  # a weights setting that asks for a randomly initialised model, explicitly
Converter = Callable[[StateDict, nn.Module], StateDict]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str  # "imagebind" | "sam" | "dino"
    builder: Callable[[], nn.Module]
    # Maps an official checkpoint's keys onto our module (e.g. timm's filter for DINO); None = keys already match.
    convert: Converter | None = None
    tiny: bool = False  # random-init test/demo config rather than the shape of a released checkpoint


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, family: str, convert: Converter | None = None, tiny: bool = False):
    """Decorator: `@register_model("sam_tiny", family="sam", tiny=True)` above a zero-argument builder."""

    def decorate(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, family, builder, convert, tiny)
        return builder

    return decorate


def list_models(family: str | None = None) -> list[str]:
    return sorted(n for n, e in _REGISTRY.items() if family is None or e.family == family)


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; registered: {', '.join(list_models())}") from None


def build_model(name: str, weights: WeightsSpec | None = None, cache_dir: Path | None = None) -> nn.Module:
    """Build registered model `name` in eval mode, loading `weights` (strictly) when given."""
    entry = get_entry(name)
    if weights is not None and weights.sha256 is None and not entry.tiny:
        raise WeightsError(f"{weights.uri}: {name} weights must name their sha256; only the tiny test models may "
                           "skip the check")
    model = entry.builder()
    if weights is not None:
        path = fetch_weights(weights, cache_dir)
        state = unwrap_state_dict(load_checkpoint(path, weights.uri))
        if entry.convert is not None:
            state = entry.convert(state, model)
        load_weights(model, state, strict=True, source=weights.uri)
    return model.eval()


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Create every new parameter on the meta device (no memory, no init cost), as accelerate's
    `init_empty_weights` does. A `torch.device("meta")` context is not enough: ImageBind's constructor calls
    `.item()` on a tensor, which meta tensors refuse. Patches `nn.Module` globally while active: not thread-safe."""
    original = nn.Module.register_parameter

    def register_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None:
            kwargs: dict[str, Any] = {"requires_grad": param.requires_grad}
            module._parameters[name] = type(param)(param.to("meta"), **kwargs)

    nn.Module.register_parameter = register_on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def count_parameters(name: str) -> int:
    """Parameter count of registered model `name` without allocating it (1.2 B for imagebind_huge in ~1 s)."""
    with parameters_on_meta():
        model = get_entry(name).builder()
    return sum(p.numel() for p in model.parameters())


def usable_weights(name: str, weights: WeightsSpec | str | None, key: str) -> WeightsSpec | None:
    """The weights to build registered model `name` with (None: random init), refusing what would silently make
    a useless model: a released model with no weights, unless `random` is asked for explicitly (then a loud
    warning), or with weights whose sha256 is not given. The tiny test/demo models may go without either.
    `key` names the setting in messages (e.g. `mining.weights`)."""
    tiny = get_entry(name).tiny
    if weights == RANDOM:
        if not tiny:
            log.warning("%s=random: %s is RANDOMLY INITIALISED; everything it computes is meaningless (smoke "
                        "tests only)", key, name)
        return None
    if isinstance(weights, str):
        raise ConfigError(f"{key}: expected {{uri: ..., sha256: ...}}, null or {RANDOM!r}, got {weights!r}")
    if weights is None:
        if tiny:
            return None
        raise ConfigError(f"{key}: {name} needs its released weights ({{uri: ..., sha256: ...}}); set "
                          f"{key}={RANDOM} to run it randomly initialised (meaningless, smoke tests only)")
    if weights.sha256 is None and not tiny:
        raise ConfigError(f"{key}.sha256: {name} weights {weights.uri} must name their sha256 (`sha256sum` of "
                          "your copy); only the tiny test models may skip the check")
    return weights
