"""Two model versions registered by the register step, compared through the MLflow client the way the UI does it:
the version page reads the logged model id from the version's source (`models:/<id>`) and batch-gets the logged
models' metrics; the Models tab orders logged models by a metric; the run comparison filters runs by metric and
lines up the evaluation tables logged under one artifact name. `moca models compare` prints the same numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from moca.io import write_json

DATA_VERSION = "009df026dfd671c2fdf4748c839efa0b.dir"


def _register(tmp_path: Path, model_files, index: int, miou: float, fscore: float):
    from moca.steps import register
    from moca.steps.runner import Inputs
    from moca.tracking.runs import finish_pipeline_run, start_pipeline_run

    weights, _, _ = model_files(tmp_path / f"model{index}")
    evaluation = tmp_path / f"evaluation{index}"
    write_json(evaluation / "evaluation.json", {"miou": miou, "fscore": fscore, "split": "test", "benchmark": "s4"})
    write_json(evaluation / "per_category.json", [{"category": "dog", "miou": miou, "fscore": fscore, "videos": 2},
                                                  {"category": "car", "miou": miou / 2, "fscore": fscore, "videos": 1}])
    parent = start_pipeline_run(f"pipeline-{index}")
    inputs = Inputs(data_version=DATA_VERSION, parent_run_id=parent, config_hash="cfg",
                    upstream={"model": weights.parent, "evaluation": evaluation})
    result = register.run({}, inputs, tmp_path / f"register{index}")
    finish_pipeline_run(parent, "FINISHED", metrics=result.metrics)
    return result


@pytest.mark.slow  # two real pyfunc models logged (each predicts its serving example first): ~30-60 s here
def test_two_versions_compared_by_metrics_as_the_ui_does(tmp_tracking: str, tmp_path: Path, model_files) -> None:
    import mlflow
    from typer.testing import CliRunner

    from moca.cli import _register_all, app
    from moca.tracking.runs import ensure_experiment

    first = _register(tmp_path, model_files, 1, miou=0.40, fscore=0.55)
    second = _register(tmp_path, model_files, 2, miou=0.45, fscore=0.50)
    assert (first.info["promoted"], second.info["promoted"]) == (True, True)
    client = mlflow.MlflowClient()

    # The version page: model id from the source, then the logged models' metrics (logged-models:batchGet).
    versions = sorted(client.search_model_versions("name='moca'"), key=lambda v: int(v.version))
    model_ids = [re.fullmatch(r"models:/([^/@]+)", v.source)[1] for v in versions]
    metrics = {str(version.version): {m.key: m for m in client.get_logged_model(model_id).metrics}
               for version, model_id in zip(versions, model_ids)}
    assert {v: {k: m.value for k, m in ms.items()} for v, ms in metrics.items()} == {
        "1": {"test.miou": 0.40, "test.fscore": 0.55}, "2": {"test.miou": 0.45, "test.fscore": 0.50}}
    assert {(m.dataset_name, m.dataset_digest) for ms in metrics.values() for m in ms.values()} == {
        ("avsbench-s4", DATA_VERSION)}  # measured on that data version
    assert not any(k.startswith("metric") for v in versions for k in v.tags)  # scores are metrics, not tags

    # The experiment's Models tab: logged models ordered by a metric.
    ranked = mlflow.search_logged_models(experiment_ids=[ensure_experiment()], output_format="list",
                                         order_by=[{"field_name": "metrics.test.miou", "ascending": False}])
    assert [m.model_id for m in ranked] == model_ids[::-1]

    # Runs: the versions' source runs filtered by metric, their evaluation tables side by side.
    source_runs = [v.run_id for v in versions]
    better = client.search_runs([ensure_experiment()], filter_string="metrics.`test.miou` > 0.42")
    assert {r.info.run_id for r in better} >= {source_runs[1]} and source_runs[0] not in {r.info.run_id for r in better}
    tables = mlflow.load_table("evaluation/per_category.json", run_ids=source_runs, extra_columns=["run_id"])
    by_run = tables.pivot(index="category", columns="run_id", values="miou")
    assert by_run.loc["dog", source_runs[0]] == pytest.approx(0.40) and by_run.loc["dog", source_runs[1]] == \
        pytest.approx(0.45)
    # The pipeline runs carry the scores too (what a run comparison of two nightly runs shows).
    parents = {client.get_run(r).data.tags["mlflow.parentRunId"] for r in source_runs}
    assert sorted(client.get_run(p).data.metrics["test.miou"] for p in parents) == [0.40, 0.45]

    # `moca models compare` prints the same numbers and the decisions.
    _register_all()
    printed = CliRunner().invoke(app, ["models", "compare", "--format", "json"])
    assert printed.exit_code == 0, printed.output
    rows = {str(r["version"]): r for r in json.loads(printed.output)}
    for version, ms in metrics.items():
        assert (rows[version]["test.miou"], rows[version]["test.fscore"]) == (ms["test.miou"].value,
                                                                              ms["test.fscore"].value)
    assert rows["2"]["champion"] == "*" and "test.miou: v2 = 0.45 beats champion v1 = 0.4" in rows["2"]["decision"]
