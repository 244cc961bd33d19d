"""The run's Great Expectations project: file-backed and rerunnable, named by the data version, and Data Docs that
load nothing from the internet (checked on the files, and in headless Chromium where it is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moca.data.layout import list_videos
from moca.io import read_json
from moca.validation import validate_dataset
from moca.validation.datadocs import remote_references

VERSION = "0123456789abcdef0123456789abcdef.dir"  # a DVC md5, as the pipeline's validate step passes it


@pytest.fixture(scope="module")
def report(datasets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    return validate_dataset(datasets["s4"], "s4", tmp_path_factory.mktemp("gx") / "report", data_version=VERSION)


def test_project_is_saved_and_its_checkpoint_reruns(report) -> None:
    import great_expectations as gx

    project = report.report_dir / "gx"
    suites = sorted(p.relative_to(project / "expectations").as_posix() for p in project.rglob("expectations/**/*.json"))
    assert suites == ["s4/frames.json", "s4/split/test.json", "s4/split/train.json", "s4/split/val.json",
                      "s4/videos.json"]  # fmt: skip
    assert (project / "checkpoints" / "moca.s4.json").is_file()
    context = gx.get_context(mode="file", project_root_dir=report.report_dir)
    checkpoint = context.checkpoints.get("moca.s4")
    assert [d.name for d in checkpoint.validation_definitions] == ["s4.frames", "s4.videos", "s4.split.train",
                                                                   "s4.split.val", "s4.split.test"]  # fmt: skip
    rerun = checkpoint.run()  # as a GE user would, from the saved files alone
    assert rerun.success and len(rerun.run_results) == 5


def test_data_version_names_the_run_everywhere(report) -> None:
    assert report.passed and report.data_version == VERSION
    assert read_json(report.json)["data_version"] == VERSION
    assert report.summary.read_text().splitlines()[1] == f"data version: {VERSION}"
    pages = list((report.report_dir / "data_docs" / "validations").rglob("*.html"))
    assert len(pages) == 5
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert f"s4 data {VERSION}" in html  # the run name, on every validation page
        assert re.search(r"Data asset:\s*</span>\s*<span[^>]*>\s*(frames|videos|split\.\w+)", html) or \
            re.search(r"Data asset:.{0,200}(frames|videos|split\.\w+)", html, re.DOTALL)  # fmt: skip
    batches = read_json(next((report.report_dir / "gx" / "validation_definitions").glob("s4.frames.json")))
    assert batches["data"]["batch_definition"]["name"] == f"data {VERSION}"


def _local_targets(page: Path, site: Path) -> list[str]:
    html = page.read_text(encoding="utf-8")
    targets = re.findall(r"""(?:src|href)\s*=\s*["']([^"'#][^"']*)["']""", html)
    return [t for t in targets if not t.startswith(("javascript:", "mailto:", "data:"))]


def test_data_docs_load_nothing_remote_and_every_local_asset_exists(report) -> None:
    site = report.report_dir / "data_docs"
    files = [*site.rglob("*.html"), *site.rglob("*.css")]
    assert [f"{f}: {r}" for f in files for r in remote_references(f.read_text(encoding="utf-8"))] == []
    for page in site.rglob("*.html"):
        for target in _local_targets(page, site):
            assert (page.parent / target.split("?")[0]).resolve().exists(), f"{page}: {target} missing"
    assert (site / "static/vendor/bootstrap-table/bootstrap-table.min.js").is_file()


def test_binary_mask_encodings_all_pass_validation(datasets: dict[str, Path], tmp_path: Path) -> None:
    """MS3 masks re-saved as grey 0/255 and palette 0/255 (the official encodings) pass as palette 0/1 does."""
    root = Path(shutil.copytree(datasets["ms3"], tmp_path / "ms3"))
    masks = [f.mask for v in list_videos(root, "ms3") for f in v.frames if f.mask is not None]
    for i, path in enumerate(masks):
        on = (np.asarray(Image.open(path)) != 0).astype(np.uint8) * 255
        (Image.fromarray(on, "L") if i % 2 else Image.fromarray(on, "L").convert("P")).save(path)
    result = validate_dataset(root, "ms3", tmp_path / "report")
    assert result.passed, result.failures
    Image.fromarray(np.full((224, 224), 128, np.uint8), "L").save(masks[0])
    failed = validate_dataset(root, "ms3", tmp_path / "report")
    name = masks[0].relative_to(root).as_posix()
    assert f"{name}: grey mask values outside [0, 255]: [128]" in failed.failures
    assert any(line.startswith("frames: expect_column_values_to_be_in_set(mask_values)") and name in line
               for line in failed.failures)  # fmt: skip


CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_data_docs_render_offline_in_chromium(report, tmp_path: Path) -> None:
    """The index's tables are built by bootstrap-table: rows in the rendered DOM prove the vendored JS ran."""
    index = report.report_dir / "data_docs" / "index.html"
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([*command, "--dump-dom", index.as_uri()], capture_output=True, text=True, timeout=120).stdout
    rows = re.findall(r"<tr[^>]*data-index=\"\d+\"", dom)
    assert len(rows) >= 5 + 5, dom[-2000:]  # 5 validation results and 5 expectation suites
    assert dom.count(f"s4 data {VERSION}") >= 5 and "Showing 1 to 5 of 5 rows" in dom
    subprocess.run([*command, "--window-size=1400,1000", f"--screenshot={tmp_path / 'index.png'}", index.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    assert (tmp_path / "index.png").stat().st_size > 20_000  # a rendered page, not a blank one
