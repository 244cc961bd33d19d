"""DINO ViT-B/16 (Apache-2.0) as timm's `vit_base_patch16_224.dino`, and a tiny timm ViT of the same class.

timm is asked for the architecture only (`pretrained=False`: nothing is downloaded); weights come from a URI
through `build_model`. Official DINO checkpoints (`dino_vitbase16_pretrain.pth`) use the same key names as
timm's VisionTransformer; timm's `checkpoint_filter_fn` handles the remaining variants (e.g. resized position
embeddings), so it is the converter registered here.
"""

from __future__ import annotations

import torch
from torch import nn

from moca.models.registry import register_model


def _timm_filter(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    from timm.models.vision_transformer import checkpoint_filter_fn

    return checkpoint_filter_fn(state, model)


@register_model("dino_tiny", family="dino", convert=_timm_filter, tiny=True)
def dino_tiny() -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    # No classifier head: DINO features are the (CLS) token itself, as in the released backbone.
    return VisionTransformer(img_size=224, patch_size=16, embed_dim=64, depth=2, num_heads=2, num_classes=0)


@register_model("dino_vitb16", family="dino", convert=_timm_filter)
def dino_vitb16() -> nn.Module:
    import timm

    return timm.create_model("vit_base_patch16_224.dino", pretrained=False)
