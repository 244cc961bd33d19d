"""The pod harness's own path mapping (tests/pod_harness.py), fast: the pod-fidelity test trusts it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pod_harness import map_paths

# As on this machine: pod folders and volumes live under the host's /tmp, itself a container path.
MOUNTS = {"/home/moca": Path("/tmp/run/pods/p/home"), "/tmp": Path("/tmp/run/pods/p/tmp"),
          "/cache/weights": Path("/tmp/run/volumes/moca-weights-cache")}  # fmt: skip


@pytest.mark.parametrize(("value", "mapped"), [
    ("/cache/weights", "/tmp/run/volumes/moca-weights-cache"),  # not mapped again as a /tmp path
    ("/tmp/x,/cache/weights/a:/home/moca", "/tmp/run/pods/p/tmp/x,/tmp/run/volumes/moca-weights-cache/a:"
                                           "/tmp/run/pods/p/home"),
    ("/tmpfiles", "/tmpfiles"), ("data/tmp", "data/tmp"), ("s3://moca-data/tmp", "s3://moca-data/tmp"),
])  # fmt: skip
def test_container_paths_map_once_into_the_pod_folder(value, mapped):
    assert map_paths(value, MOUNTS) == mapped
