"""A released model is never built silently random or from an unchecked file: no weights, or weights without a
sha256, are refused for every model but the tiny test ones (unless `random` is asked for explicitly)."""

from __future__ import annotations

import pytest

from moca.errors import ConfigError, WeightsError
from moca.models import WeightsSpec, build_model
from moca.models.registry import RANDOM, usable_weights

CHECKED = WeightsSpec("s3://w/model.pth", "a" * 64)


@pytest.mark.parametrize("name", ["dino_vitb16", "sam_vit_h", "imagebind_huge"])
def test_released_models_need_weights_with_a_hash(name):
    with pytest.raises(ConfigError, match=f"^m.weights: {name} needs its released weights"):
        usable_weights(name, None, "m.weights")
    with pytest.raises(ConfigError, match=f"^m.weights.sha256: {name} weights s3://w/model.pth must name"):
        usable_weights(name, WeightsSpec("s3://w/model.pth"), "m.weights")
    with pytest.raises(ConfigError, match="expected {uri: ..., sha256: ...}, null or 'random', got 'randum'"):
        usable_weights(name, "randum", "m.weights")
    assert usable_weights(name, CHECKED, "m.weights") is CHECKED
    assert usable_weights(name, RANDOM, "m.weights") is None  # explicitly random: allowed, with a warning


@pytest.mark.parametrize("name", ["dino_tiny", "sam_tiny", "imagebind_tiny"])
def test_tiny_models_may_go_without(name):
    assert usable_weights(name, None, "m.weights") is None
    unhashed = WeightsSpec("file:///tmp/tiny.pth")
    assert usable_weights(name, unhashed, "m.weights") is unhashed


def test_build_model_refuses_an_unhashed_released_checkpoint_before_building(tmp_path):
    with pytest.raises(WeightsError, match="dino_vitb16 weights must name their sha256"):
        build_model("dino_vitb16", WeightsSpec(str(tmp_path / "dino.pth")))
