"""What kfp.local costs: the same pipeline config run in one process (moca.steps.inprocess), then through kfp.local.

    python benchmarks/bench_pipeline.py [--videos 12] [--max-steps 2]

Both runs use tiny synthetic S4 data, the demo pipeline config (tiny random-init models, SAM point prompts) with a
short training, and their own temporary MLflow store. The direct run is the naive reference: kfp.local starts a
fresh interpreter per task (9 tasks), each importing torch/MLflow/GE again, and copies artifacts between tasks.
On shared cores the numbers are noisy: run it twice and read the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _config(folder: Path, data: Path, max_steps: int) -> Path:
    config = yaml.safe_load((REPO / "configs" / "pipeline_demo.yaml").read_text())
    train = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    config.update(data={"path": str(data), "rev": "", "benchmark": "s4"}, train={**train, "max_steps": max_steps})
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _fresh_store(folder: Path) -> None:
    folder.mkdir(parents=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MOCA_ARTIFACT_ROOT"] = str(folder / "artifacts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--max-steps", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from moca.data.synth import SynthConfig, synthesize
    from moca.steps.config import load_pipeline_config
    from moca.steps.inprocess import run_pipeline
    from moca.steps.kubeflow import run_local

    with tempfile.TemporaryDirectory(prefix="moca-bench-pipeline-") as tmp:
        work = Path(tmp)
        data = synthesize(work / "data", SynthConfig(benchmark="s4", videos=args.videos, seed=0))
        config_path = _config(work, data, args.max_steps)

        _fresh_store(work / "direct-store")
        started = time.perf_counter()
        done = run_pipeline(load_pipeline_config(config_path), work / "direct", "bench-direct")
        direct_s = time.perf_counter() - started
        step_s = {name: result.manifest["timings_s"]["total"] for name, result in done.items()}

        _fresh_store(work / "kfp-store")
        started = time.perf_counter()
        run_local(config_path, work / "kfp", run_name="bench-kfp")
        kfp_s = time.perf_counter() - started

    tasks = 9  # start-run, ingest, validate, mine-pairs, train, infer, evaluate, register + the gate's evaluation
    print(f"data: {args.videos} synthetic S4 videos; training max_steps={args.max_steps}; cores: {os.cpu_count()}")
    print("step time inside the direct run (s): " + ", ".join(f"{k} {v:.1f}" for k, v in step_s.items()))
    print(f"steps called directly (one process):  {direct_s:7.1f} s")
    print(f"same pipeline through kfp.local:       {kfp_s:7.1f} s")
    print(f"ratio kfp.local / direct:              {kfp_s / direct_s:7.2f}x")
    print(f"overhead: {kfp_s - direct_s:.1f} s in all, ~{(kfp_s - direct_s) / tasks:.1f} s per task")


if __name__ == "__main__":
    main()
