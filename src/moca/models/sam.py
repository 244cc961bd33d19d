"""SAM (segment-anything 1.0, Apache-2.0): the released ViT-B/L/H shapes and a tiny random-init config.

The full configs come from segment-anything's own `sam_model_registry` (never given a checkpoint: its loader
uses an unrestricted `torch.load`; `build_model` loads weights safely instead). The tiny one composes the same
classes at 256 px so `SamPredictor` and `SamAutomaticMaskGenerator`, which read `image_encoder.img_size`,
run in well under a second on CPU.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from moca.models.registry import register_model

# ImageNet mean/std in 0-255 pixels, as segment-anything's builders set them.
_PIXEL_MEAN = [123.675, 116.28, 103.53]
_PIXEL_STD = [58.395, 57.12, 57.375]


@register_model("sam_tiny", family="sam", tiny=True)
def sam_tiny() -> nn.Module:
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    image_size, patch_size, prompt_dim = 256, 16, 32
    grid = image_size // patch_size
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=image_size, patch_size=patch_size, embed_dim=64, depth=2, num_heads=2, mlp_ratio=4,
            norm_layer=partial(nn.LayerNorm, eps=1e-6), qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=(1,), window_size=4, out_chans=prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim, image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size), mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=64, num_heads=2),
            transformer_dim=prompt_dim, iou_head_depth=3, iou_head_hidden_dim=32,
        ),
        pixel_mean=_PIXEL_MEAN,
        pixel_std=_PIXEL_STD,
    )


def _released(variant: str) -> nn.Module:
    from segment_anything import sam_model_registry

    return sam_model_registry[variant](checkpoint=None)


for _variant in ("vit_b", "vit_l", "vit_h"):
    register_model(f"sam_{_variant}", family="sam")(partial(_released, _variant))
