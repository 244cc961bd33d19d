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
    assert inspect_image(good) == {"image_readable": True, "image_bytes": good.stat().st_size, "width": 200,
                                   "height": 224, "mode": "RGB", "image_problem": None}  # fmt: skip
    truncated = tmp_path / "t.png"
    truncated.write_bytes(good.read_bytes()[:100])
    facts = inspect_image(truncated)
    assert not facts["image_readable"] and "unreadable image" in facts["image_problem"] and facts["image_bytes"] == 100
    assert inspect_image(tmp_path / "nope.png")["image_problem"] == "missing file"


def test_binary_mask_values_fraction_size_and_stray(tmp_path: Path) -> None:
    mask = np.zeros((4, 5), np.uint8)
    mask[0, :2] = 255  # 2 of 20 pixels foreground
    facts = inspect_mask(_png(tmp_path / "m.png", mask, "L"), "s4")
    assert facts["mask_values"] == "0,255" and facts["mask_kind"] == "grey" and facts["fg_fraction"] == 0.1
    assert (facts["mask_min"], facts["mask_max"], facts["mask_width"], facts["mask_height"]) == (0, 255, 5, 4)
    assert facts["mask_problem"] is None
    mask[3, 3] = 128
    facts = inspect_mask(_png(tmp_path / "s.png", mask, "L"), "s4")
    assert facts["mask_values"] == "0,128,255" and "[128]" in facts["mask_problem"]


def test_palette_masks_are_read_by_index(tmp_path: Path) -> None:
    indices = np.zeros((4, 4), np.uint8)
    indices[1, 1] = 1
    good = _png(tmp_path / "p.png", indices, "P")
    for benchmark in ("ms3", "s4"):  # one decoder for both: palette 0/1 and 0/255 are valid binary masks
        facts = inspect_mask(good, benchmark)
        assert facts["mask_kind"] == "palette" and facts["mask_values"] == "0,1" and facts["mask_problem"] is None
    indices[2, 2] = 2  # a third palette entry: not a binary mask
    facts = inspect_mask(_png(tmp_path / "p2.png", indices, "P"), "ms3")
    assert "[2]" in facts["mask_problem"]


def test_avss_colours_map_to_classes(tmp_path: Path) -> None:
    labels = np.array([[0, 5], [70, 5]])
    rgb = avss_palette()[labels]
    facts = inspect_mask(_png(tmp_path / "c.png", rgb), "avss")
    assert facts["mask_values"] == "0,5,70" and facts["fg_fraction"] == 0.75 and facts["mask_problem"] is None
    assert (facts["mask_kind"], facts["mask_min"], facts["mask_max"]) == ("classes", 0, 70)
    rgb[0, 0] = (1, 2, 3)  # a colour outside the palette (e.g. a blended edge)
    facts = inspect_mask(_png(tmp_path / "d.png", rgb), "avss")
    assert facts["mask_min"] == -1 and "1 pixel(s) with colours outside the AVSS palette" in facts["mask_problem"]


def test_mask_not_annotated_or_missing(tmp_path: Path) -> None:
    assert inspect_mask(None, "s4")["mask_present"] is False
    facts = inspect_mask(tmp_path / "gone.png", "s4")
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
