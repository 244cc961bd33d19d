"""Score a folder of predictions against an AVSBench split with the official metrics (docs/metrics.md).

Predictions are keyed like the ground truth (`moca.data.layout`): frame `key` -> `PRED/{key}.npy` or `PRED/{key}.png`
(the .npy wins when both exist). For S4 and MS3 the layout of the official AVSBench `save_mask` is read too:
`PRED/{video}/{video}_{k-1}.png` (no category folder, frames numbered from 0), used when the keyed files are absent.

- binary protocol (S4, MS3; AVSS with non-zero = foreground): `.npy` float logits (H, W), scored through a float32
  sigmoid; `.png` greyscale probability maps (mode L, 1-bit, or a palette PNG whose palette is the grey ramp, as
  `save_mask`'s `convert('P')` writes), s = value / 255; colour or other palette PNGs are refused (they are label
  maps, and their grey value means nothing).
- semantic protocol (AVSS only): `.npy` float logits (71, H, W) (argmax) or an integer class map (H, W);
  `.png` coloured with the AVSS palette (palette or RGB PNG; colours map to classes by exact match).

Ground truth: frames whose mask is None (S4 train frames 2-5, AVSS v1s train frames 1-4) are not scored. AVSS
masks are resized to 224x224 (nearest), as the official evaluation does; S4/MS3 masks are used as stored. For the
semantic protocol every clip is padded to 10 frames with background, as the official loader does.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from moca.data.layout import FrameRef, VideoRef, list_videos, metadata_path
from moca.data.palette import AVSS_CLASSES, NUM_AVSS_CLASSES
from moca.data.readers import read_mask
from moca.errors import ConfigError, DataError
from moca.metrics import BinaryScorer, SemanticScorer, scores_from_logits
from moca.progress import progress

PROTOCOLS = ("binary", "semantic")
BINARY_PNG_MODES = ("L", "1")
AVSS_EVAL_SIZE = (224, 224)
AVSS_PADDED_FRAMES = 10  # the official AVSS loader pads every clip to 10 frames


def ground_truth(frame: FrameRef, benchmark: str) -> np.ndarray:
    """A frame's mask as evaluated: {0,1} (S4, MS3) or class indices (AVSS, resized to 224x224 nearest)."""
    assert frame.mask is not None
    mask = read_mask(frame.mask, benchmark)
    if benchmark == "avss" and mask.shape != AVSS_EVAL_SIZE:
        resized = Image.fromarray(mask.astype(np.uint8)).resize(AVSS_EVAL_SIZE[::-1], Image.Resampling.NEAREST)
        mask = np.asarray(resized, dtype=np.int64)
    return mask


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(path, f"unreadable .npy prediction ({exc})") from exc
    if not isinstance(array, np.ndarray):  # np.load opens an .npz archive whatever the file is called
        array.close()
        raise DataError(path, "is an .npz archive, not a .npy array; save one array per frame with np.save")
    if array.dtype.kind not in "fiub":
        raise DataError(path, f"prediction dtype {array.dtype} is not numeric")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(path, "prediction holds NaN or infinite values")
    return array


