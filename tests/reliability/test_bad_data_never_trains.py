"""Bad data never trains: the steps run in pipeline order by the in-process runner (ingest -> validate -> gate ->
mine -> train -> ...) stop at the validation gate, nothing after it runs, nothing is registered, the MLflow parent
run is FAILED, and the report names every problem. (tests/validation/ checks each damage's wording; this checks the
pipeline's reaction. The same gate under kfp.local is tests/pipeline/test_local_run.py.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from moca.data.layout import list_videos
from moca.errors import ValidationFailed

REPO = Path(__file__).resolve().parents[2]


def damage_files(root: Path) -> dict[str, str]:
    """Five file faults in five different videos; returns fault -> the file (relative name) the report must name."""
    videos = [v for v in list_videos(root, "s4") if v.frames[0].mask is not None]
    corrupt, truncated, resampled, stray, missing = videos[:5]
    corrupt.frames[1].image.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    truncated.audio.write_bytes(truncated.audio.read_bytes()[:30])  # header cut inside the fmt chunk
    samples, _ = soundfile.read(resampled.audio, dtype="float32")
    soundfile.write(resampled.audio, samples[::2], 8000, subtype="PCM_16", format="WAV")
    mask = np.asarray(Image.open(stray.frames[0].mask).convert("L")).copy()
    mask[:4, :4] = 128  # a value neither background (0) nor foreground (255)
    Image.fromarray(mask).save(stray.frames[0].mask)
    shutil.rmtree(missing.frames[0].image.parent)
    return {"corrupt frame": corrupt.frames[1].image.name, "truncated wav": truncated.audio.name,
            "wrong sample rate": resampled.audio.name, "stray mask values": stray.frames[0].mask.name,
            "missing video": missing.name}


def _rewrite_first_row(root: Path, new_name: str | None) -> str:
    csv = root / "Single-source" / "s4_meta_data.csv"
    header, first, *rest = csv.read_text().splitlines()
    name, *fields = first.split(",")
    rows = [first, first] if new_name is None else [",".join([new_name, *fields])]
    csv.write_text("\n".join([header, *rows, *rest]) + "\n")
    return name if new_name is None else new_name


METADATA_FAULTS = {
    "duplicate video": lambda root: _rewrite_first_row(root, None),
    "parent traversal": lambda root: _rewrite_first_row(root, "../../outside"),
    "absolute path": lambda root: _rewrite_first_row(root, "/etc/passwd"),
}


def run_until_gate(source: Path, work: Path, run_name: str) -> None:
    """The whole pipeline in this process (moca.steps.inprocess): it must stop at the gate."""
    from moca.steps.config import load_config
    from moca.steps.inprocess import run_pipeline

    run_pipeline(load_config(REPO / "configs" / "pipeline_demo.yaml", [f"data.path={source}"]), work, run_name)
    raise AssertionError("validation passed on damaged data")  # mine_pairs and train would come here


def _expect_stopped(work: Path, run_name: str) -> str:
    import mlflow
    from mlflow import MlflowClient

    assert sorted(p.name for p in work.iterdir()) == ["ingest", "validate"]  # no mine_pairs/train folder
    client = MlflowClient()
    assert client.search_registered_models() == []
    (parent,) = mlflow.search_runs(search_all_experiments=True, filter_string=f"attributes.run_name = '{run_name}'",
                                   output_format="list")
    assert parent.info.status == "FAILED"
    return (work / "validate" / "summary.txt").read_text() + (work / "validate" / "report.html").read_text()


def test_damaged_files_stop_the_pipeline_before_training(s4_small: Path, tmp_path: Path, tmp_tracking: str) -> None:
    source = Path(shutil.copytree(s4_small, tmp_path / "source"))
    expected = damage_files(source)
    with pytest.raises(ValidationFailed, match="failed validation"):
        run_until_gate(source, tmp_path / "work", "bad-files")
    report = _expect_stopped(tmp_path / "work", "bad-files")
    missing = {fault: name for fault, name in expected.items() if name not in report}
    assert not missing, f"the report does not name: {missing}"


@pytest.mark.parametrize("fault", sorted(METADATA_FAULTS))
def test_bad_metadata_stops_the_pipeline_before_training(fault: str, s4_small: Path, tmp_path: Path,
                                                          tmp_tracking: str) -> None:
    source = Path(shutil.copytree(s4_small, tmp_path / "source"))
    named = METADATA_FAULTS[fault](source)
    with pytest.raises(ValidationFailed, match="failed validation"):
        run_until_gate(source, tmp_path / "work", f"bad-{fault}")
    assert named in _expect_stopped(tmp_path / "work", f"bad-{fault}")
