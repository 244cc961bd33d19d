from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from avs_files import save_png, square_mask
from PIL import Image

from moca.data.layout import list_videos
from moca.data.palette import AVSS_CLASSES, avss_palette
from moca.data.readers import iter_frames, read_frame_mask, read_image, read_mask, read_wav
from moca.errors import DataError
from moca.io import sha256_tree

# ------------------------------------------------------------------------------------------------ good input


def test_s4_quirks(s4_root: Path) -> None:
    pairs = list(iter_frames(s4_root, "s4"))
    assert len(pairs) == 10
    train = [f for v, f in pairs if v.split == "train"]
    assert [f.mask is not None for f in train] == [True, False, False, False, False]  # train: frame 1 only
    video, first = pairs[5]
    assert (video.name, video.category, video.split) == ("vidB", "male_speech", "test")
    assert first.key == "male_speech/vidB/vidB_1"
    image = read_image(first.image)
    assert image.shape == (224, 224, 3) and image.dtype == np.uint8 and image[0, 0, 0] == 10
    mask = read_frame_mask(video, first)
    assert mask is not None and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1} and mask.sum() == 50 * 60 and mask[60, 70] == 1
    assert read_frame_mask(*[(v, f) for v, f in pairs if v.split == "train"][1]) is None


def test_ms3_quirks(ms3_root: Path) -> None:
    (video,) = list_videos(ms3_root, "ms3")
    assert video.category is None and video.split == "val"
    assert [f.image.name for f in video.frames] == [f"clipM.mp4_{k}.png" for k in range(1, 6)]
    assert "val" not in video.frames[0].image.parts  # frames have no split folder
    assert read_image(video.frames[2].image)[0, 0].tolist() == [60, 60, 60]
    mask = read_mask(video.frames[0].mask, "ms3")
    assert mask.sum() == 50 * 60 and mask.max() == 1  # palette index 1 is foreground whatever its colour
    samples, rate = read_wav(video.audio)
    assert samples.shape == (2, 80000) and samples.dtype == np.float32 and rate == 16000


def test_avss_quirks(avss_root: Path) -> None:
    videos = {v.name: v for v in list_videos(avss_root, "avss")}
    assert [len(videos[n].frames) for n in ("uS", "uM", "u2")] == [5, 5, 10]
    assert [f.mask is not None for f in videos["uS"].frames] == [True] + [False] * 4  # v1s train: frame 0 only
    assert videos["u2"].frames[9].image.name == "9.jpg"
    labels = read_mask(videos["u2"].frames[9].mask, "avss")
    assert labels.dtype == np.int64 and labels.shape == (240, 320)
    assert labels[0, 0] == AVSS_CLASSES.index("dog") and labels[-1, -1] == AVSS_CLASSES.index("man")
    assert labels[0, -1] == 0
    assert read_image(videos["uM"].frames[0].image).shape == (240, 320, 3)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "1"])
