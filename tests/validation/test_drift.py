"""Manifest statistics and drift on hand-made tables with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from moca.errors import DataError
from moca.validation import DriftThresholds, compare_stats, manifest_stats
from moca.validation.drift import load_stats
from moca.validation.manifest import FRAME_COLUMNS


def _manifest(rows: list[tuple[str, str, str, int, float | None, float]]) -> pd.DataFrame:
    """Rows of (split, video, category, width, fg_fraction, audio seconds); height = width."""
    table = pd.DataFrame(columns=list(FRAME_COLUMNS)).astype(FRAME_COLUMNS)
    data = pd.DataFrame(
        [{"split": s, "video": v, "category": c, "width": w, "height": w, "fg_fraction": fg, "duration_s": d}
         for s, v, c, w, fg, d in rows]  # fmt: skip
    )
    return pd.concat([table, data]).astype(FRAME_COLUMNS)


REFERENCE = _manifest([
    ("train", "a", "dog", 224, 0.1, 5.0), ("train", "a", "dog", 224, 0.3, 5.0),
    ("val", "b", "cat", 224, 0.2, 4.0), ("test", "c", "cat", 224, None, 6.0),
])  # fmt: skip


def test_manifest_stats_known_answers() -> None:
    stats = manifest_stats(REFERENCE)
    assert stats["frames"] == 4 and stats["videos"] == 3
    assert stats["videos_per_split"] == {"train": 1, "val": 1, "test": 1}
    assert stats["fg_fraction"]["mean"] == pytest.approx(0.2)
    assert stats["fg_fraction"]["std"] == pytest.approx(math.sqrt(2 / 300))  # population std of .1 .3 .2
    assert stats["audio_duration_s"] == {"mean": 5.0, "std": pytest.approx(math.sqrt(2 / 3)), "min": 4.0, "max": 6.0}
    assert stats["image_sizes"] == {"224x224": 1.0}
    assert stats["categories"] == {"cat": 2, "dog": 1}


def test_identical_data_does_not_drift() -> None:
    report = compare_stats(manifest_stats(REFERENCE), manifest_stats(REFERENCE))
    assert report.flagged == [] and all(item.change == 0 for item in report.items)


def test_drift_flags_what_changed() -> None:
    current = _manifest([
        ("train", "a", "dog", 224, 0.1, 5.0), ("train", "a", "dog", 320, 0.3, 5.0),
        ("val", "b", "dog", 224, 0.2, 4.0), ("test", "c", "cat", 224, None, 6.0),
    ])  # fmt: skip
    report = compare_stats(manifest_stats(REFERENCE), manifest_stats(current), DriftThresholds(relative=0.1))
    by_name = {item.statistic: item for item in report.items}
    # sizes: reference all 224, current 3/4 224 -> TV 0.25; categories: cat 2/3 -> 1/3 -> TV 1/3
    assert by_name["image_sizes"].change == pytest.approx(0.25) and by_name["image_sizes"].flagged
    assert by_name["categories"].change == pytest.approx(1 / 3) and by_name["categories"].flagged
    assert not by_name["fg_fraction.mean"].flagged and not by_name["videos_per_split"].flagged
    assert {i.statistic for i in report.flagged} == {"image_sizes", "categories"}
    markdown = report.to_markdown()
    assert "2 of 9 statistics flagged" in markdown and "| image_sizes |" in markdown
    assert json.loads(report.to_json())["flagged"] == ["image_sizes", "categories"]


def test_relative_change_and_overrides() -> None:
    ref = manifest_stats(REFERENCE)
    grown = {**ref, "videos": 6, "problem_files": 2}
    report = compare_stats(ref, grown, DriftThresholds(per_statistic={"videos": 1.5}))
    by_name = {item.statistic: item for item in report.items}
    assert by_name["videos"].change == 1.0 and not by_name["videos"].flagged  # doubled, but under its override
    assert by_name["problem_files"].change == math.inf and by_name["problem_files"].flagged  # from zero
    assert json.loads(report.to_json())["items"][5]["change"] is None  # inf is not JSON: written as null


def test_load_stats(tmp_path: Path) -> None:
    REFERENCE.to_parquet(tmp_path / "manifest.parquet")
    assert load_stats(tmp_path / "manifest.parquet") == manifest_stats(REFERENCE)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="bad.json: not a manifest statistics file"):
        load_stats(tmp_path / "bad.json")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="bad.parquet: unreadable manifest"):
        load_stats(tmp_path / "bad.parquet")
