from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import typer
from typer.testing import CliRunner

from moca.cli.data import register
from moca.data.layout import SPLITS, list_videos
from moca.data.palette import AVSS_CLASSES
from moca.data.readers import iter_frames, read_image, read_mask, read_wav
from moca.data.synth import (
    SYNTH_CLASSES,
    SceneObject,
    SynthConfig,
    _sounding_mask,
    avss_class_index,
    mix_audio,
    render_frame,
    split_plan,
    synthesize,
)
from moca.errors import ConfigError, DataError
from moca.io import sha256_tree


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("synth")
    sizes = {"s4": 8, "ms3": 6, "avss": 6}
    return {b: synthesize(base / b, SynthConfig(benchmark=b, videos=n, seed=7)) for b, n in sizes.items()}


def _manifest(root: Path) -> dict[str, dict]:
    return {v["name"]: v for v in json.loads((root / "synth.json").read_text())["videos"]}


@pytest.mark.parametrize("benchmark", ["s4", "ms3", "avss"])
def test_every_file_reads_back(datasets: dict[str, Path], benchmark: str) -> None:
    root = datasets[benchmark]
    masks = 0
    for _video, frame in iter_frames(root, benchmark):
        assert read_image(frame.image).shape == (224, 224, 3)
        if frame.mask is not None:
            mask = read_mask(frame.mask, benchmark)
            assert mask.shape == (224, 224)
            masks += 1
    assert masks > 0
    for video in list_videos(root, benchmark):
        samples, rate = read_wav(video.audio)
        seconds = 10 if video.category == "v2" else 5
        assert rate == 16000 and samples.shape == (1, 16000 * seconds)
        assert soundfile.info(str(video.audio)).subtype == "PCM_16"


def test_layout_quirks(datasets: dict[str, Path]) -> None:
    s4, ms3, avss = datasets["s4"], datasets["ms3"], datasets["avss"]
    assert (s4 / "Single-source/s4_meta_data.csv").read_text().splitlines()[0] == "name,start,category,split"
    assert (ms3 / "Multi-sources/ms3_meta_data.csv").read_text().splitlines()[0] == "video_id,split"
    assert (avss / "metadata.csv").read_text().splitlines()[0] == "vid,uid,s_min,s_sec,a_obj,split,label"
    for video in list_videos(s4, "s4", "train"):
        stored = sorted(p.name for p in video.frames[0].mask.parent.iterdir())
        assert stored == [f"{video.name}_1.png"]  # S4 train: ground truth for frame 1 only
    assert list((ms3 / "Multi-sources/ms3_data/visual_frames").glob("*/*.mp4_3.png"))
    subsets = {v.category: v for v in list_videos(avss, "avss")}
    assert set(subsets) == {"v1s", "v1m", "v2"}
    assert len(list((subsets["v2"].frames[0].image.parent).glob("*.jpg"))) == 10
    for benchmark, root in datasets.items():
        assert {v.split for v in list_videos(root, benchmark)} == set(SPLITS)  # >= 1 video per split


def test_deterministic_per_seed(tmp_path: Path, datasets: dict[str, Path]) -> None:
    again = synthesize(tmp_path / "again", SynthConfig(benchmark="avss", videos=6, seed=7))
    assert sha256_tree(again) == sha256_tree(datasets["avss"])
    other = synthesize(tmp_path / "other", SynthConfig(benchmark="avss", videos=6, seed=8))
    assert sha256_tree(other) != sha256_tree(again)


