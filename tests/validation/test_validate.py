"""End to end: synthetic data passes for every benchmark; each kind of damage fails and the report names it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from moca.data.layout import list_videos
from moca.io import read_json, sha256_tree
from moca.validation import validate_dataset


@pytest.mark.parametrize("benchmark", ["s4", "ms3", "avss"])
def test_synthetic_data_passes(datasets: dict[str, Path], tmp_path: Path, benchmark: str) -> None:
    before = sha256_tree(datasets[benchmark])
    result = validate_dataset(datasets[benchmark], benchmark, tmp_path / "report")
    assert result.passed, result.failures
    assert result.failures == [] and result.data_docs.name == "index.html" and result.data_docs.is_file()
    assert result.summary.read_text().startswith(f"moca data validate: {benchmark} at ")
    assert "PASSED" in result.summary.read_text()
    manifest = pd.read_parquet(result.manifest)
    assert len(manifest) == sum(len(v.frames) for v in list_videos(datasets[benchmark], benchmark))
    assert read_json(result.json)["passed"] is True
    assert read_json(result.stats)["videos"] == 6
    assert sha256_tree(datasets[benchmark]) == before  # validation never touches the data


def _first(root: Path, benchmark: str = "s4", split: str = "val"):
    return list_videos(root, benchmark, split)[0]


def _corrupt_frame(root: Path) -> str:
    image = _first(root).frames[2].image
    image.write_bytes(image.read_bytes()[:200])
    return image.relative_to(root).as_posix()


def _truncate_wav(root: Path) -> str:
    audio = _first(root).audio
    audio.write_bytes(audio.read_bytes()[:20000])
    return "truncated wav"


def _wrong_rate(root: Path, write_wav: Callable) -> str:
    write_wav(_first(root).audio, 5.0, rate=22050)
    return "sample_rate=22050"


def _stray_mask(root: Path) -> str:
    from PIL import Image

    mask = _first(root).frames[1].mask
    Image.new("L", (224, 224), 128).save(mask)
    return f"{mask.relative_to(root).as_posix()}: mask values outside [0, 255]: [128]"


def _missing_video_folder(root: Path) -> str:
    shutil.rmtree(_first(root).frames[0].image.parent)
    return "frames_on_disk=0"


def _csv(root: Path) -> Path:
    return root / "Single-source/s4_meta_data.csv"


def _duplicate_video(root: Path) -> str:
    lines = _csv(root).read_text().splitlines()
    _csv(root).write_text("\n".join([*lines, lines[1]]) + "\n")
    return "duplicate video name"


def _escaping_path(root: Path) -> str:
    lines = _csv(root).read_text().splitlines()
    _csv(root).write_text("\n".join([*lines, "../../etc,0,x,train"]) + "\n")
    return "would escape the dataset root"


DAMAGE = {
    "corrupt_frame": _corrupt_frame,
    "truncated_wav": _truncate_wav,
    "wrong_sample_rate": _wrong_rate,
    "stray_mask": _stray_mask,
    "missing_video_folder": _missing_video_folder,
    "duplicate_video": _duplicate_video,
    "escaping_csv_path": _escaping_path,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_fails_and_is_named(s4_copy: Path, tmp_path: Path, write_wav: Callable, damage: str) -> None:
    apply = DAMAGE[damage]
    expected = apply(s4_copy, write_wav) if damage == "wrong_sample_rate" else apply(s4_copy)
    before = sha256_tree(s4_copy)
    result = validate_dataset(s4_copy, "s4", tmp_path / "report")
    assert not result.passed
    assert any(expected in line for line in result.failures), result.failures
    assert expected in result.summary.read_text() and "FAILED" in result.summary.read_text()
    assert read_json(result.json)["passed"] is False
    assert sha256_tree(s4_copy) == before


def test_data_docs_name_the_corrupt_file(s4_copy: Path, tmp_path: Path) -> None:
    name = _corrupt_frame(s4_copy)
    result = validate_dataset(s4_copy, "s4", tmp_path / "report")
    pages = [p.read_text(encoding="utf-8") for p in result.data_docs.parent.rglob("*.html")]
    assert any(name in page for page in pages)
    assert f"{name}: unreadable image" in result.summary.read_text()


def test_expected_counts(datasets: dict[str, Path], tmp_path: Path) -> None:
    counts = {s: len(list_videos(datasets["ms3"], "ms3", s)) for s in ("train", "val", "test")}
    assert validate_dataset(datasets["ms3"], "ms3", tmp_path / "ok", expected_counts=counts).passed
    wrong = validate_dataset(datasets["ms3"], "ms3", tmp_path / "bad", expected_counts={**counts, "train": 296})
    assert not wrong.passed
    assert wrong.failures == [f"splits: expect_column_values_to_be_between(videos)(min_value=296, max_value=296) "
                              f"where split == train failed for 1 of 1 rows: train (videos={counts['train']})"]


@pytest.fixture(scope="module")
def cli() -> Callable[..., object]:
    from moca.cli import _register_all, app

    _register_all()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["data", "validate", *args])


def test_cli_exit_codes(cli: Callable, datasets: dict[str, Path], s4_copy: Path, tmp_path: Path) -> None:
    ok = cli("--data", str(datasets["s4"]), "--benchmark", "s4", "--report", str(tmp_path / "ok"))
    assert ok.exit_code == 0 and "PASSED" in ok.output
    name = _corrupt_frame(s4_copy)
    bad = cli("--data", str(s4_copy), "--benchmark", "s4", "--report", str(tmp_path / "bad"))
    assert bad.exit_code == 1 and "FAILED" in bad.output and name in bad.output


def test_rerun_into_same_report_leaves_no_stale_outputs(datasets: dict[str, Path], s4_copy: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    assert validate_dataset(datasets["s4"], "s4", report).passed
    _escaping_path(s4_copy)
    result = validate_dataset(s4_copy, "s4", report)
    assert not result.passed and result.manifest is None and result.data_docs is None
    assert sorted(p.name for p in report.iterdir()) == ["summary.txt", "validation.json"]
    assert "metadata: " in result.summary.read_text()