def test_read_image_converts_modes_to_rgb(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"x_{mode}.png"
    Image.new("RGB", (8, 6), (255, 255, 255)).convert(mode).save(path)
    image = read_image(path)
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8 and (image == 255).all()


def test_s4_mask_accepts_bilevel_and_grey_rgb(tmp_path: Path) -> None:
    Image.fromarray(square_mask() > 0).save(tmp_path / "bilevel.png")
    save_png(tmp_path / "rgb.png", np.repeat(square_mask()[..., None], 3, axis=2))
    for name in ("bilevel.png", "rgb.png"):
        assert read_mask(tmp_path / name, "s4").sum() == 50 * 60


# ------------------------------------------------------------------------------------------------- bad input


def _bad(root: Path, call, file: Path, words: str) -> None:
    """`call()` raises a DataError naming `file` and mentioning `words`, and changes nothing on disk."""
    before = sha256_tree(root)
    with pytest.raises(DataError) as info:
        call()
    assert str(file) in str(info.value) and words in str(info.value)
    assert sha256_tree(root) == before


def test_missing_frame(s4_root: Path) -> None:
    (video,) = list_videos(s4_root, "s4", "test")
    path = video.frames[3].image
    path.unlink()
    _bad(s4_root, lambda: read_image(path), path, "not found")


def test_truncated_png(s4_root: Path) -> None:
    (video,) = list_videos(s4_root, "s4", "test")
    path = video.frames[0].image
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _bad(s4_root, lambda: read_image(path), path, "unreadable image")


def test_s4_mask_with_stray_values(s4_root: Path) -> None:
    (video,) = list_videos(s4_root, "s4", "test")
    path = video.frames[1].mask
    mask = square_mask()
    mask[0, 0], mask[0, 1] = 128, 1
    save_png(path, mask, "L")
    _bad(s4_root, lambda: read_mask(path, "s4"), path, "[1, 128]")


def test_s4_mask_in_colour(tmp_path: Path) -> None:
    path = tmp_path / "m.png"
    save_png(path, np.stack([square_mask(), np.zeros((224, 224), np.uint8), square_mask()], axis=2))
    _bad(tmp_path, lambda: read_mask(path, "s4"), path, "binary mask in colour")


def test_unknown_avss_colour(avss_root: Path) -> None:
    path = avss_root / "v1m/uM/labels_rgb/2.png"
    labels = avss_palette()[np.zeros((240, 320), np.int64)]
    labels[5, 5] = (1, 2, 3)
    save_png(path, labels)
    _bad(avss_root, lambda: read_mask(path, "avss"), path, "[1, 2, 3]")


def test_corrupt_wav(s4_root: Path) -> None:
    (video,) = list_videos(s4_root, "s4", "test")
    data = video.audio.read_bytes()
    video.audio.write_bytes(data[:12] + b"\x00garbage" * 8)  # RIFF header, then nonsense
    _bad(s4_root, lambda: read_wav(video.audio), video.audio, "audio")


def test_empty_wav(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros((0, 1)), 16000, subtype="PCM_16")
    _bad(tmp_path, lambda: read_wav(path), path, "empty audio")
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    _bad(tmp_path, lambda: read_wav(zero_bytes), zero_bytes, "unreadable audio")


def test_not_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "sound.wav"
    soundfile.write(path, np.zeros((1600, 1)), 16000, format="FLAC")
    _bad(tmp_path, lambda: read_wav(path), path, "not a WAV")


def test_missing_wav(tmp_path: Path) -> None:
    _bad(tmp_path, lambda: read_wav(tmp_path / "nope.wav"), tmp_path / "nope.wav", "not found")


def test_csv_with_unknown_split(s4_root: Path) -> None:
    csv = s4_root / "Single-source/s4_meta_data.csv"
    csv.write_text("name,start,category,split\nvidA,0,dog_barking,training\n")
    _bad(s4_root, lambda: list(iter_frames(s4_root, "s4")), csv, "unknown split 'training'")


@pytest.mark.parametrize("name", ["../x", "/abs", "..", "a/b"])
def test_csv_name_escaping_the_root(ms3_root: Path, name: str) -> None:
    csv = ms3_root / "Multi-sources/ms3_meta_data.csv"
    csv.write_text(f"video_id,split\n{name},train\n")
    _bad(ms3_root, lambda: list(iter_frames(ms3_root, "ms3")), csv, "unsafe name")


def test_avss_csv_category_escaping_the_root(avss_root: Path) -> None:
    csv = avss_root / "metadata.csv"
    csv.write_text("vid,uid,s_min,s_sec,a_obj,split,label\na,../../etc,0,0,dog,train,v1s\n")
    _bad(avss_root, lambda: list(iter_frames(avss_root, "avss")), csv, "unsafe name")


def test_unknown_benchmark(s4_root: Path) -> None:
    with pytest.raises(DataError, match="unknown benchmark"):
        read_mask(s4_root / "x.png", "avs")
