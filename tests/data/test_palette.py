from __future__ import annotations

import numpy as np
import pytest

from moca.data.palette import AVSS_CLASSES, avss_palette, colour_to_index, index_to_colour


def test_palette_is_pascal_voc() -> None:
    palette = avss_palette()
    assert palette.shape == (71, 3) and palette.dtype == np.uint8
    known = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 7: (128, 128, 128), 8: (64, 0, 0), 15: (192, 128, 128),
             20: (0, 64, 128)}  # fmt: skip  # the well-known VOC colours (15 = VOC 'person')
    for index, colour in known.items():
        assert tuple(palette[index]) == colour
    assert len({tuple(c) for c in palette}) == 71  # every class has its own colour


def test_class_names() -> None:
    assert len(AVSS_CLASSES) == 71 and AVSS_CLASSES[0] == "background" and AVSS_CLASSES[-1] == "woman"
    assert len(set(AVSS_CLASSES)) == 71


def test_colour_index_round_trip() -> None:
    indices = np.arange(71).reshape(71, 1)
    assert np.array_equal(colour_to_index(index_to_colour(indices)), indices)
    assert colour_to_index(np.array([[128, 0, 0], [1, 2, 3]])).tolist() == [1, -1]
    with pytest.raises(ValueError):
        index_to_colour(71)
