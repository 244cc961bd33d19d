"""AVSBench-semantic (AVSS) class colours: the PASCAL-VOC bit-interleaving palette over 71 classes.

AVSS stores labels as colour PNGs (`labels_rgb/{i}.png`). The official loader (`get_v2_pallete`) builds the colour
of class i by spreading the bits of i over the high bits of R, G and B, three bits per round; a pixel's class is
the palette entry its colour matches *exactly* (JPEG-like blending would produce colours that match nothing).
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np

# The official AVSBench-semantic label list (label2idx.json), background first: index = class id.
AVSS_CLASSES: tuple[str, ...] = (
    "background", "accordion", "airplane", "axe", "baby", "bassoon", "bell", "bird", "boat", "boy", "bus", "car",
    "cat", "cello", "clarinet", "clipper", "clock", "dog", "donkey", "drum", "duck", "elephant", "emergency-car",
    "erhu", "flute", "frying-food", "girl", "goose", "guitar", "gun", "guzheng", "hair-dryer", "handpan",
    "harmonica", "harp", "helicopter", "hen", "horse", "keyboard", "leopard", "lion", "man", "marimba",
    "missile-rocket", "motorcycle", "mower", "parrot", "piano", "pig", "pipa", "saw", "saxophone", "sheep", "sitar",
    "sorna", "squirrel", "tabla", "tank", "tiger", "tractor", "train", "trombone", "truck", "trumpet", "tuba",
    "ukulele", "utv", "vacuum-cleaner", "violin", "wolf", "woman",
)  # fmt: skip
NUM_AVSS_CLASSES = len(AVSS_CLASSES)  # 71: 70 sound sources + background


@cache
def _palette(num_classes: int) -> np.ndarray:
    colours = np.zeros((num_classes, 3), dtype=np.uint8)
    for index in range(num_classes):
        bits, rgb = index, [0, 0, 0]
        for shift in range(7, -1, -1):  # lowest bits of the index land in the highest bit of each channel
            for channel in range(3):
                rgb[channel] |= ((bits >> channel) & 1) << shift
            bits >>= 3
        colours[index] = rgb
    colours.setflags(write=False)
    return colours


def avss_palette(num_classes: int = NUM_AVSS_CLASSES) -> np.ndarray:
    """(num_classes, 3) uint8 colours; row i is the colour of class i (read-only)."""
    return _palette(num_classes)


def _packed(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


@lru_cache(maxsize=1)
def _lookup() -> tuple[np.ndarray, np.ndarray]:
    keys = _packed(avss_palette())
    order = np.argsort(keys)
    return keys[order], order


def colour_to_index(rgb: np.ndarray) -> np.ndarray:
    """Class index for each colour of `rgb` (..., 3); -1 where the colour is not in the palette."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"expected colours shaped (..., 3), got {rgb.shape}")
    keys, order = _lookup()
    packed = _packed(rgb)
    pos = np.clip(np.searchsorted(keys, packed), 0, len(keys) - 1)
    return np.where(keys[pos] == packed, order[pos], -1).astype(np.int64)


def index_to_colour(index: np.ndarray | int) -> np.ndarray:
    """Colour (..., 3) uint8 of each class index; raises ValueError for an index outside the palette."""
    index = np.asarray(index)
    if index.size and (index.min() < 0 or index.max() >= NUM_AVSS_CLASSES):
        raise ValueError(f"class index outside 0..{NUM_AVSS_CLASSES - 1}")
    return avss_palette()[index]
