"""Binary masks (S4, MS3) in every encoding seen in the wild, hand-made: what is accepted, what is refused, and that
`moca data validate`'s manifest and `read_mask` (training, `moca evaluate`) agree because they share one decoder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from avs_files import square_mask
from PIL import Image

from moca.data.palette import avss_palette
from moca.data.readers import decode_binary_mask, read_binary_mask, read_mask
from moca.errors import DataError
from moca.validation.inspect import inspect_mask

FOREGROUND = 50 * 60  # pixels of square_mask()


def _grey(on: int) -> Image.Image:
    return Image.fromarray(square_mask(on=on), "L")


def _palette(on: int, palette: list[int]) -> Image.Image:
    image = Image.fromarray(square_mask(on=on), "P")
    image.putpalette(palette)
    return image


GREY_PALETTE = [v for level in range(256) for v in (level, level, level)]  # what PIL's L -> P conversion writes
VOS_PALETTE = avss_palette(256).flatten().tolist()  # index 1 = dark red, as DAVIS-style tools write

ACCEPTED: dict[str, tuple[Callable[[], Image.Image], str]] = {
    "grey 0/255 (official release)": (lambda: _grey(255), "grey"),
    "palette 0/255 (official save_mask: L -> P)": (lambda: _grey(255).convert("P"), "palette"),
    "palette 0/255, colour palette": (lambda: _palette(255, VOS_PALETTE), "palette"),
    "palette 0/1": (lambda: _palette(1, VOS_PALETTE), "palette"),
    "palette 0/1, grey palette (looks black)": (lambda: _palette(1, GREY_PALETTE), "palette"),
    "bilevel (mode 1)": (lambda: Image.fromarray(square_mask() > 0), "bilevel"),
    "grey 0/255 saved as RGB": (lambda: _grey(255).convert("RGB"), "grey"),
}


@pytest.mark.parametrize("name", list(ACCEPTED))
@pytest.mark.parametrize("benchmark", ["s4", "ms3"])
def test_accepted_encodings_read_as_zero_one(tmp_path: Path, name: str, benchmark: str) -> None:
    make, kind = ACCEPTED[name]
    path = tmp_path / "m.png"
    make().save(path)
    mask = read_mask(path, benchmark)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1} and mask.sum() == FOREGROUND
    assert mask[60, 70] == 1 and mask[0, 0] == 0
    facts = inspect_mask(path, benchmark)
    assert facts["mask_kind"] == kind and facts["mask_problem"] is None
    assert facts["fg_fraction"] == pytest.approx(FOREGROUND / 224**2)


def _with_pixel(image: Image.Image, value: int) -> Image.Image:
    array = np.asarray(image).copy()
    array[0, 0] = value
    out = Image.fromarray(array, image.mode)
    if image.mode == "P":
        out.putpalette(image.getpalette())
    return out


def _red_pixel() -> Image.Image:
    rgb = np.repeat(square_mask()[..., None], 3, axis=2)
    rgb[0, 0] = (200, 0, 0)
    return Image.fromarray(rgb)


REFUSED: dict[str, tuple[Callable[[], Image.Image], str]] = {
    "grey 128 in a 0/255 mask": (lambda: _with_pixel(_grey(255), 128), "grey mask values outside [0, 255]: [128]"),
    "grey 0/1": (lambda: _grey(1), "grey mask values outside [0, 255]: [1] (grey 0/1 reads as all background"),
    "palette index 128": (lambda: _with_pixel(_palette(255, VOS_PALETTE), 128),
                          "palette mask values outside [0, 255] or [0, 1]: [128]"),
    "palette mixing 1 and 255": (lambda: _with_pixel(_palette(255, VOS_PALETTE), 1),
                                 "palette mask values outside [0, 255] or [0, 1]: [1]"),
    "colour pixels": (_red_pixel, "binary mask in colour (1 pixel(s)"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_stray_values_are_refused_by_reader_and_validation(tmp_path: Path, name: str) -> None:
    make, message = REFUSED[name]
    path = tmp_path / "m.png"
    make().save(path)
    for benchmark in ("s4", "ms3"):
        with pytest.raises(DataError) as info:
            read_mask(path, benchmark)
        assert str(path) in str(info.value) and message in str(info.value)
        assert message in inspect_mask(path, benchmark)["mask_problem"]
    with pytest.raises(DataError, match="outside|colour"):
        read_binary_mask(path)


def test_decode_reports_values_without_raising() -> None:
    mask = decode_binary_mask(_with_pixel(_grey(255), 128), Path("m.png"))
    assert mask.kind == "grey" and mask.stray == (128,)
    assert mask.histogram == {0: 224 * 224 - FOREGROUND - 1, 128: 1, 255: FOREGROUND}
    assert mask.foreground.sum() == FOREGROUND + 1  # non-zero is foreground; the caller decides to refuse it


def test_evaluate_refuses_a_stray_ms3_value_instead_of_counting_it_as_foreground(ms3_root: Path) -> None:
    """Issue 13: `moca evaluate` read MS3 masks as `index != 0`, so a stray 128 silently became foreground."""
    from moca.data.layout import list_videos
    from moca.evaluate import ground_truth

    (video,) = list_videos(ms3_root, "ms3")
    frame = video.frames[0]
    assert ground_truth(frame, "ms3").sum() == FOREGROUND
    _with_pixel(Image.open(frame.mask), 128).save(frame.mask)
    with pytest.raises(DataError, match=r"palette mask values outside \[0, 255\] or \[0, 1\]: \[128\]"):
        ground_truth(frame, "ms3")
