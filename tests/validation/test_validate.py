"""End to end: synthetic data passes for every benchmark; each kind of damage fails and the report names it."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from PIL import Image

from moca.data.layout import list_videos
from moca.errors import ValidationFailed
from moca.io import read_json, sha256_tree
from moca.validation import validate_dataset


@pytest.mark.parametrize("benchmark", ["s4", "ms3", "avss"])
def test_synthetic_data_passes(datasets: dict[str, Path], tmp_path: Path, benchmark: str) -> None:
    counts = {s: len(list_videos(datasets[benchmark], benchmark, s)) for s in ("train", "val", "test")}
    result = validate_dataset(datasets[benchmark], benchmark, tmp_path / "report", expected_counts=counts)
    assert result.passed, result.failures
    assert result.failures == [] and result.data_docs.name == "index.html" and result.data_docs.is_file()
    assert result.summary.read_text().startswith(f"moca data validate: {benchmark} at ")
    assert "PASSED" in result.summary.read_text()
    manifest = pd.read_parquet(result.manifest)
    assert len(manifest) == sum(len(v.frames) for v in list_videos(datasets[benchmark], benchmark))
    assert read_json(result.json)["passed"] is True
    assert read_json(result.stats)["videos"] == 6


def _video(root: Path, index: int):
    return list_videos(root, "s4")[index]


def _corrupt_frame(root: Path, video: int = 0) -> str:
    image = _video(root, video).frames[2].image
    image.write_bytes(image.read_bytes()[:200])
    return f"{image.relative_to(root).as_posix()}: unreadable image"


def _truncate_wav(root: Path, video: int) -> str:
    audio = _video(root, video).audio
    audio.write_bytes(audio.read_bytes()[:20000])
    return f"{audio.relative_to(root).as_posix()}: truncated wav"


def _wrong_rate(root: Path, video: int) -> str:
    audio = _video(root, video).audio
    soundfile.write(audio, np.zeros(5 * 22050, np.float32), 22050, subtype="PCM_16", format="WAV")
    return f"{audio.relative_to(root).as_posix()} (sample_rate=22050)"


def _stray_mask(root: Path, video: int) -> str:
    mask = _video(root, video).frames[0].mask
    Image.new("L", (224, 224), 128).save(mask)
    return f"{mask.relative_to(root).as_posix()}: grey mask values outside [0, 255]: [128]"


def _missing_video_folder(root: Path, video: int) -> str:
    folder = _video(root, video).frames[0].image.parent
    shutil.rmtree(folder)
    return f"{folder.relative_to(root).as_posix()}/ (frames_on_disk=0)"  # the video's row names its frame folder


FILE_DAMAGE = (_corrupt_frame, _truncate_wav, _wrong_rate, _stray_mask, _missing_video_folder)


@pytest.fixture(scope="module")
def damaged(datasets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, object]:
    """One S4 copy with a different kind of damage in each of five videos, validated once (GE runs are slow)."""
    root = Path(shutil.copytree(datasets["s4"], tmp_path_factory.mktemp("damaged") / "s4"))
    expected = {damage.__name__: damage(root, i) for i, damage in enumerate(FILE_DAMAGE)}
    before = sha256_tree(root)
    result = validate_dataset(root, "s4", root.parent / "report")
    assert sha256_tree(root) == before  # validation never touches the data
    return root, expected, result


@pytest.mark.parametrize("damage", [d.__name__ for d in FILE_DAMAGE])
def test_file_damage_fails_and_is_named(damaged: tuple, damage: str) -> None:
    _, expected, result = damaged
    assert not result.passed
    assert any(expected[damage] in line for line in result.failures), result.failures
    assert expected[damage] in result.summary.read_text()


def test_damaged_report_outputs(damaged: tuple) -> None:
    root, expected, result = damaged
    assert result.summary.read_text().splitlines()[0].endswith("FAILED")
    assert read_json(result.json)["passed"] is False
    corrupt = expected["_corrupt_frame"].split(":")[0]
    pages = [p.read_text(encoding="utf-8") for p in result.data_docs.parent.rglob("*.html")]
    assert any(corrupt in page for page in pages)  # Data Docs name the file too
    manifest = pd.read_parquet(result.manifest)
    assert manifest.loc[manifest["image_path"] == corrupt, "image_readable"].tolist() == [False]
    with pytest.raises(ValidationFailed, match=f"see {result.summary}"):
        result.raise_if_failed()


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


@pytest.mark.parametrize("damage", [_duplicate_video, _escaping_path])
def test_bad_metadata_fails_and_is_named(s4_copy: Path, tmp_path: Path, damage: Callable) -> None:
    expected = damage(s4_copy)
    result = validate_dataset(s4_copy, "s4", tmp_path / "report")
    assert not result.passed and result.manifest is None
    assert result.failures[0].startswith(f"metadata: {_csv(s4_copy)}: ") and expected in result.failures[0]
    assert expected in result.summary.read_text()


def test_wrong_expected_counts_fail(datasets: dict[str, Path], tmp_path: Path) -> None:
    counts = {s: len(list_videos(datasets["ms3"], "ms3", s)) for s in ("train", "val", "test")}
    wrong = validate_dataset(datasets["ms3"], "ms3", tmp_path / "bad", expected_counts={**counts, "train": 296})
    assert not wrong.passed
    assert wrong.failures == [
        f"split.train: expect_table_row_count_to_equal(value=296) failed (observed {counts['train']})"]


def _moca(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """Run the real `moca` entry point (as the console script does) and return its exit code and stdout."""
    from moca.cli import main

    monkeypatch.setattr(sys, "argv", ["moca", "data", "validate", *args])
    try:
        main()
        code = 0
    except SystemExit as exited:
        code = exited.code or 0
    return code, capsys.readouterr().out


def test_cli_exit_codes(monkeypatch, capsys, datasets: dict[str, Path], s4_copy: Path, tmp_path: Path) -> None:
    code, out = _moca(monkeypatch, capsys, "--data", str(datasets["s4"]), "--benchmark", "s4", "--report",
                      str(tmp_path / "ok"))  # fmt: skip
    assert code == 0 and "PASSED" in out
    name = _corrupt_frame(s4_copy).split(":")[0]
    code, out = _moca(monkeypatch, capsys, "--data", str(s4_copy), "--benchmark", "s4", "--report",
                      str(tmp_path / "bad"))
    assert code == 1 and "FAILED" in out and name in out


def test_rerun_into_same_report_leaves_no_stale_outputs(datasets: dict[str, Path], s4_copy: Path,
                                                        tmp_path: Path) -> None:
    report = tmp_path / "report"
    assert validate_dataset(datasets["s4"], "s4", report).passed
    _escaping_path(s4_copy)
    result = validate_dataset(s4_copy, "s4", report)
    assert not result.passed and result.manifest is None and result.data_docs is None
    assert sorted(p.name for p in report.iterdir()) == ["summary.txt", "validation.json"]
    assert "metadata: " in result.summary.read_text()
