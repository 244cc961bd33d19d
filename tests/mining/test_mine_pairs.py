"""`mine_pairs` / `moca mine-pairs` end to end on synthetic S4 data: pair quality, outputs, cache, weights."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mining_helpers import colour_histogram  # tests/mining/ is on sys.path (pytest rootdir-relative import)
from PIL import Image

from moca.errors import ConfigError, DataError
from moca.io import read_json, sha256_file
from moca.mining import MiningConfig, mine_pairs


def _rates(pairs: pd.DataFrame, other: str, label: dict[str, str]) -> float:
    return float((pairs["anchor_video"].map(label) == pairs[f"{other}_video"].map(label)).mean())


def _chance(videos: list[str], label: dict[str, str]) -> float:
    """P(two different videos share the label), over the anchors' videos."""
    classes = pd.Series([label[v] for v in videos]).value_counts().to_numpy()
    return float((classes * (classes - 1)).sum() / (len(videos) * (len(videos) - 1)))


@pytest.fixture(scope="module", params=["exact", "ivf"])
def mined(synth_s4: Path, tmp_path_factory: pytest.TempPathFactory, request) -> Path:
    out = tmp_path_factory.mktemp("mined")
    config = MiningConfig(k=5, negatives=5, method=request.param)
    mine_pairs(synth_s4, "s4", out, config, encoder=colour_histogram, model_id="colour-hist")
    return out


def test_positives_share_the_sounding_class_far_more_often_than_chance(mined: Path, sounding_class):
    pairs = pd.read_parquet(mined / "pairs.parquet")
    negatives = pd.read_parquet(mined / "negatives.parquet")
    chance = _chance(sorted(pairs["anchor_video"].unique()), sounding_class)
    # Measured with seed 3 and 28 training videos: positives 0.25, negatives 0.04, chance 0.08. A look-only
    # descriptor cannot tell the sounding object from the silent ones (the synth's design), so ~1/3 of the
    # shared-object matches are the sounding class; still three times chance.
    assert _rates(pairs, "positive", sounding_class) > 2 * chance
    assert _rates(negatives, "negative", sounding_class) < chance


