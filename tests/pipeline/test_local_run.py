"""The very same pipeline through kfp.local on tiny synthetic data: end to end, and stopped by the validation gate.

Each kfp.local task is a fresh interpreter importing torch/MLflow/GE (~10 s on 2 shared cores), so both are slow.
"""

from __future__ import annotations

import shutil

import pytest
from pipeline_configs import write_config

from moca.data.layout import list_videos
from moca.io import read_json

pytestmark = pytest.mark.slow


def _parent_runs():
    import mlflow

    from moca.tracking.runs import configure

    configure()
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`moca.kind` = 'pipeline'",
                              output_format="list")
    return runs


def test_local_run_end_to_end_registers_a_champion_and_a_rerun_hits_the_cache(tiny_s4, tmp_tracking, tmp_path):
    from moca.steps.kubeflow import run_local
    from moca.tracking.registry import champion, newest_version

    config = write_config(tmp_path / "p.yaml", tiny_s4, kfp={"caching": True, "retries": 0})
    run = run_local(config, tmp_path / "root", run_name="e2e")
    promotion = read_json(run / "register" / "promotion" / "promotion.json")
    assert promotion["version"] == "1" and promotion["promoted"] is True
    version = champion("moca")
    assert str(version.version) == "1" and version.tags["data_version"] == read_json(
        run / "ingest" / "dataset" / "manifest.json")["info"]["data_version"]
    scores = read_json(run / "evaluate" / "evaluation" / "evaluation.json")
    assert 0.0 <= scores["miou"] <= 1.0 and scores["split"] == "test"
    assert "| mIoU |" in (run / "evaluate" / "table").read_text()
    assert "PASSED" in (run / "validate" / "page").read_text()
    (parent,) = _parent_runs()
    assert parent.info.status == "FINISHED" and parent.info.run_name == "e2e"

    # The same data and settings again: kfp.local's cache (keyed like Kubeflow's, on parameters and artifacts)
    # reuses ingest, mining, training, inference and evaluation; the run is still opened, validated, registered.
    again = run_local(config, tmp_path / "root", run_name="e2e-again")
    ran = {task.name for task in again.iterdir() if task.is_dir()}
    assert ran == {"start-run", "validate", "register", "finish-run"}
    assert str(newest_version("moca").version) == "2" and str(champion("moca").version) == "1"  # a tie keeps v1
    assert {r.info.run_name: r.info.status for r in _parent_runs()} == {"e2e": "FINISHED", "e2e-again": "FINISHED"}


def test_validation_gate_stops_before_training_leaves_the_report_and_registers_nothing(
        tiny_s4, tmp_tracking, tmp_path):  # fmt: skip
    from moca.steps.kubeflow import PipelineFailed, run_local
    from moca.tracking.registry import newest_version

    broken = shutil.copytree(tiny_s4, tmp_path / "broken")
    list_videos(broken, "s4", "train")[0].audio.write_bytes(b"RIFF")  # a truncated wav
    config = write_config(tmp_path / "p.yaml", broken)
    before = set((tmp_path / "root").glob("*")) if (tmp_path / "root").exists() else set()
    with pytest.raises(PipelineFailed, match="stop-run"):
        run_local(config, tmp_path / "root", run_name="gate")
    (run,) = set((tmp_path / "root").iterdir()) - before
    assert "FAILED" in (run / "validate" / "report" / "summary.txt").read_text()
    assert (run / "validate" / "report" / "data_docs" / "index.html").is_file()
    assert "FAILED" in (run / "validate" / "page").read_text()
    assert not any((run / task).exists() for task in ("mine-pairs", "train", "infer", "evaluate", "register"))
    assert newest_version("moca") is None
    (parent,) = _parent_runs()
    assert parent.info.status == "FAILED"
