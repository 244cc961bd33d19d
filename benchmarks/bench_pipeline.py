"""What kfp.local costs: the same pipeline config run in one process (moca.steps.inprocess), then through kfp.local.

    python benchmarks/bench_pipeline.py [--videos 12] [--max-steps 2] [--repeats 2] [--threads 1]

Both runs use tiny synthetic S4 data, the demo pipeline config (tiny random-init models, SAM point prompts) with a
short training, and their own temporary MLflow store. The direct run is the naive reference: kfp.local starts a
fresh interpreter per task (the 9 tasks of a passing run: start-run, ingest, validate, mine-pairs, train, infer,
evaluate, register and the exit handler finish-run; counted from the run folder), each importing what its step
uses (MLflow in all, torch in most, GE in one) again, and copies artifacts between tasks (bench_imports.py says
how much of each task is imports). The two sides alternate (direct first, then kfp.local first); threads are
pinned for both (kfp.local tasks inherit OMP_NUM_THREADS). On shared cores read the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import yaml
from harness import ab_times, add_thread_option, pin_threads, print_load

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
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds (direct, kfp / kfp, direct)")
    add_thread_option(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pin_threads(args.threads)  # exported as OMP_NUM_THREADS too, so kfp.local's task processes get it
    print_load("before")
    from moca.data.synth import SynthConfig, synthesize
    from moca.steps.config import load_pipeline_config
    from moca.steps.inprocess import run_pipeline
    from moca.steps.kubeflow import run_local

    with tempfile.TemporaryDirectory(prefix="moca-bench-pipeline-") as tmp:
        work = Path(tmp)
        data = synthesize(work / "data", SynthConfig(benchmark="s4", videos=args.videos, seed=0))
        config_path = _config(work, data, args.max_steps)
        runs = iter(range(1_000))
        step_s: dict[str, float] = {}
        tasks: list[str] = []

        def direct() -> None:
            run = next(runs)
            _fresh_store(work / f"store-{run}")
            done = run_pipeline(load_pipeline_config(config_path), work / f"direct-{run}", f"bench-direct-{run}")
            step_s.update({name: result.manifest["timings_s"]["total"] for name, result in done.items()})

        def kfp_local() -> None:
            run = next(runs)
            _fresh_store(work / f"store-{run}")
            folder = run_local(config_path, work / f"kfp-{run}", run_name=f"bench-kfp-{run}")
            tasks[:] = sorted(p.name for p in folder.iterdir() if p.is_dir())  # one folder per task that ran

        # Warm-up: one untimed direct run, so that this process's own imports (torch, MLflow, GE, kfp) and
        # first-use caches count for neither side; kfp.local's tasks are fresh interpreters, which is its cost.
        start = time.perf_counter()
        direct()
        warmup_s = time.perf_counter() - start
        times = ab_times({"direct": direct, "kfp.local": kfp_local}, repeats=args.repeats, warmup=0)

    overhead = times.median("kfp.local") - times.median("direct")
    print(f"data: {args.videos} synthetic S4 videos; training max_steps={args.max_steps}")
    print("step time inside the direct run (s): " + ", ".join(f"{k} {v:.1f}" for k, v in step_s.items()))
    print(f"steps called directly (one process): {times.median('direct'):7.1f} s  (runs {times.spread('direct')} s; "
          f"the warm-up run, imports included: {warmup_s:.1f} s)")
    print(f"same pipeline through kfp.local:      {times.median('kfp.local'):7.1f} s  "
          f"(runs {times.spread('kfp.local')} s)")
    rounds = times.round_ratios("kfp.local", "direct")
    print(f"ratio kfp.local / direct:             {times.ratio('kfp.local', 'direct'):7.2f}x  (per round "
          f"{', '.join(f'{r:.2f}x' for r in rounds)})")
    print(f"overhead: {overhead:.1f} s in all, ~{overhead / len(tasks):.1f} s per task over {len(tasks)} tasks "
          f"({', '.join(tasks)})")
    print_load("after")


if __name__ == "__main__":
    main()
