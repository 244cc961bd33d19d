"""Where AVSBench keeps its files, exactly as the official release unpacks (see docs/data.md).

`--data DIR` always names the AVSBench root: the folder holding `Single-source/` and `Multi-sources/` (S4, MS3),
or AVSS's `metadata.csv`. Names read from the metadata CSVs become path components, so each is checked before
use: a name that could escape the dataset root (`..`, a separator, an absolute path) is a DataError.

Predictions are keyed like the ground truth: a frame's `key` is its mask path relative to `mask_root(...)`
without the extension, so `PRED/{key}.png` or `PRED/{key}.npy` sits where `moca evaluate` looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from moca.errors import DataError

BENCHMARKS = ("s4", "ms3", "avss")
SPLITS = ("train", "val", "test")
AVSS_SUBSETS = {"v1s": 5, "v1m": 5, "v2": 10}  # frames per clip
FRAMES_PER_CLIP = 5  # S4 and MS3

S4_META = Path("Single-source/s4_meta_data.csv")
MS3_META = Path("Multi-sources/ms3_meta_data.csv")
AVSS_META = Path("metadata.csv")


@dataclass(frozen=True)
class FrameRef:
    index: int  # 0-based position in the clip
    image: Path
    mask: Path | None  # None where the benchmark annotates no mask for this frame
    key: str  # prediction name: mask path relative to mask_root, no extension
    time_s: float  # time of the frame within the clip, for the audio window


@dataclass(frozen=True)
class VideoRef:
    benchmark: str
    split: str
    name: str  # S4/MS3 video name, AVSS uid
    category: str | None  # S4 category, AVSS subset label (v1s/v1m/v2), None for MS3
    audio: Path
    frames: tuple[FrameRef, ...]


def check_benchmark(benchmark: str) -> str:
    if benchmark not in BENCHMARKS:
        raise DataError(benchmark, f"unknown benchmark; expected one of {BENCHMARKS}")
    return benchmark


def safe_name(name: object, csv: Path, row: int) -> str:
    """A metadata value used as a path component: refuse anything that could leave the dataset root."""
    text = str(name).strip()
    if (
        not text
        or text in {".", ".."}
        or "/" in text
        or "\\" in text
        or "\0" in text
        or Path(text).is_absolute()
        or (len(text) > 1 and text[1] == ":")
    ):
        raise DataError(csv, f"row {row}: unsafe name {text!r} (would escape the dataset root)")
    return text


def metadata_path(root: str | Path, benchmark: str) -> Path:
    check_benchmark(benchmark)
    return Path(root) / {"s4": S4_META, "ms3": MS3_META, "avss": AVSS_META}[benchmark]


def read_metadata(root: str | Path, benchmark: str) -> pd.DataFrame:
    """The metadata CSV as a frame with columns video, category (None for MS3), split, checked row by row.

    Columns are taken by position for S4 (name, start, category, split) and MS3 (name, split) as the official
    loader does, and by name for AVSS (uid, label, split).
    """
    csv = metadata_path(root, benchmark)
    if not csv.is_file():
        raise DataError(csv, "metadata CSV not found")
    try:
        table = pd.read_csv(csv, sep=",", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(csv, f"unreadable CSV ({exc})") from exc
    if "split" not in table.columns:
        raise DataError(csv, f"no 'split' column in header {list(table.columns)}")
    if benchmark == "avss":
        missing = {"uid", "label"} - set(table.columns)
        if missing:
            raise DataError(csv, f"missing column(s) {sorted(missing)}")
        videos, categories = table["uid"], table["label"]
    else:
        if table.shape[1] < (4 if benchmark == "s4" else 2):
            raise DataError(csv, f"too few columns ({table.shape[1]}) for {benchmark}")
        videos = table.iloc[:, 0]
        categories = table.iloc[:, 2] if benchmark == "s4" else pd.Series([None] * len(table))
    rows = []
    for i, (video, category, split) in enumerate(zip(videos, categories, table["split"]), start=2):
        if split not in SPLITS:
            raise DataError(csv, f"row {i}: unknown split {split!r}; expected one of {SPLITS}")
        if benchmark == "avss" and category not in AVSS_SUBSETS:
            raise DataError(csv, f"row {i}: unknown label {category!r}; expected one of {tuple(AVSS_SUBSETS)}")
        name = safe_name(video, csv, i)
        rows.append((name, None if category is None else safe_name(category, csv, i), split))
    out = pd.DataFrame(rows, columns=["video", "category", "split"])
    dup = out["video"][out["video"].duplicated()]
    if len(dup):
        raise DataError(csv, f"duplicate video name(s): {sorted(set(dup))[:5]}")
    return out


def mask_root(root: str | Path, benchmark: str, split: str) -> Path:
    root = Path(root)
    check_benchmark(benchmark)
    if benchmark == "s4":
        return root / "Single-source/s4_data/gt_masks" / split
    if benchmark == "ms3":
        return root / "Multi-sources/ms3_data/gt_masks" / split
    return root


def _s4_video(root: Path, name: str, category: str, split: str) -> VideoRef:
    base = root / "Single-source/s4_data"
    masks = base / "gt_masks" / split / category / name
    frames = tuple(
        FrameRef(
            index=k - 1,
            image=base / "visual_frames" / split / category / name / f"{name}_{k}.png",
            mask=masks / f"{name}_{k}.png" if (split != "train" or k == 1) else None,
            key=f"{category}/{name}/{name}_{k}",
            time_s=(k - 1) + 15 / 16,
        )
        for k in range(1, FRAMES_PER_CLIP + 1)
    )
    return VideoRef("s4", split, name, category, base / "audio_wav" / split / category / f"{name}.wav", frames)


def _ms3_video(root: Path, name: str, split: str) -> VideoRef:
    base = root / "Multi-sources/ms3_data"
    frames = tuple(
        FrameRef(
            index=k - 1,
            image=base / "visual_frames" / name / f"{name}.mp4_{k}.png",
            mask=base / "gt_masks" / split / name / f"{name}_{k}.png",
            key=f"{name}/{name}_{k}",
            time_s=(k - 1) + 15 / 16,
        )
        for k in range(1, FRAMES_PER_CLIP + 1)
    )
    return VideoRef("ms3", split, name, None, base / "audio_wav" / split / f"{name}.wav", frames)


def _avss_video(root: Path, name: str, label: str, split: str) -> VideoRef:
    base = root / label / name
    frames = tuple(
        FrameRef(
            index=i,
            image=base / "frames" / f"{i}.jpg",
            mask=base / "labels_rgb" / f"{i}.png" if not (label == "v1s" and split == "train" and i > 0) else None,
            key=f"{label}/{name}/labels_rgb/{i}",
            time_s=i + 0.5,
        )
        for i in range(AVSS_SUBSETS[label])
    )
    return VideoRef("avss", split, name, label, base / "audio.wav", frames)


def list_videos(root: str | Path, benchmark: str, split: str | None = None) -> list[VideoRef]:
    """Every video of `benchmark` (optionally one split) in metadata order. Paths are not checked to exist."""
    root = Path(root)
    if split is not None and split not in SPLITS:
        raise DataError(split, f"unknown split; expected one of {SPLITS}")
    table = read_metadata(root, benchmark)
    if split is not None:
        table = table[table["split"] == split]
    if benchmark == "s4":
        return [_s4_video(root, v, c, s) for v, c, s in table.itertuples(index=False)]
    if benchmark == "ms3":
        return [_ms3_video(root, v, s) for v, _, s in table.itertuples(index=False)]
    return [_avss_video(root, v, c, s) for v, c, s in table.itertuples(index=False)]
