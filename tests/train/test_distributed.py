"""Data parallel over 2 CPU processes (gloo on 127.0.0.1) equals one process with the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from moca.errors import ConfigError
from moca.train.distributed import init_distributed

CHILD = Path(__file__).parent / "ddp_child.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out: Path, world_size: int, grad_accum: int) -> list[subprocess.Popen]:
    """Start `world_size` ranks with the variables a PyTorchJob sets (no LOCAL_RANK)."""
    out.mkdir()
    port = str(_free_port())
    procs = []
    for rank in range(world_size):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": str(world_size),
               "RANK": str(rank)}
        env.pop("LOCAL_RANK", None)
        procs.append(subprocess.Popen([sys.executable, str(CHILD), str(out), str(grad_accum)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def _result(out: Path, procs: list[subprocess.Popen]) -> dict:
    for proc in procs:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output[-3000:]
    return torch.load(out / "result.pt", weights_only=True)


@pytest.mark.slow  # three interpreters start; ~55 s wall on the shared 2 cores (16 s CPU)
def test_two_gloo_ranks_match_one_process(tmp_path):
    # both launches at once: most of the wall time is interpreter start-up, which overlaps
    single_procs = _launch(tmp_path / "single", world_size=1, grad_accum=1)
    ddp_procs = _launch(tmp_path / "ddp", world_size=2, grad_accum=2)  # 2 ranks x 2 micro-batches of 2 = 8/step
    single, ddp = _result(tmp_path / "single", single_procs), _result(tmp_path / "ddp", ddp_procs)
    assert len(ddp["losses"]) == len(single["losses"]) == 6
    torch.testing.assert_close(torch.tensor(ddp["losses"]), torch.tensor(single["losses"]), rtol=0, atol=1e-6)
    for name, value in single["adapters"].items():
        torch.testing.assert_close(ddp["adapters"][name], value, rtol=0, atol=1e-6, msg=name)
    assert not torch.equal(single["adapters"]["gate"], torch.full((1,), 0.5))  # it trained


def test_incomplete_launch_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ConfigError, match="MASTER_ADDR is not set"):
        init_distributed("cpu")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="outside WORLD_SIZE"):
        init_distributed("cpu")
