"""Prefect test setup: settings are read when prefect is imported, so they are set here, before any test imports it.

The ephemeral API (a local server subprocess on 127.0.0.1 with a throwaway SQLite database) comes from Prefect's
own `prefect_test_harness`; PREFECT_HOME points at a temporary folder so nothing touches ~/.prefect.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

PREFECT_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_HOME": tempfile.mkdtemp(prefix="moca-prefect-home-"),
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
}
for _name, _value in PREFECT_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def tiny_s4_prefect(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from moca.data.synth import SynthConfig, synthesize

    return synthesize(tmp_path_factory.mktemp("s4") / "data", SynthConfig(benchmark="s4", videos=12, seed=0))
