from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from moca.config import from_dict
from moca.errors import ConfigError, WeightsError
from moca.models import AdaAV, AdaAVConfig, MocaConfig, MocaModel, audio_pixel_map, tiny_moca_config


def frozen_imagebind_dense(model: MocaModel, image: torch.Tensor) -> torch.Tensor:
    """The reference: ImageBind's own vision path, run in one go, with its head applied to every patch."""
    backbone = model.backbone
    with torch.no_grad():
        tokens = backbone.modality_trunks["vision"](**backbone.modality_preprocessors["vision"](vision=image)["trunk"])
        norm, _, project = backbone.modality_heads["vision"]
        patches = F.normalize(project(norm(tokens)[:, 1:]), dim=-1)
    return patches.unflatten(1, (16, 16))


def _moca(positions: tuple[int, ...], **adapter) -> MocaModel:
    torch.manual_seed(0)
    config = MocaConfig(backbone="imagebind_tiny", adapter=AdaAVConfig(positions=positions, bottleneck=32, heads=4,
                                                                       **adapter))
    return MocaModel(config)


@pytest.mark.parametrize("positions", [(1,), (2, 4), (1, 2, 3, 4), (4,)])
def test_closed_gates_reproduce_frozen_imagebind_exactly(positions, image_audio):
    image, audio = image_audio
    model = _moca(positions, mlp=True)
    with torch.no_grad():
        output = model(image, audio)
    assert torch.equal(output.dense, frozen_imagebind_dense(model, image))


def test_open_gates_change_the_output(image_audio):
    image, audio = image_audio
    model = _moca((2, 4))
    with torch.no_grad():
        for adapter in model.adapters.values():
            adapter.gate.fill_(0.5)
        dense = model(image, audio).dense
    assert not torch.allclose(dense, frozen_imagebind_dense(model, image))


def test_only_adapter_parameters_require_grad(tiny_moca):
    trainable = {name for name, p in tiny_moca.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("adapters.") for name in trainable)
    assert tiny_moca.num_parameters(trainable_only=True) == sum(p.numel() for p in tiny_moca.adapters.parameters())
    tiny_moca.train()
    assert tiny_moca.adapters.training and not tiny_moca.backbone.training  # frozen trunk never leaves eval
    tiny_moca.eval()
    print(f"\nimagebind_tiny MoCA: {tiny_moca.num_parameters():,} parameters, "
          f"{tiny_moca.num_parameters(trainable_only=True):,} trainable (adapters after blocks 2, 4)")


def test_suffix_of_cached_prefix_equals_forward(tiny_moca, image_audio):
    image, audio = image_audio
    with torch.no_grad():
        for adapter in tiny_moca.adapters.values():
            adapter.gate.normal_()  # open gates, so the adapters really act
        audio_tokens, _ = tiny_moca.encode_audio(audio)
        cached = tiny_moca.visual_prefix(image).clone()
        split = tiny_moca.visual_suffix(cached, audio_tokens)
        whole = tiny_moca(image, audio).dense
        for adapter in tiny_moca.adapters.values():
            adapter.gate.zero_()
    assert torch.equal(split, whole)


def test_gradient_reaches_the_gates_from_the_audio_pixel_map(image_audio):
    image, audio = image_audio
    model = _moca((2, 4), mlp=True)
    output = model(image, audio)
    audio_pixel_map(output.dense, output.audio_emb).mean().backward()
    for adapter in model.adapters.values():
        assert adapter.gate.grad is not None and adapter.gate.grad.abs().sum() > 0
        assert adapter.mlp_gate.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.backbone.parameters())


