"""A `moca train` process killed with SIGKILL at random steps and rerun (the train step continues an attempt made
with the same settings) ends with the same adapters, bit for bit, as a run that was never interrupted (real CLI,
tiny ImageBind, synthetic data, a checkpoint every step)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
from train_standins import synthetic_run_inputs, tiny_config_yaml  # noqa: E402

from moca.train.checkpoint import list_checkpoints  # noqa: E402

MOCA = str(Path(sys.executable).parent / "moca")


def _train(config: Path, pairs: Path, out: Path) -> subprocess.Popen:
    command = [MOCA, "train", "--config", str(config), "--pairs", str(pairs), "--out", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_at(proc: subprocess.Popen, folder: Path, step: int) -> None:
    """SIGKILL `proc` as soon as its newest checkpoint reaches `step` (possibly while it writes the next one)."""
    while proc.poll() is None:
        newest = list_checkpoints(folder)
        if newest and newest[0].step >= step:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"run ended before the kill at step {step}:\n{output[-2000:]}"


@pytest.mark.slow  # five `moca train` processes (~2 min on the shared 2 cores)
def test_sigkilled_and_resumed_run_matches_an_uninterrupted_one(tmp_path):
    root, pairs = synthetic_run_inputs(tmp_path, anchors=4, frames=8)
    config = tiny_config_yaml(tmp_path / "train.yaml", root, epochs=4)  # 2 steps per epoch -> 8 steps
    straight = _train(config, pairs, tmp_path / "straight")

    out = tmp_path / "killed"
    # Three kill points spread over the run (steps 1, 4, 6 of 8): mid-epoch, then epoch boundaries early and late.
    for step in sorted(random.Random(0).sample(range(1, 7), 3)):
        _kill_at(_train(config, pairs, out), out / "checkpoints", step)
    final = _train(config, pairs, out)
    for proc in (straight, final):
        output, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, output[-3000:]

    manifests = [json.loads((d / "train_manifest.json").read_text()) for d in (tmp_path / "straight", out)]
    assert manifests[1]["resumed_from"] > 0 and manifests[0]["steps"] == manifests[1]["steps"] == 8
    assert manifests[1]["losses"] == manifests[0]["losses"]
    expected = torch.load(tmp_path / "straight" / "adapters.pt", weights_only=True)
    resumed = torch.load(out / "adapters.pt", weights_only=True)
    for name, value in expected.items():
        assert torch.equal(value, resumed[name]), name
