"""Stand-ins: the shipped ones load through the registry with their sha256; a tampered file is refused; the build is
deterministic (a tiny build run twice gives identical bytes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from moca.errors import ConfigError, WeightsError
from moca.models import WeightsSpec, build_model, get_entry
from moca.standins import build_standin, get_standin, list_standins, read_manifest, standin_weights
from moca.standins.build import BuildConfig, build_standins, rebuild_differences, state_bytes
from moca.standins.dino import DinoRecipe
from moca.standins.registry import WEIGHTS_DIR
from moca.standins.sam import SamRecipe

NAMES = ("dino_tiny_standin", "sam_tiny_standin", "imagebind_tiny_standin")
TINY_BUILD = BuildConfig(
    videos=2, image_videos=2, seed=1000,
    dino=DinoRecipe(steps=2, batch_size=2, local_crops=1, warmup_steps=1, freeze_last_layer_steps=1),
    sam=SamRecipe(steps=2, batch_size=2, warmup_steps=1),
    imagebind={"steps": 2, "batch_size": 2, "seed": 0},
)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_standin_loads_through_the_registry_with_its_sha256(name):
    standin = get_standin(name)
    spec = standin_weights(name)
    assert spec.sha256 == standin.sha256 and spec.uri.startswith("file://")
    assert get_entry(standin.model).tiny  # a stand-in is always one of the registry's tiny configs
    model = build_standin(name)
    torch.manual_seed(0)
    random_init = build_model(standin.model)
    trained = model.state_dict()
    assert any(not torch.equal(trained[k], v) for k, v in random_init.state_dict().items())
    assert standin.corpus["seed"] >= 1000  # never an evaluation seed
    # what a YAML config names: `standin:<name>` resolves to the installed package's file, checked by its sha256
    by_uri = build_model(standin.model, WeightsSpec(f"standin:{name}", standin.sha256)).state_dict()
    assert all(torch.equal(by_uri[k], v) for k, v in trained.items())


def test_a_standin_uri_naming_no_standin_is_a_weights_error():
    with pytest.raises(WeightsError, match="standin:dino_vitb16: unknown stand-in"):
        build_model("dino_tiny", WeightsSpec("standin:dino_vitb16"))


def test_the_manifest_lists_every_standin_under_its_size_budget():
    assert sorted(list_standins()) == sorted(NAMES)
    total = sum(get_standin(n).path().stat().st_size for n in NAMES)
    assert total <= 20 * 1024 * 1024


def test_a_tampered_standin_is_refused(tampered_weights):
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        build_standin("dino_tiny_standin", tampered_weights)


def test_unknown_standin_and_missing_manifest_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown stand-in"):
        get_standin("dino_vitb16")
    with pytest.raises(ConfigError, match="no stand-in manifest"):
        read_manifest(tmp_path)
    (tmp_path / "standins.json").write_text(json.dumps({"standins": [{"name": "x"}]}))
    with pytest.raises(ConfigError, match="not a stand-in manifest"):
        read_manifest(tmp_path)


def test_state_bytes_are_half_precision_and_reproducible():
    state = {"w": torch.randn(3, 3), "steps": torch.tensor(4)}
    first = state_bytes(state)
    assert first == state_bytes({k: v.clone() for k, v in state.items()})
    import io

    loaded = torch.load(io.BytesIO(first), weights_only=True)
    assert loaded["w"].dtype == torch.float16 and loaded["steps"].dtype == torch.int64


@pytest.mark.slow  # two tiny builds: corpus synthesis and a few steps of each objective, ~1 min on a busy machine
def test_tiny_build_twice_gives_identical_bytes(tmp_path):
    manifest = build_standins(tmp_path / "a", TINY_BUILD, tmp_path / "work-a")
    assert [e["name"] for e in manifest["standins"]] == list(NAMES)
    hashes = rebuild_differences(tmp_path / "a", TINY_BUILD)  # what `python -m moca.standins build --check` runs
    assert hashes == {name: (get_standin(name, tmp_path / "a").sha256,) * 2 for name in NAMES}
    for name in NAMES:  # and what it built loads through the registry like the shipped stand-ins
        build_standin(name, tmp_path / "a")
    assert json.loads((tmp_path / "a" / "standins.json").read_text())["warning"].startswith("STAND-INS")


def test_weights_folder_has_only_what_the_manifest_names():
    listed = {get_standin(n).file for n in NAMES} | {"standins.json"}
    assert {p.name for p in Path(WEIGHTS_DIR).iterdir()} == listed


def test_a_standin_loads_in_a_pod_whose_allowed_roots_hold_only_the_stores(monkeypatch, tmp_path):
    # A pod's MOCA_ALLOWED_ROOTS names the data and weights stores; a stand-in is package data installed with the
    # code (site-packages), so it loads there too, still checked by its sha256.
    from moca.storage import ALLOWED_ROOTS_ENV

    monkeypatch.setenv(ALLOWED_ROOTS_ENV, f"s3://moca-weights,{tmp_path}")
    standin = get_standin("sam_tiny_standin")
    build_model(standin.model, WeightsSpec("standin:sam_tiny_standin", standin.sha256))
    with pytest.raises(WeightsError, match="outside the allowed roots"):  # a plain path there still is refused
        build_model(standin.model, WeightsSpec(str(standin.path()), standin.sha256))
