"""The in-process runner (moca.steps.inprocess): every step of moca.steps.PIPELINE in this process, wired from the
same declaration as the Kubeflow pipeline; a rerun of the same run folder reuses every step."""

from __future__ import annotations

from pathlib import Path

import pytest

from moca.io import read_json
from moca.steps import PIPELINE
from moca.steps.config import load_config
from moca.steps.runner import MANIFEST

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # the whole pipeline with tiny models, twice: ~1-2 min on the shared 2 cores
def test_the_pipeline_in_process_registers_a_champion_and_a_rerun_reuses_every_step(s4_source, tmp_path,
                                                                                      tmp_tracking):
    import mlflow

    from moca.steps.inprocess import run_pipeline
    from moca.tracking.registry import champion

    config = load_config(REPO / "configs" / "pipeline_demo.yaml", [f"data.path={s4_source}", "train.max_steps=1"])
    done = run_pipeline(config, tmp_path / "run", "in-process")
    assert list(done) == list(PIPELINE) and not any(r.skipped for r in done.values())
    version = done["ingest"].info["data_version"]
    for name in PIPELINE:
        manifest = read_json(tmp_path / "run" / name / MANIFEST)
        assert manifest["step"] == name and (name == "ingest" or manifest["data_version"] == version)
    assert read_json(tmp_path / "run" / "train" / MANIFEST)["inputs"]["pairs"]  # wired to mine_pairs' folder
    assert champion("moca").tags["data_version"] == version and done["register"].info["promoted"]

    again = run_pipeline(config, tmp_path / "run", "in-process-again")
    # Only validation reruns, because there is a champion now to check drift against (its version is an input);
    # its report, now with drift.md, is an input of register. Mining, training, inference, evaluation are reused.
    assert [name for name, result in again.items() if not result.skipped] == ["validate", "register"]
    assert (tmp_path / "run" / "validate" / "drift.md").is_file()
    parents = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`moca.kind` = 'pipeline'",
                                 output_format="list")
    assert sorted(p.info.status for p in parents) == ["FINISHED", "FINISHED"]

    # What the MLflow UI shows of the first run: the dataset (digest = data version) on the pipeline run and on
    # each step that read it, the scores on the pipeline run, the evaluation tables and figure.
    client = mlflow.MlflowClient()
    (first,) = [p for p in parents if p.info.run_name == "in-process"]
    steps = {r.info.run_name: client.get_run(r.info.run_id) for r in client.search_runs(
        [first.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{first.info.run_id}'")}
    for context, run in [("ingest", client.get_run(first.info.run_id)), ("train", steps["train"]),
                         ("evaluate", steps["evaluate"])]:
        (read,) = run.inputs.dataset_inputs
        tags = {tag.key: tag.value for tag in read.tags}
        assert (read.dataset.name, read.dataset.digest) == ("avsbench-s4", version[:36])
        assert tags["mlflow.data.context"] == context and tags["moca.data_version"] == version
    assert {"test.miou", "test.fscore"} <= set(first.data.metrics)
    evaluated = steps["evaluate"].info.run_id
    assert "qualitative.png" in {a.path for a in client.list_artifacts(evaluated)}
    assert {"evaluation/per_category.json", "evaluation/per_video.json"} <= {
        a.path for a in client.list_artifacts(evaluated, "evaluation")}
