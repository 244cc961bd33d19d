"""Prediction files, shared by `moca infer` and every baseline, in the layout `moca evaluate` reads.

Per frame `key`: `OUT/{key}.npy` float32 logits (saturated +-L for binary masks, so the F-score's threshold sweep
sees a clean step) and `OUT/{key}.png` the probability map as uint8 (value / 255). The two always agree, so
evaluation gives the same numbers whichever it reads. Side files for the report go under `OUT/_{kind}/{key}.*`.
The .npy is written before the .png, each atomically, and a frame counts as done only when both load with the
right size: an interrupted run resumes where it stopped and never trusts a half-written frame.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from moca.data.layout import FrameRef, VideoRef, list_videos
from moca.data.readers import read_image
from moca.io import atomic_write_bytes

AVSS_EVAL_SIZE = (224, 224)  # AVSS ground truth is scored at 224x224 (moca.evaluate)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def probability_logits(prob: np.ndarray, limit: float) -> np.ndarray:
    """Logits of probabilities clipped to +-limit: a binary mask becomes exactly +limit / -limit."""
    p = np.clip(prob.astype(np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        logits = np.log(p) - np.log1p(-p)
    return np.clip(logits, -limit, limit).astype(np.float32)


def write_prediction(out: Path, key: str, prob: np.ndarray, limit: float = 10.0) -> None:
    """Write frame `key`'s probability map (H, W) in [0, 1] (or a bool mask) as .npy logits and .png."""
    prob = np.asarray(prob, dtype=np.float32)
    atomic_write_bytes(out / f"{key}.npy", _npy_bytes(probability_logits(prob, limit)))
    grey = np.rint(np.clip(prob, 0, 1) * 255).astype(np.uint8)
    atomic_write_bytes(out / f"{key}.png", _png_bytes(Image.fromarray(grey, mode="L")))


def write_side_array(out: Path, kind: str, key: str, array: np.ndarray) -> None:
    atomic_write_bytes(out / f"_{kind}" / f"{key}.npy", _npy_bytes(np.asarray(array)))


def write_side_mask(out: Path, kind: str, key: str, mask: np.ndarray) -> None:
    grey = np.asarray(mask, dtype=bool).astype(np.uint8) * 255
    atomic_write_bytes(out / f"_{kind}" / f"{key}.png", _png_bytes(Image.fromarray(grey, mode="L")))


def prediction_done(out: Path, key: str, size: tuple[int, int]) -> bool:
    """True when both files of frame `key` exist, load, and have the frame's size (a resumed run skips it)."""
    npy, png = out / f"{key}.npy", out / f"{key}.png"
    if not (npy.is_file() and png.is_file()):
        return False
    try:
        array = np.load(npy, allow_pickle=False)
        with Image.open(png) as image:
            image.load()
            png_size = image.size[::-1]
    except Exception:  # any damage (truncation, garbage) means "redo this frame"
        return False
    return array.shape == tuple(size) and png_size == tuple(size) and bool(np.isfinite(array).all())


def load_frame(frame: FrameRef, benchmark: str) -> np.ndarray:
    """The frame as uint8 RGB (H, W, 3) at the size its prediction must have: the ground truth's (the frame's
    own size for S4/MS3; 224x224 for AVSS, resized bilinear as the official AVSS evaluation does)."""
    rgb = read_image(frame.image)
    if benchmark == "avss" and rgb.shape[:2] != AVSS_EVAL_SIZE:
        rgb = np.asarray(Image.fromarray(rgb).resize(AVSS_EVAL_SIZE[::-1], Image.Resampling.BILINEAR))
    return rgb


def frames_to_predict(data_root: Path, benchmark: str, split: str,
                      all_frames: bool = False) -> Iterator[tuple[VideoRef, list[FrameRef]]]:
    """Each video of the split with the frames to predict: the annotated ones, or all with `all_frames`."""
    for video in list_videos(data_root, benchmark, split):
        frames = [f for f in video.frames if all_frames or f.mask is not None]
        if frames:
            yield video, frames


RUN_FILE = "_run.json"


def claim_output(out: Path, identity: dict) -> None:
    """Mark `out` as holding the predictions of `identity` (model, method, config hash, data), written before the
    first frame. Resuming is only safe with the same identity: skipping "done" frames of another model or config
    would silently mix two runs' masks in one folder, so that is refused."""
    from moca.errors import ConfigError
    from moca.io import read_json, write_json

    path = out / RUN_FILE
    if path.is_file():
        previous = read_json(path)
        if previous != identity:
            changed = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
            raise ConfigError(f"{out}: holds predictions of another run (differs in {', '.join(changed)}); "
                              "use a new --out or delete the folder")
        return
    write_json(path, identity)
