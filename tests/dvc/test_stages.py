"""The local path as DVC stages (dvc.yaml + params.yaml): every stage is a step command over its params.yaml
section, params.yaml holds the demo pipeline's settings, and DVC itself runs them: `dvc repro`, `dvc exp run -S`,
`dvc params diff`, `dvc metrics diff` in a fresh git repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from moca.steps import PIPELINE, step_spec
from moca.steps.config import STEP_SECTIONS, load_config

REPO = Path(__file__).resolve().parents[2]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_params_yaml_is_the_demo_pipeline_config() -> None:
    """Spelled out for DVC, but the same settings as configs/pipeline_demo.yaml (+ configs/demo.yaml)."""
    params = load_config(REPO / "params.yaml")
    demo = load_config(REPO / "configs" / "pipeline_demo.yaml", ["train.data.root=data"])
    assert {s: params.section(s) for s in STEP_SECTIONS} == {s: demo.section(s) for s in STEP_SECTIONS}


def test_every_stage_is_a_step_command_over_its_params_section() -> None:
    assert list(STAGES) == [name for name in PIPELINE if name not in ("ingest", "register")]
    for name, stage in STAGES.items():
        command = " ".join(stage["cmd"].split())
        assert command.startswith("moca ") and "--config params.yaml" in command
        assert f"--metrics metrics/{name}.json" in command and stage["metrics"] == [
            {f"metrics/{name}.json": {"cache": False}}]
        assert set(stage["params"]) == {"data", step_spec(name).section}
        assert stage["outs"] == [f"runs/{name}"] and {"${data.path}", "src/moca"} <= set(stage["deps"])
        for role in step_spec(name).reads:  # wired as the pipeline is: to the folder of the step producing it
            producer = next(n for n in PIPELINE if step_spec(n).produces == role)
            assert f"runs/{producer}" in command and f"runs/{producer}" in stage["deps"]
    assert "runs/validate/validation.json" in STAGES["mine_pairs"]["deps"]  # the gate


def _env() -> dict[str, str]:
    """The stages run `moca` from this environment; one torch thread each on the shared cores."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "t@example.com"}


def _run(repo: Path, *args: str) -> str:
    result = subprocess.run(list(args), cwd=repo, env=_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _dvc(repo: Path, *args: str) -> str:
    return _run(repo, sys.executable, "-m", "dvc", *args)


@pytest.mark.slow  # five stages, then three again for the experiment: ~1-2 min on the shared cores
def test_dvc_repro_then_an_experiment_and_its_metrics_diff(tmp_path: Path) -> None:
    from moca.data.synth import SynthConfig, synthesize

    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, repo / name)
    # The code the stages depend on (they run this environment's moca, which is this code).
    shutil.copytree(REPO / "src" / "moca", repo / "src" / "moca", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / ".gitignore").write_text(".moca/\n")  # where training's own MLflow tracker writes
    _run(repo, "git", "init", "-q")
    _dvc(repo, "init", "-q")
    shutil.copy(REPO / ".dvcignore", repo / ".dvcignore")
    synthesize(repo / "data", SynthConfig(benchmark="s4", videos=8, seed=0))
    _dvc(repo, "add", "-q", "data")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "data and stages")

    _dvc(repo, "repro")
    scores = json.loads((repo / "metrics" / "evaluate.json").read_text())
    assert set(scores) == {"test.miou", "test.fscore"} and all(0.0 <= v <= 1.0 for v in scores.values())
    assert json.loads((repo / "runs" / "evaluate" / "manifest.json").read_text())["step"] == "evaluate"
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "a reproduced run")
    assert "Data and pipelines are up to date" in _dvc(repo, "repro")

    experiment = _dvc(repo, "exp", "run", "-S", "train.lr=0.01")
    for unchanged in ("validate", "mine_pairs"):
        assert f"Stage '{unchanged}' didn't change, skipping" in experiment
    for rerun in ("train", "infer", "evaluate"):
        assert f"Running stage '{rerun}'" in experiment
    params = json.loads(_dvc(repo, "params", "diff", "--json"))
    old = yaml.safe_load((REPO / "params.yaml").read_text())["train"]["lr"]
    assert params == {"params.yaml": {"train.lr": {"old": old, "new": 0.01, "diff": pytest.approx(0.01 - old)}}}
    metrics = json.loads(_dvc(repo, "metrics", "diff", "--all", "--json"))
    assert {"test.miou", "test.fscore"} == set(metrics["metrics/evaluate.json"])
    loss = metrics["metrics/train.json"]["final_loss"]
    assert loss["old"] != loss["new"]  # another learning rate trained other adapters
    shown = json.loads(_dvc(repo, "exp", "show", "--json"))
    assert len([e for row in shown for e in row.get("experiments") or []]) == 1
