"""Manifest drift: summary statistics of a dataset version, and a comparison against a reference version.

The pipeline compares a new data version with the data the current champion was trained on. Scalars (counts,
means) are compared by relative change; distributions (image sizes, categories, splits) by total variation
distance, which is 0 for identical proportions and 1 for disjoint ones, whatever the dataset size.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from moca.data.layout import SPLITS
from moca.errors import DataError
from moca.io import read_json


def _moments(values: pd.Series) -> dict[str, float]:
    values = values.dropna().astype(float)
    if values.empty:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    return {"mean": float(values.mean()), "std": float(values.std(ddof=0)), "min": float(values.min()),
            "max": float(values.max())}  # fmt: skip


def _shares(counts: pd.Series) -> dict[str, float]:
    total = counts.sum()
    return {str(k): float(v / total) for k, v in counts.sort_index().items()} if total else {}


def manifest_stats(manifest: pd.DataFrame) -> dict[str, Any]:
    """Counts, foreground fraction, audio duration, image sizes and categories of one dataset version."""
    videos = manifest.drop_duplicates(["split", "video"])
    sizes = manifest["width"].astype("string") + "x" + manifest["height"].astype("string")
    problems = (manifest[["image_problem", "mask_problem"]].notna().to_numpy().sum()
                + videos["audio_problem"].notna().sum())
    return {
        "frames": int(len(manifest)),
        "videos": int(len(videos)),
        "videos_per_split": {s: int((videos["split"] == s).sum()) for s in SPLITS},
        "fg_fraction": _moments(manifest["fg_fraction"]),
        "audio_duration_s": _moments(videos["duration_s"]),
        "image_sizes": _shares(sizes.fillna("unreadable").value_counts()),
        "categories": {str(k): int(v)
                       for k, v in videos["category"].fillna("none").value_counts().sort_index().items()},
        "problem_files": int(problems),
    }  # fmt: skip


@dataclass
class DriftThresholds:
    relative: float = 0.25  # flag a scalar whose relative change exceeds this
    distribution: float = 0.10  # flag a distribution whose total variation distance exceeds this
    per_statistic: dict[str, float] = field(default_factory=dict)  # overrides by statistic name


@dataclass
class DriftItem:
    statistic: str
    kind: str  # "relative" (scalars) or "tv" (distributions)
    reference: Any
    current: Any
    change: float
    threshold: float
    flagged: bool


@dataclass
class DriftReport:
    items: list[DriftItem]

    @property
    def flagged(self) -> list[DriftItem]:
        return [item for item in self.items if item.flagged]

    def to_dict(self) -> dict[str, Any]:
        return {"drifted": bool(self.flagged), "flagged": [i.statistic for i in self.flagged],
                "items": [asdict(i) for i in self.items]}  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(_finite(self.to_dict()), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def to_markdown(self) -> str:
        lines = [f"## Data drift: {len(self.flagged)} of {len(self.items)} statistics flagged", "",
                 "| statistic | reference | current | change | threshold | flagged |", "|---|---|---|---|---|---|"]
        for i in self.items:
            ref, cur = (_short(i.reference), _short(i.current))
            kind = "TV " if i.kind == "tv" else ""
            lines.append(f"| {i.statistic} | {ref} | {cur} | {kind}{i.change:.3g} | {i.threshold:g} | "
                         f"{'**yes**' if i.flagged else 'no'} |")  # fmt: skip
        return "\n".join(lines) + "\n"


def _finite(value: Any) -> Any:
    """NaN and inf are not JSON: a statistic that cannot be compared (or grew from zero) is written as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_short(v)}" for k, v in list(value.items())[:6]) + (" ..." if len(value) > 6 else "")
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _relative_change(reference: float, current: float) -> float:
    if math.isnan(reference) or math.isnan(current):
        return 0.0 if math.isnan(reference) and math.isnan(current) else math.inf
    if reference == current:
        return 0.0
    return abs(current - reference) / abs(reference) if reference else math.inf


def _total_variation(reference: dict[str, float], current: dict[str, float]) -> float:
    def normalised(d: dict[str, float]) -> dict[str, float]:
        total = sum(d.values())
        return {k: v / total for k, v in d.items()} if total else {}

    ref, cur = normalised(reference), normalised(current)
    return 0.5 * sum(abs(ref.get(k, 0.0) - cur.get(k, 0.0)) for k in set(ref) | set(cur))


SCALARS = ("frames", "videos", "fg_fraction.mean", "fg_fraction.std", "audio_duration_s.mean", "problem_files")
DISTRIBUTIONS = ("videos_per_split", "image_sizes", "categories")


def _lookup(stats: dict[str, Any], name: str) -> Any:
    value: Any = stats
    for part in name.split("."):
        value = value.get(part, math.nan) if isinstance(value, dict) else math.nan
    return value


def compare_stats(reference: dict[str, Any], current: dict[str, Any], thresholds: DriftThresholds | None = None
                  ) -> DriftReport:  # fmt: skip
    """Compare two `manifest_stats` outputs; an item is flagged when its change exceeds its threshold."""
    thresholds = thresholds or DriftThresholds()
    items = []
    for name in SCALARS:
        ref, cur = float(_lookup(reference, name)), float(_lookup(current, name))
        limit = thresholds.per_statistic.get(name, thresholds.relative)
        change = _relative_change(ref, cur)
        items.append(DriftItem(name, "relative", ref, cur, change, limit, change > limit))
    for name in DISTRIBUTIONS:
        ref, cur = reference.get(name, {}), current.get(name, {})
        limit = thresholds.per_statistic.get(name, thresholds.distribution)
        change = _total_variation(ref, cur)
        items.append(DriftItem(name, "tv", ref, cur, change, limit, change > limit))
    return DriftReport(items)


def load_stats(path: str | Path) -> dict[str, Any]:
    """Statistics from a `stats.json` or computed from a `manifest.parquet` (as `validate_dataset` writes them)."""
    path = Path(path)
    if path.suffix == ".parquet":
        try:
            return manifest_stats(pd.read_parquet(path))
        except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on a corrupt file
            raise DataError(path, f"unreadable manifest ({exc})") from exc
    stats = read_json(path)
    if not isinstance(stats, dict) or "videos_per_split" not in stats:
        raise DataError(path, "not a manifest statistics file (no 'videos_per_split')")
    return stats
