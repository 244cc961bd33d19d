"""Cheap per-file checks for the manifest: each file is decoded once, and every problem is recorded, not raised.

A validation report must name *every* bad file in a dataset, so these functions never stop at the first error:
they return a flat dict of facts (size, mode, sample rate, ...) plus `problem`, a short text that is None for a
good file. What counts as a good mask follows `moca.data.readers` (the loader that training and evaluation use),
binary masks through the same `decode_binary_mask`.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from moca.data.palette import colour_to_index
from moca.data.readers import decode_binary_mask, read_wav
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
    size = path.stat().st_size if path.is_file() else None
    if image is None:
        return {"image_readable": False, "image_bytes": size, "width": None, "height": None, "mode": None,
                "image_problem": problem}  # fmt: skip
    return {"image_readable": True, "image_bytes": size, "width": image.width, "height": image.height,
            "mode": image.mode, "image_problem": None}  # fmt: skip


def _class_histogram(image: Image.Image) -> dict[int, int]:
    """Pixel count per AVSS class (-1: a colour outside the palette); maps the distinct colours, not every pixel."""
    rgb = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(np.uint32)
    colours, counts = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2], return_counts=True)
    unpacked = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=-1)
    histogram: dict[int, int] = {}
    for index, count in zip(colour_to_index(unpacked).tolist(), counts.tolist()):
        histogram[index] = histogram.get(index, 0) + count
    return dict(sorted(histogram.items()))


def _mask_values(image: Image.Image, path: Path, benchmark: str) -> tuple[str, dict[int, int], str | None]:
    """(kind, pixels per value, problem): binary masks through the readers' one decoder, AVSS by class colour."""
    if benchmark != "avss":
        mask = decode_binary_mask(image, path)
        return mask.kind, mask.histogram, mask.problem
    histogram = _class_histogram(image)
    problem = f"{histogram[-1]} pixel(s) with colours outside the AVSS palette" if -1 in histogram else None
    return "classes", histogram, problem


def inspect_mask(path: Path | None, benchmark: str) -> dict[str, Any]:
    """Facts about a ground-truth mask: how it is stored, its values, its size (checked against the frame by GE)."""
    empty = {"mask_present": False, "mask_readable": False, "mask_mode": None, "mask_kind": None,
             "mask_values": None, "mask_min": None, "mask_max": None, "mask_width": None, "mask_height": None,
             "fg_fraction": None, "mask_problem": None}  # fmt: skip
    if path is None:
        return empty
    image, problem = _decode(path)
    if image is None:
        return {**empty, "mask_present": path.is_file(), "mask_problem": problem}
    try:
        kind, histogram, problem = _mask_values(image, path, benchmark)
    except DataError as exc:  # a mode with no grey or colour reading
        return {**empty, "mask_present": True, "mask_problem": exc.problem}
    total = sum(histogram.values())
    foreground = sum(n for v, n in histogram.items() if v != 0)
    return {
        "mask_present": True,
        "mask_readable": True,
        "mask_mode": image.mode,
        "mask_kind": kind,
        "mask_values": ",".join(str(v) for v in sorted(histogram)),
        "mask_min": min(histogram),
        "mask_max": max(histogram),
        "mask_width": image.width,
        "mask_height": image.height,
        "fg_fraction": foreground / total if total else 0.0,
        "mask_problem": problem,
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
