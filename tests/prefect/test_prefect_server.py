"""The flow and its deployment against a real `prefect server start` on 127.0.0.1 (slow: the server takes ~30 s)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from retrain_configs import write_retrain_config

from moca.data.layout import list_videos

pytestmark = pytest.mark.slow

# Runs in a child process so that PREFECT_API_URL is read at its prefect import: registers the deployment, runs one
# cycle on data that fails validation (so no Kubeflow is needed), then reads back what the server recorded.
CLIENT_SCRIPT = """
import json, sys
from prefect.client.orchestration import get_client
from moca.pipelines.retrain_flow import deployment, retrain

deployment_id = deployment(sys.argv[1]).apply()
state = retrain(sys.argv[1], pipeline_root=sys.argv[2], return_state=True)
with get_client(sync_client=True) as client:
    found = client.read_deployment(deployment_id)
    runs = client.read_flow_runs()
print(json.dumps({"state": state.type.value, "crons": [s.schedule.cron for s in found.schedules],
                  "runs": [r.state.type.value for r in runs]}))
"""


@pytest.fixture
def prefect_server(tmp_path: Path, start_server):
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "false"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", "{port}"]
    with start_server(command, "/api/health", env, tmp_path / "server.log", 180) as url:
        yield f"{url}/api", env


def test_deployment_and_a_failed_cycle_are_recorded_by_the_server(prefect_server, tiny_s4_prefect, tmp_path,
                                                                   tmp_tracking):  # fmt: skip
    api, env = prefect_server
    broken = shutil.copytree(tiny_s4_prefect, tmp_path / "broken")
    list_videos(broken, "s4", "train")[0].audio.write_bytes(b"RIFF")
    config, _ = write_retrain_config(tmp_path, broken)
    child_env = {**env, "PREFECT_API_URL": api, "MLFLOW_TRACKING_URI": tmp_tracking}
    result = subprocess.run([sys.executable, "-c", CLIENT_SCRIPT, str(config), str(tmp_path / "root")],
                            env=child_env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = json.loads(result.stdout.strip().splitlines()[-1])
    assert recorded["state"] == "FAILED" and recorded["crons"] == ["0 3 * * *"]
    # the one cycle run here failed; the server's scheduler has queued the deployment's next runs from the cron
    assert recorded["runs"].count("FAILED") == 1 and "SCHEDULED" in recorded["runs"]
    assert set(recorded["runs"]) == {"FAILED", "SCHEDULED"}
