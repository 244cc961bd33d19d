"""Cheap per-file checks for the manifest: each file is decoded once, and every problem is recorded, not raised.

A validation report must name *every* bad file in a dataset, so these functions never stop at the first error:
they return a flat dict of facts (size, mode, sample rate, ...) plus `problem`, a short text that is None for a
good file. What counts as a good mask follows `moca.data.readers` (the loader that training and evaluation use),
made stricter where the benchmark promises more (MS3 palette indices must be 0/1).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from moca.data.palette import colour_to_index
from moca.data.readers import read_wav
from moca.errors import DataError


def _decode(path: Path) -> tuple[Image.Image | None, str | None]:
    """The fully decoded image (PIL decodes lazily, so `.load()` is what catches truncation), or the problem."""
    if not path.is_file():
        return None, "missing file"
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy(), None
    # PIL raises many types on malformed input (OSError, SyntaxError, ValueError, EOFError, ...): all mean unreadable
    except Exception as exc:
        return None, f"unreadable image ({type(exc).__name__}: {exc})"


def inspect_image(path: Path) -> dict[str, Any]:
    image, problem = _decode(path)
    if image is None:
        return {"image_readable": False, "width": None, "height": None, "mode": None, "image_problem": problem}
    return {"image_readable": True, "width": image.width, "height": image.height, "mode": image.mode,
            "image_problem": None}  # fmt: skip


def _histogram(values: np.ndarray) -> dict[int, int]:
    counts = np.bincount(values.ravel())  # values are uint8 here: at most 256 bins
    return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}


def _binary_histogram(image: Image.Image, benchmark: str) -> tuple[dict[int, int], set[int]]:
    """(pixel count per value as the loader reads them, the values a binary mask may hold in this mode).

    As in `moca.data.readers`: MS3 masks are palette PNGs whose *indices* count (background 0, foreground 1);
    S4 masks are read as grey, so a palette S4 mask is judged by its colours.
    """
    if image.mode == "1" or (image.mode == "P" and benchmark == "ms3"):
        return _histogram(np.asarray(image, dtype=np.uint8)), {0, 1}
    rgb = np.asarray(image.convert("RGB"))
    if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
        return {-1: rgb.shape[0] * rgb.shape[1]}, {0, 255}  # colour in a binary mask: every pixel is suspect
    return _histogram(rgb[..., 0]), {0, 255}


def _class_histogram(image: Image.Image) -> dict[int, int]:
    """Pixel count per AVSS class (-1: a colour outside the palette); maps the distinct colours, not every pixel."""
    rgb = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(np.uint32)
    colours, counts = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2], return_counts=True)
    unpacked = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=-1)
    histogram: dict[int, int] = {}
    for index, count in zip(colour_to_index(unpacked).tolist(), counts.tolist()):
        histogram[index] = histogram.get(index, 0) + count
    return dict(sorted(histogram.items()))


def inspect_mask(path: Path | None, benchmark: str, image_size: tuple[int, int] | None) -> dict[str, Any]:
    """Facts about a ground-truth mask; `image_size` (w, h) of its frame, when readable, to check they agree."""
    empty = {"mask_present": False, "mask_readable": False, "mask_mode": None, "mask_values": None,
             "mask_stray": None, "mask_size_ok": None, "fg_fraction": None, "mask_problem": None}  # fmt: skip
    if path is None:
        return empty
    image, problem = _decode(path)
    if image is None:
        return {**empty, "mask_present": path.is_file(), "mask_problem": problem}
    histogram, allowed = (_class_histogram(image), None) if benchmark == "avss" else _binary_histogram(image, benchmark)
    stray = [v for v in histogram if v < 0 or (allowed is not None and v not in allowed)]
    size_ok = image_size is None or image.size == image_size
    problems = []
    if stray:
        problems.append(f"mask values outside {sorted(allowed) if allowed else 'the AVSS palette'}: {stray[:8]}"
                        .replace("[-1]", "[unknown colour]"))  # fmt: skip
    if not size_ok:
        problems.append(f"mask size {image.size} differs from its frame {image_size}")
    total = sum(histogram.values())
    foreground = sum(n for v, n in histogram.items() if v > 0)
    return {
        "mask_present": True,
        "mask_readable": True,
        "mask_mode": image.mode,
        "mask_values": ",".join(str(v) for v in histogram),
        "mask_stray": bool(stray),
        "mask_size_ok": size_ok,
        "fg_fraction": foreground / total if total else 0.0,
        "mask_problem": "; ".join(problems) or None,
    }


def _declared_wav_bytes(path: Path) -> tuple[int, int] | None:
    """(bytes the RIFF `data` chunk declares, bytes actually there), or None when not a plain RIFF/WAVE file.

    libsndfile silently clamps a truncated file to what is there, so truncation is only visible in the header.
    """
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while chunk := handle.read(8):
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                start = handle.tell()
                available = handle.seek(0, 2) - start
                return (None if size == 0xFFFFFFFF else (size, available))  # 0xFFFFFFFF: streamed, size unknown
            handle.seek(size + (size & 1), 1)  # chunks are word-aligned
    return None


def inspect_audio(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"audio_readable": False, "sample_rate": None, "channels": None, "duration_s": None,
                           "audio_problem": None}  # fmt: skip
    if not path.is_file():
        return {**out, "audio_problem": "missing file"}
    try:
        samples, rate = read_wav(path)
    except DataError as exc:
        return {**out, "audio_problem": exc.problem}
    out.update(audio_readable=True, sample_rate=rate, channels=samples.shape[0], duration_s=samples.shape[1] / rate)
    sizes = _declared_wav_bytes(path)
    if sizes is not None and sizes[1] < sizes[0]:
        out["audio_problem"] = f"truncated wav: header declares {sizes[0]} data bytes, file holds {sizes[1]}"
    return out