def _load_png(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except Exception as exc:  # PIL raises many types for malformed files; all mean "unreadable"
        raise DataError(path, f"unreadable PNG prediction ({type(exc).__name__}: {exc})") from exc


def _check_size(path: Path, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    if tuple(shape) != tuple(expected):
        got, want = "x".join(map(str, shape)), "x".join(map(str, expected))
        what = "the ground truth's size" if len(expected) == 2 else f"{expected[0]} class logits of that size"
        raise DataError(path, f"prediction is {got}, expected {want} ({what})")


def _grey(image: Image.Image, path: Path) -> np.ndarray:
    """A binary-protocol PNG as grey values 0..255: mode L or 1, or a palette PNG on the grey ramp (index i is
    colour (i, i, i), what AVSBench's `save_mask` writes with `convert('P')`)."""
    if image.mode in BINARY_PNG_MODES:
        return np.asarray(image.convert("L"), dtype=np.float32)  # mode "1" -> 0 / 255
    if image.mode == "P":
        indices = np.asarray(image)
        grey = np.asarray(image.convert("RGB"))
        if (grey == indices[..., None]).all():
            return indices.astype(np.float32)
    # a colour or label-palette PNG is a label map, not a probability map: reading its grey value would score an
    # arbitrary number silently
    raise DataError(path, f"binary predictions must be greyscale probability PNGs (mode L), not {image.mode}"
                          + (" with a colour palette" if image.mode == "P" else ""))


def prediction_files(pred_dir: Path, frame: FrameRef) -> tuple[Path, Path]:
    """The .npy and .png a prediction for `frame` may be in: keyed like its mask, or, when that is absent for S4
    and MS3, named as AVSBench's `save_mask` names it ({video}/{video}_{k-1}.png)."""
    npy, png = pred_dir / f"{frame.key}.npy", pred_dir / f"{frame.key}.png"
    parts = frame.key.split("/")
    if npy.is_file() or png.is_file() or "labels_rgb" in parts or len(parts) < 2:
        return npy, png
    video = parts[-2]
    return npy, pred_dir / video / f"{video}_{frame.index}.png"


def read_prediction(pred_dir: Path, frame: FrameRef, size: tuple[int, int], protocol: str) -> np.ndarray:
    """One frame's prediction: float32 scores in [0, 1] (binary) or int64 class indices (semantic), (H, W)."""
    npy, png = prediction_files(pred_dir, frame)
    if npy.is_file():
        array = _load_npy(npy)
        if protocol == "binary":
            if array.dtype.kind != "f":
                raise DataError(npy, f"binary predictions must be float logits, got dtype {array.dtype}")
            _check_size(npy, array.shape, size)
            return scores_from_logits(array)
        if array.ndim == 3 and array.dtype.kind == "f":
            _check_size(npy, array.shape, (NUM_AVSS_CLASSES, *size))  # type: ignore[arg-type]
            return array.argmax(axis=0).astype(np.int64)
        if array.dtype.kind == "f":
            raise DataError(npy, "semantic predictions must be (71, H, W) logits or an integer (H, W) class map")
        _check_size(npy, array.shape, size)
        if array.min() < 0 or array.max() >= NUM_AVSS_CLASSES:
            raise DataError(npy, f"class indices outside 0..{NUM_AVSS_CLASSES - 1}")
        return array.astype(np.int64)
    if png.is_file():
        if protocol == "semantic":
            classes = read_mask(png, "avss")  # exact palette colour match, DataError naming the file otherwise
            _check_size(png, classes.shape, size)
            return classes
        grey = _grey(_load_png(png), png)
        _check_size(png, grey.shape, size)
        return grey / np.float32(255)
    official = "" if png.stem == Path(frame.key).name else f", and {png.relative_to(pred_dir)} as save_mask names it"
    raise DataError(pred_dir / f"{frame.key}.png", f"missing prediction (looked for .png and .npy{official})")


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """The only torch work here is a sigmoid per 224x224 frame: too small to gain from threads, and on busy
    shared cores two threads waiting for each other made it ~100x slower (20 ms instead of 0.2 ms a frame)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _video_id(video: VideoRef) -> str:
    return f"{video.category}/{video.name}" if video.category else video.name


def evaluate_predictions(
    pred_dir: str | Path, data_root: str | Path, benchmark: str, split: str, protocol: str = "binary"
) -> dict:
    """Official scores of the predictions in `pred_dir` on `benchmark`/`split`, with per-video detail.

    Returns {"miou", "fscore", "benchmark", "split", "protocol", "num_videos", "num_frames", "per_video"} plus
    "per_category" for S4 and per-class detail for the semantic protocol.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if protocol == "semantic" and benchmark != "avss":
        raise ConfigError(f"the semantic protocol is for AVSS only, not {benchmark}")
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DataError(pred_dir, "prediction folder not found")
    videos = [v for v in list_videos(data_root, benchmark, split) if any(f.mask is not None for f in v.frames)]
    if not videos:
        raise DataError(metadata_path(data_root, benchmark), f"no annotated videos in split {split!r}")
    scorer = SemanticScorer() if protocol == "semantic" else BinaryScorer()
    with _one_torch_thread():
        for video in progress(videos, desc=f"evaluate {benchmark}/{split}"):
            frames = [f for f in video.frames if f.mask is not None]
            truth = np.stack([ground_truth(f, benchmark) for f in frames])
            preds = np.stack([read_prediction(pred_dir, f, truth.shape[1:], protocol) for f in frames])
            if protocol == "semantic":
                scorer.add(_video_id(video), preds, truth, pad_to=AVSS_PADDED_FRAMES)
            else:
                scorer.add(_video_id(video), preds, truth != 0)
    summary = scorer.summary()
    result = {
        "miou": summary["miou"],
        "fscore": summary["fscore"],
        "benchmark": benchmark,
        "split": split,
        "protocol": protocol,
        "num_videos": summary["num_videos"],
        "num_frames": summary["num_frames"],
        "per_video": scorer.per_video,
    }
    if protocol == "semantic":
        result["per_class"] = {
            name: {"iou": iou, "fscore": f, "count": count}
            for name, iou, f, count in zip(
                AVSS_CLASSES, summary["per_class_iou"], summary["per_class_fscore"], summary["class_count"]
            )
        }
    if benchmark == "s4":
        result["per_category"] = _per_category(videos, scorer.per_video)
    return result


def _per_category(videos: list[VideoRef], per_video: dict[str, dict]) -> dict[str, dict[str, float | int]]:
    """Mean mIoU and F over the videos of each S4 category."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for video in videos:
        groups[str(video.category)].append(per_video[_video_id(video)])
    return {
        category: {
            "miou": float(np.mean([r["miou"] for r in rows])),
            "fscore": float(np.mean([r["fscore"] for r in rows])),
            "num_videos": len(rows),
        }
        for category, rows in sorted(groups.items())
    }
