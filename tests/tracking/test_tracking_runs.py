from __future__ import annotations

from pathlib import Path

import pytest

from moca.errors import MocaError
from moca.tracking import pyfunc, registry, runs
from moca.tracking.scrub import MASK, contains_secret, scrub, scrub_obj, secret_values

FAKE = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE1234",
    "AWS_SECRET_ACCESS_KEY": "fake/secret+KEY/that-must-never-leak",
    "GITHUB_TOKEN": "ghp_faketokenfaketoken",
    "MINIO_ROOT_PASSWORD": "minio-fake-password",
}


def test_scrub_masks_env_values_and_url_userinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME_DIR_TOKEN_COUNT", "1")  # too short to be a secret: left alone
    text = f"key={FAKE['AWS_SECRET_ACCESS_KEY']} url=https://bob:hunter2@minio.local:9000/x count=1"
    assert scrub(text) == f"key={MASK} url=https://{MASK}@minio.local:9000/x count=1"
    assert scrub_obj({"a": [FAKE["GITHUB_TOKEN"], 3], FAKE["MINIO_ROOT_PASSWORD"]: "v"}) == {"a": [MASK, 3],
                                                                                           MASK: "v"}
    assert contains_secret(text) and not contains_secret(scrub(text))
    assert "1" not in secret_values()


def test_nested_runs_params_metrics_artifacts(tmp_tracking: str, tmp_path: Path) -> None:
    import mlflow

    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("<h1>ok</h1>")
    with runs.pipeline_run("nightly", params={"train": {"lr": 1e-4, "positions": [8, 16]}}) as parent:
        with runs.step_run("train", params={"epochs": 2}):
            runs.log_metrics({"loss": 0.5}, step=1)
        with runs.step_run("validate"):
            runs.log_artifacts(report, "validation")
    client = mlflow.MlflowClient()
    parent_run = client.get_run(parent.info.run_id)
    assert parent_run.data.params == {"train.lr": "0.0001", "train.positions": "[8, 16]"}
    assert parent_run.data.tags["moca.git_sha"]
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_step = {run.data.tags["moca.step"]: run for run in children}
    assert set(by_step) == {"train", "validate"}
    assert by_step["train"].data.metrics == {"loss": 0.5} and by_step["train"].data.params == {"epochs": "2"}
    listed = [a.path for a in client.list_artifacts(by_step["validate"].info.run_id, "validation/report")]
    assert listed == ["validation/report/index.html"]
    # The local default: artifacts live in the configured folder, not in ./mlruns.
    assert list(Path(tmp_tracking.removeprefix("sqlite:///")).parent.glob("mlartifacts/*/artifacts/validation/report/index.html"))


def test_step_run_needs_a_parent(tmp_tracking: str) -> None:
    with pytest.raises(RuntimeError, match="needs an active pipeline_run"):
        with runs.step_run("orphan"):
            pass


def test_credentials_never_reach_the_store(tmp_tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           model_files) -> None:
    for name, value in FAKE.items():
        monkeypatch.setenv(name, value)
    leaky_url = f"https://admin:{FAKE['MINIO_ROOT_PASSWORD']}@minio:9000"
    manifest = tmp_path / "out" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(f'{{"endpoint": "{leaky_url}", "key": "{FAKE["AWS_ACCESS_KEY_ID"]}"}}')
    weights, config, backbones = model_files(tmp_path / "model")
    with config.open("a") as handle:  # a config that should not hold a token, but does (quoted: the mask `***`
        handle.write(f"token: '{FAKE['GITHUB_TOKEN']}'\n")  # left bare would read as a YAML alias)
    with runs.pipeline_run("leak-check", params={"store": {"url": leaky_url, "secret": FAKE["AWS_SECRET_ACCESS_KEY"]}},
                           tags={"who": FAKE["GITHUB_TOKEN"]}):
        with runs.step_run("ingest", params={"key": FAKE["AWS_ACCESS_KEY_ID"]}):
            runs.log_text(f"connected with {FAKE['AWS_SECRET_ACCESS_KEY']}", "log.txt")
            runs.log_artifacts(manifest.parent, "manifests")
            runs.log_table([{"endpoint": leaky_url, "miou": 0.5}], "evaluation/per_video.json")
        with runs.step_run("register"):
            logged = pyfunc.log_model(weights, config, backbones)
            registry.log_scores(logged.model_id, {"test.miou": 0.5})
    registry.register_and_promote(logged.model_uri, "miou", "test",
                                  tags={"data_version": "d", "config_hash": "c", "note": leaky_url})

    store_dir = Path(tmp_tracking.removeprefix("sqlite:///")).parent
    scanned = 0
    for file in store_dir.rglob("*"):
        if file.is_file():
            scanned += 1
            data = file.read_bytes()
            for value in FAKE.values():
                assert value.encode() not in data, f"{value} leaked into {file.relative_to(store_dir)}"
    assert scanned > 5


def test_stage_model_dir_refuses_incomplete_backbones(tmp_path: Path, model_files) -> None:
    weights, config, _ = model_files(tmp_path)
    with pytest.raises(MocaError, match="needs 'uri' and 'sha256'"):
        pyfunc.stage_model_dir(weights, config, {"sam": {"uri": "s3://x"}}, tmp_path / "m")
    with pytest.raises(MocaError, match="not found"):
        pyfunc.stage_model_dir(tmp_path / "nope.pt", config, {}, tmp_path / "m")
