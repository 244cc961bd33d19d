"""The Prefect retraining flow on Prefect's ephemeral API, with Kubeflow replaced by a fake and a real local webhook."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest
from retrain_configs import write_retrain_config

from moca.data.layout import list_videos

# Prefect's ephemeral API server takes ~40 s to start on 2 shared cores, more than this area's default-test budget.
SLOW_API = pytest.mark.slow


@pytest.fixture
def webhook():
    """An HTTP server on 127.0.0.1 collecting the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):  # keep test output clean
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_kubeflow(monkeypatch):
    """Records submissions; each run ends in `state`."""
    from moca.steps import kubeflow

    fake = SimpleNamespace(submitted=[], state="SUCCEEDED")

    def submit(host, config_path, data_rev=None, run_name=None, overrides=()):
        fake.submitted.append({"host": host, "config": str(config_path), "data_rev": data_rev})
        return "run-42"

    monkeypatch.setattr(kubeflow, "submit", submit)
    monkeypatch.setattr(kubeflow, "wait", lambda host, run_id, timeout_s: fake.state)
    return fake


@SLOW_API
def test_new_data_is_validated_run_on_kubeflow_and_notified(prefect_api, tmp_tracking, tiny_s4_prefect, tmp_path,
                                                            webhook, fake_kubeflow):  # fmt: skip
    from moca.pipelines.retrain_flow import retrain

    url, received = webhook
    config, version = write_retrain_config(tmp_path, tiny_s4_prefect, url)
    summary = retrain(str(config), host="http://127.0.0.1:9", pipeline_root=str(tmp_path / "root"))
    assert fake_kubeflow.submitted == [{"host": "http://127.0.0.1:9", "config": str(config), "data_rev": version}]
    assert summary["data_version"] == version and summary["state"] == "SUCCEEDED"
    assert summary["outcome"] == "kept champion" and summary["champion"] is None  # the fake registered nothing
    assert received == [json.loads(json.dumps(summary))]


@SLOW_API
def test_data_the_champion_was_trained_on_is_not_retrained(prefect_api, tmp_tracking, tiny_s4_prefect, tmp_path,
                                                           webhook, fake_kubeflow, monkeypatch):  # fmt: skip
    from moca.pipelines.retrain_flow import retrain
    from moca.tracking import registry

    url, received = webhook
    config, version = write_retrain_config(tmp_path, tiny_s4_prefect, url)
    monkeypatch.setattr(registry, "champion", lambda name: SimpleNamespace(version=3, tags={"data_version": version}))
    summary = retrain(str(config), host="http://127.0.0.1:9",
                      pipeline_root=str(tmp_path / "root"))
    assert summary["outcome"] == "skipped" and fake_kubeflow.submitted == []
    assert received[0]["outcome"] == "skipped: no new data version" and received[0]["champion_before"] == "3"


@SLOW_API
def test_invalid_data_and_failed_runs_are_notified_and_fail_the_flow(prefect_api, tmp_tracking, tiny_s4_prefect,
                                                                      tmp_path, webhook, fake_kubeflow):  # fmt: skip
    from moca.errors import MocaError, ValidationFailed
    from moca.pipelines.retrain_flow import retrain

    url, received = webhook
    fake_kubeflow.state = "FAILED"
    with pytest.raises(MocaError, match="ended FAILED"):
        retrain(str(write_retrain_config(tmp_path, tiny_s4_prefect, url)[0]), host="http://127.0.0.1:9",
                pipeline_root=str(tmp_path / "root"))
    assert received[-1]["outcome"] == "pipeline failed" and received[-1]["run_id"] == "run-42"

    broken = shutil.copytree(tiny_s4_prefect, tmp_path / "broken")
    list_videos(broken, "s4", "train")[0].audio.write_bytes(b"RIFF")
    (tmp_path / "b").mkdir()
    with pytest.raises(ValidationFailed):
        retrain(str(write_retrain_config(tmp_path / "b", broken, url)[0]), host="http://127.0.0.1:9",
                pipeline_root=str(tmp_path / "root"))
    assert received[-1]["outcome"] == "invalid data" and received[-1]["failures"]
    assert len(fake_kubeflow.submitted) == 1  # only the first, valid, cycle reached Kubeflow


def test_deployment_runs_on_the_configured_five_field_cron(tiny_s4_prefect, tmp_path):
    from moca.errors import ConfigError
    from moca.pipelines.retrain_flow import deployment

    config, _ = write_retrain_config(tmp_path, tiny_s4_prefect)
    built = deployment(str(config), host="http://kfp:8888")
    (schedule,) = built.schedules
    assert schedule.schedule.cron == "0 3 * * *"
    assert built.parameters == {"config": str(config), "host": "http://kfp:8888"}
    config.write_text(config.read_text().replace("cron: 0 3 * * *", "cron: 0 0 3 * * *"))
    with pytest.raises(ConfigError, match="5-field"):
        deployment(str(config))
