"""Readers for AVSBench frames, masks and audio, plus lazy iteration over a split.

Every reader turns any failure to decode (missing, truncated, wrong format, malformed content) into a DataError
naming the file, so a bad file in a 5,000-video dataset is reported as that file, never as a PIL/soundfile
traceback. Images are fully decoded here (PIL decodes lazily) so that a truncated PNG fails in the reader, not
later inside a DataLoader worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from moca.data.layout import FrameRef, VideoRef, check_benchmark, list_videos
from moca.data.palette import colour_to_index
from moca.errors import DataError

WAV_FORMATS = {"WAV", "WAVEX", "RF64"}


def _open_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with Image.open(path) as image:
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


def read_image(path: str | Path) -> np.ndarray:
    """A frame as uint8 (H, W, 3) RGB."""
    path = Path(path)
    return _to_rgb(_open_image(path), path)


def _s4_mask(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8)
    rgb = _to_rgb(image, path)
    if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
        raise DataError(path, "S4 mask is not greyscale (channels differ)")
    grey = rgb[..., 0]
    stray = np.setdiff1d(np.unique(grey), [0, 255])
    if stray.size:
        raise DataError(path, f"S4 mask must hold only 0 and 255; found {stray[:8].tolist()}")
    return (grey == 255).astype(np.uint8)


def _ms3_mask(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode in {"P", "L", "1", "I", "I;16", "F"}:
        # a palette PNG's array is its palette indices: index 0 is background whatever its colour
        return (np.asarray(image) != 0).astype(np.uint8)
    return (_to_rgb(image, path) != 0).any(axis=-1).astype(np.uint8)


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
    image = _open_image(path)
    reader = {"s4": _s4_mask, "ms3": _ms3_mask, "avss": _avss_mask}[benchmark]
    return reader(image, path)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A wav file as float32 samples (channels, n) in [-1, 1] and its sample rate. No resampling here."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with soundfile.SoundFile(path) as sound:
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
