"""Thread policy: MOCA_NUM_THREADS, then the cgroup CPU quota (v2 and v1, nested), then the affinity mask."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from moca import threads
from moca.errors import ConfigError
from moca.threads import choose_threads, configure_threads


@pytest.fixture
def cpus(monkeypatch) -> None:
    """Pretend the process may run on 8 CPUs, whatever this machine has."""
    monkeypatch.setattr(threads, "usable_cpus", lambda: (8, "CPU affinity"))


def cgroup_v2(tmp_path: Path, cpu_max: dict[str, str], own: str = "/kubepods/pod1/ctr") -> tuple[Path, Path]:
    """A fake cgroup v2 tree: `cpu_max` maps a cgroup path ('' = the mount) to its cpu.max text."""
    root = tmp_path / "cgroup"
    for path, text in cpu_max.items():
        folder = root / path.strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cpu.max").write_text(text + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::{own}\n")
    return root, proc


def cgroup_v1(tmp_path: Path, quota: str, period: str = "100000", mount: str = "cpu,cpuacct") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    folder = root / mount
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text(quota)
    (folder / "cpu.cfs_period_us").write_text(period)
    proc = tmp_path / "proc-self-cgroup"
    # inside a container the listed path usually does not exist below the mount: the mount itself is read
    proc.write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    return root, proc


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ({"": "max 100000"}, 8),  # no limit: the affinity mask
        ({"": "200000 100000"}, 2),
        ({"": "250000 100000"}, 2),  # 2.5 CPUs: rounded down, a third thread would only wait
        ({"": "50000 100000"}, 1),  # below one CPU: still one thread
        ({"": "1600000 100000"}, 8),  # a quota above the affinity mask: the mask
        ({"": "max 100000", "kubepods/pod1": "300000 100000", "kubepods/pod1/ctr": "max 100000"}, 3),  # nested
        ({"kubepods/pod1": "600000 100000", "kubepods/pod1/ctr": "400000 100000"}, 4),  # the tightest wins
    ],
)
def test_cgroup_v2_quota(tmp_path, cpus, cpu_max, expected):
    root, proc = cgroup_v2(tmp_path, cpu_max)
    assert choose_threads({}, root, proc).threads == expected


@pytest.mark.parametrize(("quota", "period", "mount", "expected"), [
    ("-1", "100000", "cpu,cpuacct", 8),  # v1 "no limit"
    ("300000", "100000", "cpu,cpuacct", 3),
    ("150000", "50000", "cpu", 3),
    ("10000", "100000", "cpu", 1),
])
def test_cgroup_v1_quota(tmp_path, cpus, quota, period, mount, expected):
    root, proc = cgroup_v1(tmp_path, quota, period, mount)
    choice = choose_threads({}, root, proc)
    assert choice.threads == expected
    assert ("cpu.cfs_quota_us" in choice.reason) == (expected != 8)


def test_no_cgroup_files_fall_back_to_the_affinity_mask(tmp_path, cpus):
    choice = choose_threads({}, tmp_path / "missing", tmp_path / "missing-proc")
    assert choice.threads == 8 and "affinity" in choice.reason


def test_a_malformed_quota_file_is_ignored(tmp_path, cpus, caplog):
    root, proc = cgroup_v2(tmp_path, {"": "lots 100000"})
    with caplog.at_level(logging.WARNING):
        assert choose_threads({}, root, proc).threads == 8
    assert "unreadable CPU quota" in caplog.text


def test_explicit_setting_wins_over_the_quota(tmp_path, cpus):
    root, proc = cgroup_v2(tmp_path, {"": "200000 100000"})
    choice = choose_threads({"MOCA_NUM_THREADS": "5"}, root, proc)
    assert choice.threads == 5 and choice.reason == "MOCA_NUM_THREADS=5"


@pytest.mark.parametrize(("environ", "expected"), [
    ({"MOCA_NUM_THREADS": "32", "LOCAL_WORLD_SIZE": "4"}, 8),  # the gpu overlay: 32 CPUs, 4 processes per node
    ({"MOCA_NUM_THREADS": "2", "LOCAL_WORLD_SIZE": "4"}, 1),
    ({"LOCAL_WORLD_SIZE": "2"}, 4),  # the 8 affinity CPUs shared by two processes
    ({"MOCA_NUM_THREADS": "6", "LOCAL_WORLD_SIZE": "1"}, 6),
])
def test_torchrun_processes_share_the_cpus(tmp_path, cpus, environ, expected):
    choice = choose_threads(environ, tmp_path / "none", tmp_path / "none")
    assert choice.threads == expected
    assert ("LOCAL_WORLD_SIZE" in choice.reason) == (int(environ["LOCAL_WORLD_SIZE"]) > 1)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_explicit_setting_is_one_clear_error(tmp_path, value):
    with pytest.raises(ConfigError, match="MOCA_NUM_THREADS"):
        choose_threads({"MOCA_NUM_THREADS": value}, tmp_path, tmp_path / "none")


def test_configure_exports_applies_to_torch_and_logs(tmp_path, cpus, caplog, monkeypatch):
    import torch

    root, proc = cgroup_v2(tmp_path, {"": "300000 100000"})
    environ = {"OMP_NUM_THREADS": "64"}
    before = torch.get_num_threads()
    try:
        with caplog.at_level(logging.DEBUG, logger="moca.threads"):
            assert configure_threads(environ, root, proc) == 3
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    assert {environ[name] for name in threads.THREAD_VARIABLES} == {"3"} and "MOCA_NUM_THREADS" not in environ
    assert "compute threads: 3 (cgroup CPU quota 3 CPUs" in caplog.text and "applied to torch" in caplog.text


def test_configure_does_not_import_torch_and_torch_then_follows_the_variables(tmp_path):
    """In a fresh interpreter: no torch import (keeps `--help` fast); torch imported later reads OMP_NUM_THREADS."""
    code = (
        "import os, sys\n"
        "from moca.threads import configure_threads\n"
        "n = configure_threads()\n"
        "assert 'torch' not in sys.modules\n"
        "import torch\n"
        "print(n, torch.get_num_threads())\n"
    )
    env = {**os.environ, "MOCA_NUM_THREADS": "1"}
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "1"]
