"""Backbones (ImageBind, SAM, DINO) by name, weights from URIs, and the MoCA model with AdaAV adapters.

    from moca.models import build_model, list_models, WeightsSpec
    sam = build_model("sam_vit_h", WeightsSpec("s3://models/sam_vit_h_4b8939.pth", sha256="a7bf3b02..."))

Importing this package registers every builder (the family modules are imported below for that side effect);
the heavy model code itself (segment-anything, timm, ImageBind) is imported only when a model is built.
"""

from moca.models import dino, imagebind, sam  # noqa: F401  (registers the builders)
from moca.models.adaav import AdaAV, AdaAVConfig
from moca.models.imagebind import encode_text
from moca.models.moca_model import MocaConfig, MocaModel, MocaOutput, audio_pixel_map, tiny_moca_config
from moca.models.registry import build_model, count_parameters, get_entry, list_models, register_model
from moca.models.weights import (
    LoadReport,
    WeightsSpec,
    cache_path,
    fetch_weights,
    is_cached,
    load_checkpoint,
    load_weights,
)

__all__ = [
    "AdaAV", "AdaAVConfig", "LoadReport", "MocaConfig", "MocaModel", "MocaOutput", "WeightsSpec",
    "audio_pixel_map", "build_model", "cache_path", "count_parameters", "encode_text", "fetch_weights",
    "get_entry", "is_cached", "list_models", "load_checkpoint", "load_weights", "register_model",
    "tiny_moca_config",
]
