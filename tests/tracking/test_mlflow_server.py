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
    with runs.pipeline_run("server-run", params={"seed": 0}):
        with runs.step_run("register"):
            model_uri = pyfunc.log_model(weights, config, backbones)
    tags = {"data_version": "v" * 8, "config_hash": "c" * 16, "git_sha": "g" * 40}
    first = registry.register_and_promote(model_uri, "miou", 0.5, "test", tags=tags, name="moca-server")
    worse = registry.register_and_promote(model_uri, "miou", 0.4, "test", tags=tags, name="moca-server")
    better = registry.register_and_promote(model_uri, "miou", 0.6, "test", tags=tags, name="moca-server")
    assert (first.promoted, worse.promoted, better.promoted) == (True, False, True)
    assert registry.compare_versions("moca-server")["champion"].tolist() == ["*", "", ""]

    s3 = boto3.client("s3", endpoint_url=mlflow_server.env["MOCA_S3_ENDPOINT_URL"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=mlflow_server.artifact_bucket)["Contents"]]
    assert any(k.endswith("model/adapter.pt") for k in keys), keys  # the artifacts really went to S3
    loaded = mlflow.pyfunc.load_model("models:/moca-server@champion")
    model_dir = Path(loaded.unwrap_python_model().model_dir)
    assert (model_dir / "adapter.pt").read_bytes() == weights.read_bytes()