def test_audio_encoding_averages_clips_and_is_normalised(tiny_moca, image_audio):
    _, audio = image_audio
    tokens, embedding = tiny_moca.encode_audio(audio)
    assert tokens.shape == (2, 229, 64) and embedding.shape == (2, 64)
    assert torch.allclose(embedding.norm(dim=-1), torch.ones(2), atol=1e-5)
    repeated = audio[:, :1].expand(-1, 3, -1, -1, -1)  # three identical clips == that one clip
    one_tokens, one_embedding = tiny_moca.encode_audio(audio[:, :1])
    same_tokens, same_embedding = tiny_moca.encode_audio(repeated)
    assert torch.allclose(one_tokens, same_tokens, atol=1e-5) and torch.allclose(one_embedding, same_embedding,
                                                                                  atol=1e-5)


def test_audio_pixel_map_is_the_per_patch_cosine():
    dense = F.normalize(torch.randn(2, 3, 3, 8), dim=-1)
    audio_emb = dense[:, 1, 2]  # the map must peak (== 1) exactly at the patch the audio equals
    heat = audio_pixel_map(dense, audio_emb)
    assert heat.shape == (2, 3, 3)
    assert torch.allclose(heat[:, 1, 2], torch.ones(2)) and (heat <= 1 + 1e-6).all()


def test_adapter_state_dict_round_trip_and_mismatch(tiny_moca):
    other = _moca((2, 4))
    with torch.no_grad():
        for adapter in tiny_moca.adapters.values():
            adapter.gate.fill_(0.25)
    state = tiny_moca.adapter_state_dict()
    assert state and all(k.split(".")[0] in {"2", "4"} for k in state)
    other.load_adapter_state_dict(state)
    assert all(torch.equal(other.adapter_state_dict()[k], v) for k, v in state.items())
    with pytest.raises(WeightsError, match=r"adapter positions here: \[1, 3\]"):
        _moca((1, 3)).load_adapter_state_dict(state)
    with torch.no_grad():
        for adapter in tiny_moca.adapters.values():
            adapter.gate.zero_()


def test_bad_configs_are_config_errors():
    with pytest.raises(ConfigError, match="only 4 vision blocks"):
        _moca((2, 8))
    with pytest.raises(ConfigError, match="multiple"):
        AdaAVConfig(bottleneck=30, heads=8)
    with pytest.raises(ConfigError, match="distinct"):
        AdaAVConfig(positions=(2, 2))
    with pytest.raises(ConfigError, match="ImageBind"):
        MocaConfig(backbone="sam_tiny")


def test_config_from_yaml_mapping():
    config = from_dict(MocaConfig, {"backbone": "imagebind_tiny",
                                    "backbone_weights": {"uri": "s3://m/ib.pth", "sha256": "A" * 64},
                                    "adapter": {"positions": [4, 2], "bottleneck": 32, "heads": 4}})
    assert config.adapter.positions == (2, 4) and config.backbone_weights.sha256 == "a" * 64
    assert config == MocaConfig(backbone_weights=config.backbone_weights, backbone="imagebind_tiny",
                                adapter=tiny_moca_config().adapter)


def test_scalar_gate_has_one_value():
    adapter = AdaAV(16, 8, AdaAVConfig(positions=(1,), bottleneck=8, heads=2, gate="scalar"))
    assert adapter.gate.shape == (1,)
    visual = torch.randn(2, 5, 16)
    assert torch.equal(adapter(visual, torch.randn(2, 3, 8)), visual)


@pytest.mark.slow
def test_imagebind_huge_shapes_and_size():
    model = MocaModel(MocaConfig())
    print(f"\nimagebind_huge MoCA: {model.num_parameters():,} parameters, "
          f"{model.num_parameters(trainable_only=True):,} trainable")
    assert 1.19e9 < model.num_parameters() - model.num_parameters(trainable_only=True) < 1.21e9
    with torch.no_grad():
        output = model(torch.randn(1, 3, 224, 224), torch.randn(1, 3, 1, 128, 204))
        prefix = model.visual_prefix(torch.randn(1, 3, 224, 224))
    assert output.dense.shape == (1, 16, 16, 1024) and output.audio_emb.shape == (1, 1024)
    assert output.audio_tokens.shape == (1, 229, 768) and prefix.shape == (1, 257, 1280)