def _colour_cosine(pixels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    pixels = pixels.astype(np.float64) + 1e-9
    ref = np.asarray(colour, np.float64) + 1e-9
    return pixels @ ref / (np.linalg.norm(pixels, axis=1) * np.linalg.norm(ref))


def test_s4_masks_cover_the_sounding_object_only(datasets: dict[str, Path]) -> None:
    root = datasets["s4"]
    manifest = _manifest(root)
    looks = {c.name: c for c in SYNTH_CLASSES}
    covered = 0
    for video, frame in iter_frames(root, "s4", "test"):
        info = manifest[video.name]
        assert info["sources"] == [video.category] and video.category not in info["distractors"]
        mask = read_mask(frame.mask, "s4").astype(bool)
        pixels = read_image(frame.image)[mask]
        # every masked pixel has the sounding class's hue (textures only scale brightness)
        assert (_colour_cosine(pixels, looks[video.category].colour) > 0.98).all()
        covered += mask.sum()
    assert covered > 0


def test_render_is_exact_and_handles_occlusion() -> None:
    disc = next(i for i, c in enumerate(SYNTH_CLASSES) if c.shape == "disc")
    square = next(i for i, c in enumerate(SYNTH_CLASSES) if c.shape == "square")
    background = np.zeros((224, 224, 3), np.uint8)
    source = SceneObject(disc, True, 30.0, (80.0, 112.0), (80.0, 112.0), 0.0, 0.0, 0.0, 0.0, 1.0)
    _, owner = render_frame([source], background, 0.0)
    assert abs((owner == 0).sum() - np.pi * 30**2) < 0.01 * np.pi * 30**2  # exact disc, no anti-aliasing
    assert owner[112, 80 + 29] == 0 and owner[112, 80 + 31] == -1
    # a silent square in front, centred on the disc's right edge: it hides part of the source
    front = SceneObject(square, False, 30.0, (110.0, 112.0), (110.0, 112.0), 0.0, 0.0, 0.0, 0.0, 1.0)
    image, owner = render_frame([source, front], background, 0.0)
    mask = _sounding_mask((source, front), owner)
    assert mask[112, 60] and not mask[112, 100]  # (100, 112) is on the disc but behind the square
    assert not mask[112, 130] and owner[112, 130] == 1  # the distractor is never in the mask
    assert (mask == (owner == 0)).all() and (image[mask] > 0).all()


def test_ms3_and_avss_masks_follow_the_sources(datasets: dict[str, Path]) -> None:
    manifest = _manifest(datasets["ms3"])
    assert all(2 <= len(v["sources"]) <= 3 and v["distractors"] for v in manifest.values())
    avss = _manifest(datasets["avss"])
    for video, frame in iter_frames(datasets["avss"], "avss"):
        if frame.mask is None:
            continue
        present = set(np.unique(read_mask(frame.mask, "avss")).tolist()) - {0}
        sources = {AVSS_CLASSES.index(name) for name in _avss_names(avss[video.name]["sources"])}
        assert present <= sources  # silent distractors are background in the labels


def _avss_names(synth_names: list[str]) -> list[str]:
    index = {c.name: i for i, c in enumerate(SYNTH_CLASSES)}
    return [AVSS_CLASSES[avss_class_index(index[n])] for n in synth_names]


def _object(cls: int, sounding: bool) -> SceneObject:
    return SceneObject(cls, sounding, 30.0, (60.0, 60.0), (150.0, 150.0), 0.0, 0.0, 0.0, 0.0, 1.0)


def test_audio_is_the_sources_signature_and_ignores_silent_objects() -> None:
    cfg = SynthConfig()
    disc = SYNTH_CLASSES.index(next(c for c in SYNTH_CLASSES if c.name == "disc_harmonic"))
    alone = mix_audio([_object(disc, True)], 5.0, cfg, np.random.default_rng(0))
    with_distractor = mix_audio([_object(disc, True), _object(3, False)], 5.0, cfg, np.random.default_rng(0))
    assert np.array_equal(alone, with_distractor)
    spectrum = np.abs(np.fft.rfft(alone.astype(np.float64)))
    peak_hz = np.fft.rfftfreq(len(alone), 1 / 16000)[spectrum.argmax()]
    assert abs(peak_hz - 220.0) <= 220.0 * 0.03 + 0.5  # fundamental at the class pitch (+-3 % jitter)


@pytest.mark.parametrize(("videos", "expected"), [(1, (1, 0, 0)), (3, (1, 1, 1)), (100, (70, 15, 15))])
def test_split_plan(videos: int, expected: tuple[int, int, int]) -> None:
    splits = split_plan(videos, (0.7, 0.15, 0.15), np.random.default_rng(0))
    assert tuple(splits.count(s) for s in SPLITS) == expected


def test_refuses_a_non_empty_output(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not an empty folder"):
        synthesize(out, SynthConfig(videos=2))
    assert [p.name for p in tmp_path.iterdir()] == ["data"] and (out / "keep.txt").read_text() == "mine"


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="unknown benchmark"):
        SynthConfig(benchmark="s5")
    with pytest.raises(ConfigError, match="videos"):
        SynthConfig(videos=0)


def test_cli(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    out = tmp_path / "cli"
    args = ["data", "synth", "--out", str(out), "--benchmark", "ms3", "--videos", "3", "--seed", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(list_videos(out, "ms3")) == 3


def test_scene_context_changes_only_the_background_and_follows_the_sounding_class(tmp_path: Path) -> None:
    plain = synthesize(tmp_path / "plain", SynthConfig(videos=12, seed=3))
    scened = synthesize(tmp_path / "scene", SynthConfig(videos=12, seed=3, scene_context=1.0))
    backgrounds: dict[str, list[np.ndarray]] = {}
    for (video, frame), (other_video, other) in zip(iter_frames(plain, "s4"), iter_frames(scened, "s4"), strict=True):
        np.testing.assert_array_equal(read_wav(video.audio)[0], read_wav(other_video.audio)[0])  # the same sounds
        before, after = read_image(frame.image), read_image(other.image)
        changed = (before != after).any(-1)
        if frame.mask is not None:  # the sounding object's pixels are the same
            mask = read_mask(frame.mask, "s4").astype(bool)
            np.testing.assert_array_equal(mask, read_mask(other.mask, "s4").astype(bool))
            assert not (changed & mask).any()
        if frame.index == 0:
            backgrounds.setdefault(video.category, []).append(after[changed].mean(0))
    # with scene_context 1 every background is its sounding class's scene: one class's videos look alike
    colours = np.concatenate([np.stack(b) for b in backgrounds.values()])
    labels = np.concatenate([[c] * len(b) for c, b in enumerate(backgrounds.values())])
    distance = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
    same = (labels[:, None] == labels[None]) & ~np.eye(len(labels), dtype=bool)
    assert same.any() and 2 * distance[same].mean() < distance[labels[:, None] != labels[None]].mean()
    with pytest.raises(ConfigError, match="scene_context"):
        SynthConfig(scene_context=1.5)
