"""Readers for AVSBench frames, masks and audio, plus lazy iteration over a split.

Every reader turns any failure to decode (missing, truncated, wrong format, malformed content) into a DataError
naming the file, so a bad file in a 5,000-video dataset is reported as that file, never as a PIL/soundfile
traceback. Images are fully decoded here (PIL decodes lazily) so that a truncated PNG fails in the reader, not
later inside a DataLoader worker.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from moca.data.layout import FrameRef, VideoRef, check_benchmark, list_videos
from moca.data.palette import colour_to_index
from moca.errors import DataError

WAV_FORMATS = {"WAV", "WAVEX", "RF64"}


def _open_image(path: Path, data: bytes | None = None) -> Image.Image:
    """Decode the image file `path`, or the encoded bytes `data` (then `path` only names them in errors)."""
    if data is None and not path.is_file():
        raise DataError(path, "file not found")
    try:
        with Image.open(path if data is None else io.BytesIO(data)) as image:
            image.load()  # force the full decode so truncation is caught here
            return image.copy()
    # PIL raises a zoo of types on malformed input (OSError, SyntaxError, ValueError, struct.error, EOFError,
    # DecompressionBombError...): all of them mean "this file is not a readable image".
    except Exception as exc:
        raise DataError(path, f"unreadable image ({type(exc).__name__}: {exc})") from exc


def _to_rgb(image: Image.Image, path: Path) -> np.ndarray:
    try:
        rgb = image.convert("RGB")  # grey, RGBA (alpha dropped), palette -> RGB
    except Exception as exc:
        raise DataError(path, f"image mode {image.mode} cannot be converted to RGB ({exc})") from exc
    return np.asarray(rgb, dtype=np.uint8).copy()


def read_image(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """A frame as uint8 (H, W, 3) RGB, from the file `path` or from encoded bytes `data` (PNG, JPEG...) that
    `path` names in errors (a served model's input)."""
    path = Path(path)
    return _to_rgb(_open_image(path, data), path)


# How a binary mask (S4, MS3) may store background/foreground, by the kind of PNG. Index 0 / level 0 is background,
# anything else foreground. The official loaders turn only the 255 encodings into {0, 1} targets (S4:
# `convert('1')`, MS3: `convert('P')` then `ToTensor`, which divides by 255); palette 0/1 is what VOS-style tools
# write and is unambiguous, so it is accepted too (docs/data.md).
BINARY_MASK_VALUES: dict[str, tuple[frozenset[int], ...]] = {
    "bilevel": (frozenset({0, 1}),),  # mode "1"
    "grey": (frozenset({0, 255}),),  # L (or RGB/RGBA whose channels agree): grey 0/1 would read as all background
    "palette": (frozenset({0, 255}), frozenset({0, 1})),  # P: the indices count, whatever their colours
}
COLOUR = -1  # stands for a pixel whose channels differ, in a binary mask's value histogram


@dataclass(frozen=True)
class BinaryMask:
    """A decoded binary mask: what the file stores, and what moca reads from it."""

    kind: str  # "bilevel", "grey", "palette", or "colour" (channels differ: never a valid binary mask)
    histogram: dict[int, int]  # pixels per stored value (grey level or palette index; COLOUR for colour pixels)
    stray: tuple[int, ...]  # values outside every encoding of this kind (empty for a valid mask)
    foreground: np.ndarray  # uint8 (H, W): 1 where the stored value is not 0

    @property
    def problem(self) -> str | None:
        """One line saying what is wrong, or None for a valid mask."""
        if not self.stray:
            return None
        if self.kind == "colour":
            pixels = self.histogram[COLOUR]
            return f"binary mask in colour ({pixels} pixel(s) whose channels differ); save it as grey or palette"
        allowed = " or ".join(str(sorted(s)) for s in BINARY_MASK_VALUES[self.kind])
        hint = " (grey 0/1 reads as all background in the official loaders: save foreground as 255)" \
            if self.kind == "grey" and set(self.histogram) <= {0, 1} else ""  # fmt: skip
        return f"{self.kind} mask values outside {allowed}: {list(self.stray)[:8]}{hint}"


def _histogram(values: np.ndarray) -> dict[int, int]:
    if values.size and values.min() >= 0 and values.max() < 65536:  # bincount: 10x faster than unique on 8-bit masks
        counts = np.bincount(values.ravel())
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    distinct, counts = np.unique(values, return_counts=True)
    return dict(zip(distinct.tolist(), counts.tolist()))


def _stray(kind: str, values: set[int]) -> tuple[int, ...]:
    if kind == "colour":
        return (COLOUR,)
    encodings = BINARY_MASK_VALUES[kind]
    if any(values <= allowed for allowed in encodings):
        return ()
    closest = max(encodings, key=lambda allowed: len(values & allowed))  # name the values that break the best fit
    return tuple(sorted(values - closest))


def decode_binary_mask(image: Image.Image, path: Path) -> BinaryMask:
    """Decode an S4/MS3 mask without judging its values (validation reports `problem`, readers raise it); only a
    mode that has no grey or colour reading (a DataError naming `path`) stops it."""
    if image.mode in {"1", "P", "L", "I", "I;16"}:
        kind = {"1": "bilevel", "P": "palette"}.get(image.mode, "grey")
        values = np.asarray(image).astype(np.int64)  # palette PNG: its indices; grey: its levels
        histogram = _histogram(values)
    else:  # RGB, RGBA, LA, ...: a grey mask saved with colour channels
        rgb = _to_rgb(image, path)
        grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
        kind = "grey" if grey.all() else "colour"
        values = np.where(grey, rgb[..., 0], rgb.max(axis=-1)).astype(np.int64)
        histogram = _histogram(values[grey]) | ({} if grey.all() else {COLOUR: int((~grey).sum())})
    return BinaryMask(kind, histogram, _stray(kind, set(histogram)), (values != 0).astype(np.uint8))


def read_binary_mask(path: str | Path) -> np.ndarray:
    """An S4/MS3 ground-truth mask as uint8 {0, 1}; a DataError naming the file for stray values or colour.

    The one reader of binary masks: `read_mask`, the datasets, `moca evaluate` and `moca data validate` all use it.
    """
    path = Path(path)
    mask = decode_binary_mask(_open_image(path), path)
    if mask.problem:
        raise DataError(path, mask.problem)
    return mask.foreground


def _avss_mask(image: Image.Image, path: Path) -> np.ndarray:
    rgb = _to_rgb(image, path)
    index = colour_to_index(rgb)
    unknown = index < 0
    if unknown.any():
        colours = np.unique(rgb[unknown], axis=0)[:5].tolist()
        raise DataError(path, f"{int(unknown.sum())} pixel(s) with colour(s) outside the AVSS palette, e.g. {colours}")
    return index


def read_mask(path: str | Path, benchmark: str) -> np.ndarray:
    """A ground-truth mask: S4/MS3 -> uint8 {0,1} (H, W); AVSS -> int64 class indices (H, W) in 0..70."""
    path = Path(path)
    check_benchmark(benchmark)
    return _avss_mask(_open_image(path), path) if benchmark == "avss" else read_binary_mask(path)


def read_wav(path: str | Path, data: bytes | None = None) -> tuple[np.ndarray, int]:
    """A wav file (or WAV bytes `data`, named `path` in errors) as float32 samples (channels, n) in [-1, 1] and its
    sample rate. No resampling here."""
    path = Path(path)
    if data is None and not path.is_file():
        raise DataError(path, "file not found")
    try:
        with soundfile.SoundFile(path if data is None else io.BytesIO(data)) as sound:
            if sound.format not in WAV_FORMATS:
                raise DataError(path, f"not a WAV file (format {sound.format})")
            samples = sound.read(dtype="float32", always_2d=True)
            rate = sound.samplerate
    except DataError:
        raise
    except Exception as exc:  # libsndfile reports every malformed header or body as one of several types
        raise DataError(path, f"unreadable audio ({type(exc).__name__}: {exc})") from exc
    if samples.shape[0] == 0:
        raise DataError(path, "empty audio (0 samples)")
    if not np.isfinite(samples).all():
        raise DataError(path, "audio holds NaN or infinite samples")
    return np.ascontiguousarray(samples.T), rate


def iter_videos(root: str | Path, benchmark: str, split: str | None = None) -> Iterator[VideoRef]:
    """Videos of a split in metadata order; only the CSV is read up front, files are opened by the caller."""
    yield from list_videos(root, benchmark, split)


def iter_frames(root: str | Path, benchmark: str, split: str | None = None) -> Iterator[tuple[VideoRef, FrameRef]]:
    """(video, frame) pairs of a split, video by video."""
    for video in iter_videos(root, benchmark, split):
        for frame in video.frames:
            yield video, frame


def read_frame_mask(video: VideoRef, frame: FrameRef) -> np.ndarray | None:
    """The frame's ground truth, or None where the benchmark annotates none (S4 train frames 2-5, ...)."""
    return None if frame.mask is None else read_mask(frame.mask, video.benchmark)
