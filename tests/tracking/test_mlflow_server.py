"""Register and promote against a real `mlflow server` process, with its artifacts on the moto S3 server."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_register_and_promote_through_a_server(mlflow_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               model_files) -> None:
    import boto3
    import mlflow

    from moca.tracking import pyfunc, registry, runs

    for name, value in mlflow_server.env.items():
        monkeypatch.setenv(name, value)
    assert runs.local_store_path() is None  # a server: no file lock, compare-and-set re-read instead

    weights, config, backbones = model_files(tmp_path)
    tags = {"data_version": "v" * 8, "config_hash": "c" * 16, "git_sha": "g" * 40}
    decisions = []
    for score in (0.5, 0.4, 0.6):  # first, worse, better
        with runs.pipeline_run("server-run", params={"seed": 0}):
            with runs.step_run("register"):
                logged = pyfunc.log_model(weights, config, backbones)
                registry.log_scores(logged.model_id, {"test.miou": score})
        decisions.append(registry.register_and_promote(logged.model_uri, "miou", "test", tags=tags,
                                                       name="moca-server").promoted)
    assert decisions == [True, False, True]
    table = registry.compare_versions("moca-server")
    assert table["champion"].tolist() == ["*", "", ""] and table["test.miou"].tolist() == [0.6, 0.4, 0.5]

    s3 = boto3.client("s3", endpoint_url=mlflow_server.env["MOCA_S3_ENDPOINT_URL"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=mlflow_server.artifact_bucket)["Contents"]]
    assert any(k.endswith("model/adapter.pt") for k in keys), keys  # the artifacts really went to S3
    loaded = mlflow.pyfunc.load_model("models:/moca-server@champion")
    model_dir = Path(loaded.unwrap_python_model().model_dir)
    assert (model_dir / "adapter.pt").read_bytes() == weights.read_bytes()
