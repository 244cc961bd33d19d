"""Backbone registry: one builder per name, in the style of segment-anything's `sam_model_registry` and timm's
`@register_model`.

A builder takes no arguments and returns a randomly initialised model; weights are always loaded here, by
`build_model`, through the hash-checked, `weights_only` path in `moca.models.weights`. Builders never download.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from moca.errors import ConfigError
from moca.models.weights import WeightsSpec, fetch_weights, load_checkpoint, load_weights, unwrap_state_dict

StateDict = dict[str, torch.Tensor]
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
