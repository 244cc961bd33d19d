"""`moca baseline` end to end: floors, OWOD-BIND (SAM-box variant, named as such), AT-GDINO-SAM with test doubles
and its clear error without them; predictions scored by `moca evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import at_doubles
import numpy as np
import pytest
import torch
import typer
from at_doubles import TINY_SAM
from PIL import Image
from typer.testing import CliRunner

from moca.baselines.config import BaselineConfig
from moca.baselines.floors import centre_prior
from moca.baselines.owod_bind import OwodBind
from moca.baselines.run import run_baseline
from moca.cli import infer as infer_cli
from moca.data.layout import list_videos
from moca.errors import ConfigError
from moca.evaluate import evaluate_predictions
from moca.infer.config import SamConfig


def _frames(root: Path) -> list:
    return [f for v in list_videos(root, "s4", "test") for f in v.frames if f.mask is not None]


def test_centre_floor_through_cli_scores_like_its_mask(s4_data: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    infer_cli.register(app)
    result = CliRunner().invoke(app, ["baseline", "centre", "--data", str(s4_data), "--benchmark", "s4",
                                      "--split", "test", "--out", str(tmp_path),
                                      "--set", "baseline.centre_fraction=0.3"])
    assert result.exit_code == 0, result.output
    frame = _frames(s4_data)[0]
    png = np.asarray(Image.open(tmp_path / f"{frame.key}.png"))
    assert np.array_equal(png == 255, centre_prior(png.shape, 0.3))
    assert json.loads((tmp_path / "baseline_manifest.json").read_text())["method"] == "centre-prior"
    scores = evaluate_predictions(tmp_path, s4_data, "s4", "test")
    assert 0 < scores["miou"] < 1


def test_at_gdino_sam_without_plugins_fails_clearly(s4_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs an audio tagger and a text-prompted detector"):
        run_baseline("at-gdino-sam", s4_data, "s4", "test", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="cannot load"):
        run_baseline("at-gdino-sam", s4_data, "s4", "test", tmp_path / "out",
                     {"tagger": "at_doubles:nothing_here", "text_detector": "at_doubles:make_detector"})


def test_at_gdino_sam_end_to_end_with_doubles(s4_data: Path, tmp_path: Path) -> None:
    at_doubles.CALLS.clear()
    config = {"tagger": "at_doubles:make_tagger", "text_detector": "at_doubles:make_detector", "sam": TINY_SAM}
    manifest = run_baseline("at-gdino-sam", s4_data, "s4", "test", tmp_path, config)
    frames = _frames(s4_data)
    assert manifest["method"] == "at-gdino-sam" and manifest["counts"]["predicted"] == len(frames)
    # tags over 0.3, best first, each once; the method's box / text thresholds reach the detector
    assert at_doubles.CALLS[0] == {"prompts": ["dog", "guitar"], "box": 0.35, "text": 0.25}
    evaluate_predictions(tmp_path, s4_data, "s4", "test")


def test_unknown_baseline(s4_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown baseline"):
        run_baseline("oracle", s4_data, "s4", "test", tmp_path)


class FixedBoxes:
    def boxes(self, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor([[0.0, 0.0, 20.0, 20.0], [30.0, 30.0, 60.0, 60.0], [0.0, 0.0, 64.0, 64.0]]), \
            torch.tensor([0.9, 0.8, 0.9])  # the last one is the whole frame: dropped


@pytest.fixture(scope="module")
def proposer():
    from moca.infer.sam import SamProposer, build_sam

    cfg = SamConfig(**TINY_SAM)
    return SamProposer(build_sam(cfg), cfg)


@pytest.mark.parametrize("similarity, kept", [([0.5, 0.0], [True, False]), ([0.3, 0.29], [True, True])])
def test_owod_bind_keeps_crops_by_softmax_and_unions_masks(proposer, similarity, kept) -> None:
    owod = OwodBind(torch.nn.Identity(), proposer, FixedBoxes(), BaselineConfig())
    owod.crop_embeddings = lambda crops: torch.eye(len(crops), 2)  # crop i -> unit vector i
    owod.audio_embedding = lambda audio: torch.tensor(similarity)  # so crop i's similarity is similarity[i]
    rgb = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    mask = owod.predict(rgb, torch.zeros(1))
    proposer.set_frame(rgb)
    masks, _ = proposer.boxes(FixedBoxes().boxes(rgb)[0][:2])
    assert np.array_equal(mask, masks[torch.tensor(kept)].any(0).numpy())


def test_owod_bind_empty_when_no_crop_passes(proposer) -> None:
    owod = OwodBind(torch.nn.Identity(), proposer, FixedBoxes(), BaselineConfig(keep_probability=0.9))
    owod.crop_embeddings = lambda crops: torch.eye(len(crops), 2)
    owod.audio_embedding = lambda audio: torch.tensor([0.01, 0.0])  # ~0.55 / 0.45: neither passes 0.9
    assert not owod.predict(np.zeros((64, 64, 3), np.uint8), torch.zeros(1)).any()


@pytest.mark.slow  # ~15 s on 2 shared cores: tiny ImageBind + SAM's generator on every frame
def test_owod_bind_without_detector_is_named_samboxes(s4_data: Path, tmp_path: Path) -> None:
    sam = {**TINY_SAM, "points_per_side": 2}  # 4 automatic proposals per frame are enough boxes here
    manifest = run_baseline("owod-bind", s4_data, "s4", "test", tmp_path, {"sam": sam, "imagebind": "imagebind_tiny"})
    assert manifest["method"] == "owod-bind-samboxes"
    assert manifest["counts"]["predicted"] == len(_frames(s4_data))
    evaluate_predictions(tmp_path, s4_data, "s4", "test")
