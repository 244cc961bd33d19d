"""Two `moca pipeline run --local` processes at once on one machine, sharing the pipeline root and the MLflow store
(as two users, or a nightly run and a manual one, would): each run keeps its own run-scoped folder, resolves its
own data version, and registers its own model version; neither overwrites the other. Fake Secrets are set for
both, and afterwards every file written and all console output are scanned for them.
(The gate under kfp.local is tests/pipeline/test_local_run.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moca.io import read_json, sha256_tree

sys.path.insert(0, str(Path(__file__).parents[1] / "pipeline"))
sys.path.insert(0, str(Path(__file__).parent))
from leaks import FAKE_SECRETS, scan_for_secrets  # noqa: E402
from pipeline_configs import write_config  # noqa: E402

MOCA = str(Path(sys.executable).parent / "moca")


@pytest.mark.slow  # two full kfp.local runs side by side: ~10 min on the shared 2 cores
def test_two_local_runs_at_once_keep_their_own_outputs_and_data(s4_small: Path, tmp_path: Path,
                                                                 tmp_tracking: str) -> None:
    from mlflow import MlflowClient

    from moca.data.synth import SynthConfig, synthesize
    from moca.tracking.runs import configure

    sources = {"a": s4_small, "b": synthesize(tmp_path / "data-b", SynthConfig(benchmark="s4", videos=12, seed=1))}
    root = tmp_path / "root"
    env = {**os.environ, **FAKE_SECRETS}
    procs = {}
    for name, source in sources.items():
        config = write_config(tmp_path / f"{name}.yaml", source)
        command = [MOCA, "pipeline", "run", "--local", "--config", str(config), "--pipeline-root", str(root),
                   "--run-name", f"run-{name}"]
        procs[name] = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
    logs = {name: proc.communicate(timeout=1800)[0] for name, proc in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, f"run {name} failed:\n{logs[name][-4000:]}"

    runs = sorted(p for p in root.iterdir() if p.is_dir())
    assert len(runs) == 2  # one run-scoped folder each, nothing shared
    versions = {}
    for run in runs:
        version = read_json(run / "ingest" / "dataset" / "manifest.json")["info"]["data_version"]
        ingested = run / "ingest" / "dataset" / "data"
        assert sha256_tree(ingested) == version  # the folder holds exactly the version its manifest names
        promotion = read_json(run / "register" / "promotion" / "promotion.json")
        versions[version] = promotion["version"]
        assert read_json(run / "evaluate" / "evaluation" / "evaluation.json")["split"] == "test"
    assert set(versions) == {sha256_tree(source) for source in sources.values()}  # each resolved its own data
    # configure() re-reads this test's store: an earlier test in this process may have pointed mlflow's global
    # tracking and registry URIs at its own.
    configure()
    registered = MlflowClient().search_model_versions("name='moca'")
    assert sorted(str(v.version) for v in registered) == ["1", "2"]
    assert {v.tags["data_version"] for v in registered} == set(versions)

    store = Path(tmp_tracking.removeprefix("sqlite:///")).parent
    scanned, leaks = scan_for_secrets([root, store], {f"console of run {n}": text for n, text in logs.items()})
    assert scanned > 100 and not leaks, leaks
