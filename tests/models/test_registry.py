from __future__ import annotations

import pytest
import torch

from moca.errors import ConfigError
from moca.models import build_model, count_parameters, encode_text, get_entry, list_models
from moca.models.imagebind import LICENCE, bpe_vocab_path

EXPECTED = {"imagebind_tiny", "imagebind_huge", "sam_tiny", "sam_vit_b", "sam_vit_l", "sam_vit_h",
            "dino_tiny", "dino_vitb16"}
TINY = sorted(n for n in EXPECTED if n.endswith("_tiny"))


def test_every_required_name_is_registered_with_its_family():
    assert EXPECTED <= set(list_models())
    assert list_models("sam") == ["sam_tiny", "sam_vit_b", "sam_vit_h", "sam_vit_l"]
    assert {get_entry(n).family for n in EXPECTED} == {"imagebind", "sam", "dino"}


def test_unknown_name_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError, match="sam_vit_h"):
        build_model("sam_vit_xxl")


@pytest.mark.parametrize("name", TINY)
def test_tiny_builds_are_eval_mode_real_classes_and_counted_exactly(name):
    model = build_model(name)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == count_parameters(name)


def test_released_shapes_are_counted_without_allocating():
    # Known sizes of the released checkpoints' architectures (ViT-H SAM 641 M, DINO ViT-B/16 86 M, ImageBind 1.2 B).
    assert count_parameters("sam_vit_h") == 641_090_608
    assert count_parameters("dino_vitb16") == 85_798_656
    assert 1.19e9 < count_parameters("imagebind_huge") < 1.21e9


def test_imagebind_tiny_token_shapes_match_the_real_layout():
    model = build_model("imagebind_tiny")
    with torch.no_grad():
        pre = model.modality_preprocessors["vision"](vision=torch.randn(1, 3, 224, 224))
        tokens = model.modality_trunks["vision"](**pre["trunk"])
        audio = model.modality_preprocessors["audio"](audio=torch.randn(2, 1, 128, 204))
        audio_tokens = model.modality_trunks["audio"](**audio["trunk"])
    assert tokens.shape == (1, 257, 64)  # 16 x 16 patches of 14 px + CLS first
    assert audio_tokens.shape == (2, 229, 64)


def test_sam_tiny_runs_through_the_predictor():
    import numpy as np
    from segment_anything import SamPredictor

    sam = build_model("sam_tiny")
    predictor = SamPredictor(sam)
    image = (torch.rand(100, 140, 3) * 255).to(torch.uint8).numpy()
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(point_coords=np.array([[70.0, 50.0]]),
                                             point_labels=np.array([1]), multimask_output=True)
    assert masks.shape == (3, 100, 140) and scores.shape == (3,)


def test_dino_tiny_gives_a_cls_descriptor():
    dino = build_model("dino_tiny")
    with torch.no_grad():
        features = dino(torch.randn(2, 3, 224, 224))
    assert features.shape == (2, 64)


def test_text_encoder_uses_the_shipped_bpe_vocabulary():
    assert bpe_vocab_path().is_file()
    assert "CC BY-NC-SA 4.0" in LICENCE
    model = build_model("imagebind_tiny")
    with torch.no_grad():
        embeddings = encode_text(model, ["a dog barking", "a dog barking", "an engine"])
    assert embeddings.shape == (3, 64)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.equal(embeddings[0], embeddings[1]) and not torch.allclose(embeddings[0], embeddings[2])
