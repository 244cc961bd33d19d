"""Per-file checks on hand-made files with known answers (no Great Expectations involved)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from moca.data.palette import avss_palette
from moca.validation.inspect import inspect_audio, inspect_image, inspect_mask


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    image = Image.fromarray(array, mode)
    if mode == "P":  # distinct colours, so that PIL keeps every index as written
        image.putpalette(avss_palette(256).flatten().tolist())
    image.save(path)
    return path


def test_image_facts_and_truncation(tmp_path: Path) -> None:
    good = _png(tmp_path / "a.png", np.full((224, 200, 3), 7, np.uint8))
    assert inspect_image(good) == {"image_readable": True, "width": 200, "height": 224, "mode": "RGB",
                                   "image_problem": None}  # fmt: skip
    truncated = tmp_path / "t.png"
    truncated.write_bytes(good.read_bytes()[:100])
    facts = inspect_image(truncated)
    assert not facts["image_readable"] and "unreadable image" in facts["image_problem"]
    assert inspect_image(tmp_path / "nope.png")["image_problem"] == "missing file"


def test_binary_mask_values_fraction_and_stray(tmp_path: Path) -> None:
    mask = np.zeros((4, 5), np.uint8)
    mask[0, :2] = 255  # 2 of 20 pixels foreground
    facts = inspect_mask(_png(tmp_path / "m.png", mask, "L"), "s4", (5, 4))
    assert facts["mask_values"] == "0,255" and facts["mask_stray"] is False and facts["fg_fraction"] == 0.1
    assert facts["mask_problem"] is None and facts["mask_size_ok"] is True
    mask[3, 3] = 128
    facts = inspect_mask(_png(tmp_path / "s.png", mask, "L"), "s4", (5, 4))
    assert facts["mask_stray"] is True and "[128]" in facts["mask_problem"]


def test_ms3_palette_indices_and_size_mismatch(tmp_path: Path) -> None:
    indices = np.zeros((4, 4), np.uint8)
    indices[1, 1] = 1
    good = _png(tmp_path / "p.png", indices, "P")
    assert inspect_mask(good, "ms3", (4, 4))["mask_stray"] is False
    assert inspect_mask(good, "s4", (4, 4))["mask_stray"] is True  # S4 is read as grey: index 1 is not white
    indices[2, 2] = 2  # a third palette entry: not a binary mask
    facts = inspect_mask(_png(tmp_path / "p2.png", indices, "P"), "ms3", (8, 4))
    assert facts["mask_stray"] is True and facts["mask_size_ok"] is False
    assert "[2]" in facts["mask_problem"] and "differs from its frame (8, 4)" in facts["mask_problem"]


def test_avss_colours_map_to_classes(tmp_path: Path) -> None:
    labels = np.array([[0, 5], [70, 5]])
    rgb = avss_palette()[labels]
    facts = inspect_mask(_png(tmp_path / "c.png", rgb), "avss", None)
    assert facts["mask_values"] == "0,5,70" and facts["fg_fraction"] == 0.75 and facts["mask_stray"] is False
    rgb[0, 0] = (1, 2, 3)  # a colour outside the palette (e.g. a blended edge)
    facts = inspect_mask(_png(tmp_path / "d.png", rgb), "avss", None)
    assert facts["mask_stray"] is True and "unknown colour" in facts["mask_problem"]


def test_mask_not_annotated_or_missing(tmp_path: Path) -> None:
    assert inspect_mask(None, "s4", (224, 224))["mask_present"] is False
    facts = inspect_mask(tmp_path / "gone.png", "s4", None)
    assert facts["mask_present"] is False and facts["mask_problem"] == "missing file"


def test_audio_facts_truncation_and_corruption(tmp_path: Path, write_wav) -> None:
    write_wav(tmp_path / "a.wav", 5.0, rate=22050)
    facts = inspect_audio(tmp_path / "a.wav")
    assert facts == {"audio_readable": True, "sample_rate": 22050, "channels": 1, "duration_s": 5.0,
                     "audio_problem": None}  # fmt: skip
    data = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "t.wav").write_bytes(data[: len(data) // 2])  # header still declares 5 s
    facts = inspect_audio(tmp_path / "t.wav")
    assert facts["duration_s"] < 2.6 and "truncated wav" in facts["audio_problem"]
    (tmp_path / "c.wav").write_bytes(b"RIFF" + b"\0" * 40)
    facts = inspect_audio(tmp_path / "c.wav")
    assert not facts["audio_readable"] and "unreadable audio" in facts["audio_problem"]
    assert inspect_audio(tmp_path / "none.wav")["audio_problem"] == "missing file"