def test_pairs_never_come_from_the_same_video_and_negatives_avoid_positives(mined: Path):
    pairs = pd.read_parquet(mined / "pairs.parquet")
    negatives = pd.read_parquet(mined / "negatives.parquet")
    assert len(pairs) == 140 * 5 and len(negatives) == 140 * 5  # 28 train videos x 5 frames, k = negatives = 5
    assert (pairs["anchor_video"] != pairs["positive_video"]).all()
    assert (negatives["anchor_video"] != negatives["negative_video"]).all()
    positive_sets = pairs.groupby("anchor_key")["positive_key"].agg(set)
    for anchor, negative in zip(negatives["anchor_key"], negatives["negative_key"]):
        assert negative not in positive_sets[anchor]
    assert list(pairs.columns) == ["anchor_key", "anchor_video", "positive_key", "positive_video", "rank", "score"]
    assert sorted(pairs["rank"].unique()) == [1, 2, 3, 4, 5]
    assert (pairs.groupby("anchor_key")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()


def test_manifest_records_inputs_config_and_outputs(mined: Path, synth_s4: Path):
    manifest = read_json(mined / "mining_manifest.json")
    assert manifest["counts"]["frames"] == 140 and manifest["counts"]["videos"] == 28
    assert manifest["config"]["k"] == 5 and manifest["model"]["cache_id"] == "colour-hist"
    assert manifest["inputs"]["metadata_sha256"] == sha256_file(synth_s4 / "Single-source/s4_meta_data.csv")
    for name, digest in manifest["outputs"].items():
        assert sha256_file(mined / name) == digest


def test_cache_reuse_and_invalidation(small_s4: Path, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(small_s4, data)
    calls: list[int] = []

    def counting(images):
        calls.append(len(images))
        return colour_histogram(images)

    config = MiningConfig(k=3, negatives=2, batch_size=16)
    first = mine_pairs(data, "s4", tmp_path / "a", config, encoder=counting, model_id="hist", cache_dir=tmp_path / "c")
    assert first["counts"]["cache_misses"] == 30 and calls == [16, 14]
    calls.clear()
    again = mine_pairs(data, "s4", tmp_path / "b", config, encoder=counting, model_id="hist", cache_dir=tmp_path / "c")
    assert calls == [] and again["counts"]["cache_hits"] == 30
    assert again["outputs"] == first["outputs"]  # same bytes from cached descriptors
    # An edited image is recomputed; a different model identity shares nothing.
    image = next((data / "Single-source/s4_data/visual_frames/train").rglob("*.png"))
    Image.fromarray(255 - np.asarray(Image.open(image).convert("RGB"))).save(image)
    edited = mine_pairs(data, "s4", tmp_path / "b", config, encoder=counting, model_id="hist", cache_dir=tmp_path / "c")
    assert calls == [1] and edited["counts"]["cache_misses"] == 1
    other = mine_pairs(data, "s4", tmp_path / "b", config, encoder=counting, model_id="other", cache_dir=tmp_path / "c")
    assert other["counts"]["cache_misses"] == 30


def test_damaged_cache_is_ignored_not_fatal(small_s4: Path, tmp_path: Path):
    config = MiningConfig(k=2, negatives=1)
    first = mine_pairs(small_s4, "s4", tmp_path / "o", config, encoder=colour_histogram, model_id="h")
    cache_file = next((tmp_path / "o" / "descriptor_cache").glob("*.npz"))
    cache_file.write_bytes(b"not an npz")
    again = mine_pairs(small_s4, "s4", tmp_path / "o", config, encoder=colour_histogram, model_id="h")
    assert again["counts"]["cache_misses"] == 30 and again["outputs"] == first["outputs"]


def test_missing_frame_is_a_data_error_naming_it(small_s4: Path, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(small_s4, data)
    image = next((data / "Single-source/s4_data/visual_frames/train").rglob("*_3.png"))
    image.unlink()
    with pytest.raises(DataError, match=image.name):
        mine_pairs(data, "s4", tmp_path / "o", encoder=colour_histogram, model_id="h")
    assert not (tmp_path / "o" / "mining_manifest.json").exists()


def test_config_errors():
    with pytest.raises(ConfigError, match="model"):
        MiningConfig(model="resnet50")
    with pytest.raises(ConfigError, match="chunk_size"):
        MiningConfig(chunk_size=0)
    with pytest.raises(ConfigError, match="mining.method"):
        MiningConfig(method="hnsw")
    with pytest.raises(ConfigError, match="mining.ivf_probes"):
        MiningConfig(method="ivf", ivf_probes=0)


def _moca(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run the real `moca` entry point in-process (its one-line error handling included)."""
    from moca.cli import main

    monkeypatch.setattr(sys, "argv", ["moca", *args])
    with pytest.raises(SystemExit) as exited:
        main()
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_cli_with_tiny_dino_and_a_checkpoint(small_s4: Path, tmp_path: Path, monkeypatch, capsys):
    import torch

    from moca.models import build_model

    torch.manual_seed(11)
    checkpoint = tmp_path / "dino_tiny.pth"
    torch.save(build_model("dino_tiny").state_dict(), checkpoint)
    digest = sha256_file(checkpoint)
    common = ["mine-pairs", "--data", str(small_s4), "--benchmark", "s4", "--set", "mining.model=dino_tiny",
              "--set", "mining.k=2", "--set", "mining.negatives=1", "--set", "mining.batch_size=16",
              "--set", "mining.chunk_size=7"]
    code, out, err = _moca(monkeypatch, capsys, *common, "--out", str(tmp_path / "out"), "--set",
                           f"mining.weights={{uri: '{checkpoint}', sha256: '{digest}'}}")
    assert code == 0, err
    assert "60 positive pairs" in out
    manifest = json.loads((tmp_path / "out" / "mining_manifest.json").read_text())
    assert manifest["model"]["weights_sha256"] == digest and manifest["counts"]["descriptor_dim"] == 64
    assert len(pd.read_parquet(tmp_path / "out" / "pairs.parquet")) == 60
    step = json.loads((tmp_path / "out" / "manifest.json").read_text())  # the CLI ran the pipeline's step
    assert step["step"] == "mine_pairs" and step["config"]["mining"]["k"] == 2

    code, _, err = _moca(monkeypatch, capsys, *common, "--out", str(tmp_path / "bad"), "--set",
                         f"mining.weights={{uri: '{checkpoint}', sha256: '{'0' * 64}'}}")
    assert code == 1 and "sha256 mismatch" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad" / "manifest.json").exists()


def test_a_released_dino_without_weights_is_refused_unless_random_is_asked_for(small_s4: Path, tmp_path: Path,
                                                                                monkeypatch, capsys, caplog):
    common = ["mine-pairs", "--data", str(small_s4), "--benchmark", "s4", "--out", str(tmp_path / "out")]
    code, _, err = _moca(monkeypatch, capsys, *common)
    assert code == 2 and err.strip().splitlines() == [
        "error: mining.weights: dino_vitb16 needs its released weights ({uri: ..., sha256: ...}); set "
        "mining.weights=random to run it randomly initialised (meaningless, smoke tests only)"]
    assert not (tmp_path / "out").exists()
    code, _, err = _moca(monkeypatch, capsys, *common, "--set", "mining.weights={uri: s3://w/dino.pth}")
    assert code == 2 and "mining.weights.sha256: dino_vitb16 weights s3://w/dino.pth must name their sha256" in err
    from moca.models.registry import usable_weights

    with caplog.at_level("WARNING"):
        assert usable_weights("dino_vitb16", "random", "mining.weights") is None
    assert "RANDOMLY INITIALISED" in caplog.text


def test_a_split_with_one_video_is_an_error_not_zero_pairs(small_s4: Path, tmp_path: Path):
    data = shutil.copytree(small_s4, tmp_path / "data")
    csv = data / "Single-source" / "s4_meta_data.csv"
    header, *rows = csv.read_text().splitlines()
    train = [r for r in rows if ",train," in f"{r},"]
    csv.write_text("\n".join([header, train[0], *[r for r in rows if r not in train]]) + "\n")
    with pytest.raises(DataError, match="1 train video\\(s\\) listed; mining pairs needs at least 2"):
        mine_pairs(data, "s4", tmp_path / "o", MiningConfig(model="dino_tiny"), encoder=colour_histogram,
                   model_id="h")
