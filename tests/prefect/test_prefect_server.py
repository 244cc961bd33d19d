"""The flow and its deployment against a real `prefect server start` on 127.0.0.1 (slow: the server takes ~30 s)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from moca.data.layout import list_videos
from retrain_configs import REPO, write_retrain_config

pytestmark = pytest.mark.slow

# Runs in a child process so that PREFECT_API_URL is read at its prefect import: registers the deployment, runs one
# cycle on data that fails validation (so no Kubeflow is needed), then reads back what the server recorded.
CLIENT_SCRIPT = """
import json, sys
from prefect.client.orchestration import get_client
from pipelines.retrain_flow import deployment, retrain

deployment_id = deployment(sys.argv[1]).apply()
state = retrain(sys.argv[1], return_state=True)
with get_client(sync_client=True) as client:
    found = client.read_deployment(deployment_id)
    runs = client.read_flow_runs()
print(json.dumps({"state": state.type.value, "crons": [s.schedule.cron for s in found.schedules],
                  "runs": [r.state.type.value for r in runs]}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


@pytest.fixture
def prefect_server(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "false"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
    process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                                str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait(f"{api}/health", process, 180)
        yield api, env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_deployment_and_a_failed_cycle_are_recorded_by_the_server(prefect_server, tiny_s4_prefect, tmp_path,
                                                                   tmp_tracking):  # fmt: skip
    api, env = prefect_server
    broken = shutil.copytree(tiny_s4_prefect, tmp_path / "broken")
    list_videos(broken, "s4", "train")[0].audio.write_bytes(b"RIFF")
    config = write_retrain_config(tmp_path, broken)
    child_env = {**env, "PREFECT_API_URL": api, "MLFLOW_TRACKING_URI": tmp_tracking,
                 "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", CLIENT_SCRIPT, str(config)], env=child_env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = json.loads(result.stdout.strip().splitlines()[-1])
    assert recorded["state"] == "FAILED" and recorded["crons"] == ["0 3 * * *"]
    # the one cycle run here failed; the server's scheduler has queued the deployment's next runs from the cron
    assert recorded["runs"].count("FAILED") == 1 and "SCHEDULED" in recorded["runs"]
    assert set(recorded["runs"]) == {"FAILED", "SCHEDULED"}
