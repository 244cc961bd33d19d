"""What each kfp.local task spends importing: the demo pipeline run once through kfp.local with `-X importtime` in
every task process, imports summed per task and grouped by top-level package; then the floor a task cannot avoid.

    python benchmarks/bench_imports.py [--videos 12] [--max-steps 2] [--threads 1] [--repeats 3] [--floor-only]

A task is a fresh interpreter: `python -m kfp.dsl.executor_main` loads the component's source (KFP embeds the
function), the body imports `moca` and runs the step, which imports what it uses (torch, a backbone, MLflow,
Great Expectations) when it runs. `PYTHONPROFILEIMPORTTIME=1` in the environment, which kfp.local's task processes
inherit, makes each of them report every import; what a task prints comes back through kfp.local on stdout. The
profiler itself slows imports a little: this says where the time goes, `bench_pipeline.py` gives the ratio.

The floor: fresh interpreters timing what every task needs whatever moca does (the interpreter, kfp's executor,
MLflow and its store) and what some tasks really use (torch, Great Expectations), medians of `--repeats`.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import logging
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_pipeline import _config, _fresh_store
from harness import add_thread_option, pin_threads, print_load

IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")  # top level only: no indent before the name
EXECUTOR_DONE = re.compile(r"\[KFP Executor \S+ (\S+) INFO\]: Wrote executor output")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# What every task pays (interpreter, executor, tracking) and what only the tasks using it pay.
FLOOR = {
    "interpreter (python -c pass)": "pass",
    "kfp executor (kfp.dsl.executor_main)": "import kfp.dsl.executor_main",
    "MLflow (import mlflow)": "import mlflow",
    "MLflow + its SQLite store opened": "import mlflow, os, sys; mlflow.MlflowClient(sys.argv[1]).search_experiments()",
    "torch": "import torch",
    "Great Expectations": "import great_expectations",
}


def _clock(line: str) -> float:
    hours, minutes, seconds = line.split(" ", 1)[0].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def per_task(captured: str) -> tuple[dict[str, collections.Counter], dict[str, float], dict[str, float]]:
    """From kfp.local's stdout: task -> {top-level package: seconds importing} (the top-level lines of
    `-X importtime`, cumulative), task -> wall seconds (its "Executing task" to "finished" log lines) and task ->
    seconds its process took to exit (from the executor's last line, its outputs written, to "finished")."""
    imports: dict[str, collections.Counter] = {}
    walls: dict[str, float] = {}
    exits: dict[str, float] = {}
    current = None
    for line in (ANSI.sub("", raw) for raw in captured.splitlines()):
        if "- Executing task '" in line:
            current = line.split("'")[1]
            imports[current], walls[current] = collections.Counter(), -_clock(line)
        elif current is not None and (match := EXECUTOR_DONE.search(line)):
            exits[current] = -_clock(match.group(1).replace(",", "."))
        elif current is not None and f"Task '{current}' finished with status" in line:
            walls[current] += _clock(line)
            exits[current] = exits.get(current, 0.0) + _clock(line)
        elif current is not None and (match := IMPORT_LINE.search(line)):
            imports[current][match.group(2).split(".")[0]] += int(match.group(1)) / 1e6
    return imports, walls, exits


def run_profiled(work: Path, videos: int, max_steps: int) -> tuple[dict[str, collections.Counter], ...]:
    from moca.data.synth import SynthConfig, synthesize
    from moca.steps.kubeflow import run_local

    data = synthesize(work / "data", SynthConfig(benchmark="s4", videos=videos, seed=0))
    config_path = _config(work, data, max_steps)
    _fresh_store(work / "store")
    captured = io.StringIO()  # kfp.local logs to stdout, and relays each task's output there
    os.environ["PYTHONPROFILEIMPORTTIME"] = "1"
    try:
        with contextlib.redirect_stdout(captured):
            run_local(config_path, work / "kfp", run_name="bench-imports")
    finally:
        del os.environ["PYTHONPROFILEIMPORTTIME"]
    return per_task(captured.getvalue())


def floor(repeats: int, store_uri: str) -> dict[str, float]:
    """Median wall seconds of a fresh interpreter running each FLOOR snippet."""
    seconds = {}
    env = {**os.environ, "_KFP_RUNTIME": "true"}  # as kfp.local's task command sets it: kfp skips its client
    # Untimed: creates the store's tables when it is new (every task opens an existing one).
    subprocess.run(
        [sys.executable, "-c", FLOOR["MLflow + its SQLite store opened"], store_uri],
        check=True,
        env=env,
        capture_output=True,
    )
    for label, code in FLOOR.items():
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code, store_uri], check=True, capture_output=True, env=env)
            runs.append(time.perf_counter() - start)
        seconds[label] = statistics.median(runs)
    return seconds


def report_run(work: Path, videos: int, max_steps: int) -> None:
    nan = math.nan
    start = time.perf_counter()
    tasks, walls, exits = run_profiled(work, videos, max_steps)
    print(f"kfp.local run with -X importtime: {time.perf_counter() - start:.1f} s")
    print(f"{'task':12s} {'wall s':>7s} {'imports s':>9s} {'exit s':>6s}  top imports (s, cumulative, by package)")
    for name, packages in tasks.items():
        top = ", ".join(f"{package} {s:.2f}" for package, s in packages.most_common(5))
        print(
            f"{name:12s} {walls.get(name, nan):7.1f} {sum(packages.values()):9.2f} {exits.get(name, nan):6.1f}  {top}"
        )
    importing = sum(sum(packages.values()) for packages in tasks.values())
    print(
        f"all tasks: {sum(walls.values()):.1f} s wall, {importing:.1f} s importing, {sum(exits.values()):.1f} s exiting"
    )
    print_load("after the run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--max-steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="fresh interpreters per floor item")
    parser.add_argument("--floor-only", action="store_true", help="skip the profiled pipeline run")
    add_thread_option(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pin_threads(args.threads)
    print_load("before")
    with tempfile.TemporaryDirectory(prefix="moca-bench-imports-") as tmp:
        work = Path(tmp)
        if not args.floor_only:
            report_run(work, args.videos, args.max_steps)
        else:
            _fresh_store(work / "store")
        for label, seconds in floor(args.repeats, os.environ["MLFLOW_TRACKING_URI"]).items():
            print(f"floor: {label:40s} {seconds:5.2f} s (fresh interpreter, median of {args.repeats})")
    print_load("after")


if __name__ == "__main__":
    main()
