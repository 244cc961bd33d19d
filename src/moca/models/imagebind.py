"""ImageBind (Meta, CC BY-NC-SA 4.0) from the `imagebind-unofficial` 0.1.1 wheel, plus the import step it needs.

The wheel carries the official model code, but its `imagebind/__init__.py` imports `imagebind.data`, which
needs torchaudio, pytorchvideo and pkg_resources (none of which we install: they would replace the pinned
torch). `import_imagebind_model()` registers a bare package module named `imagebind` whose search path is the
installed folder, so `imagebind.models.imagebind_model` imports without running that `__init__`.

`ImageBindModel` always builds all six modality trunks; the tiny config shrinks the three we never use
(depth, thermal, IMU) to one narrow block each. Input sizes are fixed by the preprocessors: vision 3x224x224
(patch 14 -> 16x16 tokens + CLS), audio 1x128x204 (229 tokens with CLS), text 77 BPE tokens.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from moca.errors import ConfigError
from moca.models.registry import register_model

VISION, AUDIO, TEXT = "vision", "audio", "text"
IMAGE_SIZE = 224
AUDIO_SHAPE = (1, 128, 204)  # (channel, mel bins, frames) of one clip, as ImageBind's audio preprocessor fixes it
LICENCE = "CC BY-NC-SA 4.0 (licence file of imagebind-unofficial 0.1.1; its metadata says MIT, the file governs)"


def _package_dir() -> Path:
    spec = importlib.util.find_spec("imagebind") if "imagebind" not in sys.modules else None
    locations = spec.submodule_search_locations if spec else sys.modules["imagebind"].__path__
    if not locations:
        raise ConfigError("`imagebind` is not installed: pip install --no-deps imagebind-unofficial==0.1.1")
    return Path(list(locations)[0])


def import_imagebind_model() -> types.ModuleType:
    """Import `imagebind.models.imagebind_model` without running `imagebind/__init__.py` (see module docstring)."""
    if "imagebind" not in sys.modules:
        package = types.ModuleType("imagebind")
        package.__path__ = [str(_package_dir())]
        sys.modules["imagebind"] = package
    return importlib.import_module("imagebind.models.imagebind_model")


def bpe_vocab_path() -> Path:
    """The CLIP BPE vocabulary the text tokenizer needs; it ships inside the wheel."""
    path = _package_dir() / "bpe" / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise ConfigError(f"{path}: ImageBind's BPE vocabulary is missing from the installed wheel")
    return path


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    import_imagebind_model()
    preprocessors = importlib.import_module("imagebind.models.multimodal_preprocessors")
    return preprocessors.SimpleTokenizer(bpe_path=str(bpe_vocab_path()))


def embed(model: nn.Module, modality: str, inputs: torch.Tensor) -> torch.Tensor:
    """One modality through preprocessor, trunk and head, L2-normalised (ImageBind's logit scale left out, so
    dot products are cosines)."""
    processed = model.modality_preprocessors[modality](**{modality: inputs})
    tokens = model.modality_trunks[modality](**processed["trunk"])
    return F.normalize(model.modality_heads[modality](tokens, **processed["head"]), dim=-1)


def encode_text(model: nn.Module, texts: list[str]) -> torch.Tensor:
    """(len(texts), D) L2-normalised text embeddings, e.g. for zero-shot labelling of AVSS masks."""
    tokens = _tokenizer()(texts)
    tokens = tokens.unsqueeze(0) if tokens.ndim == 1 else tokens
    device = next(model.parameters()).device
    return embed(model, TEXT, tokens.to(device))


# Unused modalities of the tiny config: one narrow block each (ImageBindModel cannot omit them).
_TINY_UNUSED = {f"{m}_{k}": v for m in ("depth", "thermal", "imu")
                for k, v in (("embed_dim", 16), ("num_blocks", 1), ("num_heads", 2))}


@register_model("imagebind_tiny", family="imagebind", tiny=True)
def imagebind_tiny() -> nn.Module:
    """Random-init ImageBind with the real class and input sizes: 4 vision blocks of width 64, 2 audio, 2 text."""
    model_module = import_imagebind_model()
    return model_module.ImageBindModel(
        out_embed_dim=64,
        vision_embed_dim=64, vision_num_blocks=4, vision_num_heads=4,
        audio_embed_dim=64, audio_num_blocks=2, audio_num_heads=4,
        text_embed_dim=64, text_num_blocks=2, text_num_heads=4,
        **_TINY_UNUSED,
    )


@register_model("imagebind_huge", family="imagebind")
def imagebind_huge() -> nn.Module:
    """ImageBind-Huge (vision ViT-H/14, 32 blocks, width 1280; 1.2 B parameters); weights via `build_model`."""
    return import_imagebind_model().imagebind_huge(pretrained=False)
