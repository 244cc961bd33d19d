"""Data parallel over 2 CPU processes (gloo on 127.0.0.1) equals one process with the same global batch."""

from __future__ import annotations

import json
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


@pytest.mark.slow  # torchrun + 3 `moca train` processes with the tiny ImageBind (~2-3 min on the shared cores)
def test_torchrun_moca_train_matches_a_single_process(tmp_path):
    from train_standins import synthetic_run_inputs, tiny_config_yaml

    root, pairs = synthetic_run_inputs(tmp_path)
    config = tiny_config_yaml(tmp_path / "train.yaml", root, epochs=2, batch_size=4, lr=1.0e-2)
    moca, torchrun = (str(Path(sys.executable).parent / name) for name in ("moca", "torchrun"))
    args = ["train", "--config", str(config), "--pairs", str(pairs)]
    launches = [
        [moca, *args, "--out", str(tmp_path / "single")],
        [torchrun, "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
         "--no-python", moca, *args, "--out", str(tmp_path / "ddp")],
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for cmd in launches]
    for proc in procs:
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, output[-3000:]
    single = torch.load(tmp_path / "single" / "adapters.pt", weights_only=True)
    ddp = torch.load(tmp_path / "ddp" / "adapters.pt", weights_only=True)
    losses = [json.loads((tmp_path / d / "train_manifest.json").read_text())["losses"] for d in ("single", "ddp")]
    torch.testing.assert_close(torch.tensor(losses[1]), torch.tensor(losses[0]), rtol=0, atol=1e-6)
    for name, value in single.items():
        # 1e-5, not 1e-6: with AdaAV's gates starting at 0, q/k/v get (near-)zero gradients in the first steps, and
        # Adam divides those by their own tiny magnitude, so batch-split rounding (1e-8 in the loss) shows up as
        # ~3e-6 in weights of size 0.13. The stand-in test above, without that effect, holds 1e-6.
        torch.testing.assert_close(ddp[name], value, rtol=0, atol=1e-5, msg=name)
    assert any(v.abs().sum() > 0 for k, v in single.items() if k.endswith("gate"))
