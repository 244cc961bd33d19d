"""The manifest: one row per frame of a benchmark (all splits), with what was found on disk for it.

The expectation suites run on this table and on two tables derived from it (one row per video, one per split),
so every check reads the same facts, and the table itself is kept (`manifest.parquet`) for drift checks later.
Each image and mask is decoded once and each wav once per video.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from moca.data.layout import SPLITS, VideoRef, list_videos
from moca.progress import progress
from moca.validation.inspect import inspect_audio, inspect_image, inspect_mask

# Column dtypes: nullable types so that a missing file's facts are NA, and the table round-trips through parquet.
FRAME_COLUMNS: dict[str, str] = {
    "benchmark": "string", "split": "string", "video": "string", "category": "string", "frame": "Int64",
    "image_path": "string", "image_readable": "boolean", "image_bytes": "Int64", "width": "Int64", "height": "Int64",
    "mode": "string", "image_problem": "string", "mask_expected": "boolean", "mask_path": "string",
    "mask_present": "boolean", "mask_readable": "boolean", "mask_mode": "string", "mask_kind": "string",
    "mask_values": "string", "mask_min": "Int64", "mask_max": "Int64", "mask_width": "Int64", "mask_height": "Int64",
    "fg_fraction": "Float64", "mask_problem": "string", "audio_path": "string", "audio_readable": "boolean",
    "sample_rate": "Int64", "channels": "Int64", "duration_s": "Float64", "audio_problem": "string",
    "frames_on_disk": "Int64",
}  # fmt: skip
AUDIO_COLUMNS = ("audio_path", "audio_readable", "sample_rate", "channels", "duration_s", "audio_problem")


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _frames_on_disk(video: VideoRef) -> int:
    """Image files in the video's frame folder with the frames' extension (extra or missing frames show here)."""
    folder, suffix = video.frames[0].image.parent, video.frames[0].image.suffix
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.suffix == suffix and p.is_file())


def _video_rows(video: VideoRef, root: Path) -> list[dict]:
    audio = {"audio_path": _relative(video.audio, root), **inspect_audio(video.audio)}
    on_disk = _frames_on_disk(video)
    rows = []
    for frame in video.frames:
        image = inspect_image(frame.image)
        rows.append({
            "benchmark": video.benchmark, "split": video.split, "video": video.name, "category": video.category,
            "frame": frame.index, "image_path": _relative(frame.image, root), **image,
            "mask_expected": frame.mask is not None,
            "mask_path": None if frame.mask is None else _relative(frame.mask, root),
            **inspect_mask(frame.mask, video.benchmark), **audio, "frames_on_disk": on_disk,
        })  # fmt: skip
    return rows


def build_manifest(root: str | Path, benchmark: str) -> pd.DataFrame:
    """One row per frame of every split; raises DataError only when the metadata CSV itself is unusable."""
    root = Path(root)
    videos = list_videos(root, benchmark)
    rows = [row for video in progress(videos, f"inspect {benchmark}") for row in _video_rows(video, root)]
    table = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    return table.astype(FRAME_COLUMNS)


def _folder(paths: pd.Series) -> pd.Series:
    return paths.str.rsplit("/", n=1).str[0] + "/"


def video_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per video: its audio facts, how many frames it has on disk, its frame and mask folders."""
    keys = ["benchmark", "split", "video", "category"]
    first = manifest.groupby(keys, sort=False, dropna=False).first().reset_index()
    folders = {"image_path": _folder(first["image_path"]), "mask_path": _folder(first["mask_path"])}
    return first[[*keys, "frames_on_disk", *AUDIO_COLUMNS]].assign(**folders)


def split_tables(videos: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """`split.{name}`: the rows of `video_table` in each split (all three, even when empty)."""
    return {f"split.{split}": videos[videos["split"] == split].reset_index(drop=True) for split in SPLITS}
