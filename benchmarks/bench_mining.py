"""Pair mining at 17k (S4 train), 100k and 1M frames: exact blocked kNN, the naive full matrix, and faiss IVF.

    .venv/bin/python benchmarks/bench_mining.py [--sizes 17000 100000] [--threads 1] [--ivf-probes 8]
    .venv/bin/python benchmarks/bench_mining.py --sizes 1000000 --methods ivf --threads 2   # ~25 min, 6 GB RAM

Descriptors: `moca.mining.synthetic.clustered_descriptors` (768-d, 5 frames per video, hierarchical clusters like
DINO CLS descriptors; uniform noise would make recall meaningless). Each measurement runs in a fresh subprocess
with pinned threads; its memory figure is the peak RSS growth while mining (VmHWM reset once the descriptors
exist), i.e. what the mining itself added; wall and CPU seconds are both printed (on shared cores the CPU time
over the thread count is what the run would take on idle cores, roughly). Methods:
  exact   `mine_neighbours`, blocked (`--chunk-size` rows against all frames), run up to `--exact-max` frames
  naive   the same code with one block holding the whole N x N matrix, where 9 N^2 bytes fit `--naive-max-gb`
  ivf     `mine_neighbours_ivf` (faiss IVF float16 positives, sampled-median negatives), `--ivf-chunk-size` rows
Recall@k of ivf positives: against exact mining over all anchors where exact ran, else against an exact
brute-force search for `--recall-anchors` random anchors. Numbers from a shared machine are noisy: compare
ratios within one run, and read the load average printed before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import add_thread_option, load_average, pin_threads, print_load

K = NEGATIVES = 10


def _status_bytes(key: str) -> int:
    return int(next(line for line in open("/proc/self/status") if line.startswith(key)).split()[1]) * 1024


def _reset_peak() -> int:
    """Reset VmHWM to the current RSS (Linux clear_refs 5) and return that RSS."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return _status_bytes("VmRSS")


def _exact_positives(x, videos, anchors, k: int):
    """Brute force: the k most similar other-video frames of each anchor, 128 anchors at a time."""
    import numpy as np
    import torch

    descriptors, codes = torch.from_numpy(x), torch.from_numpy(videos)
    found = []
    for start in range(0, len(anchors), 128):
        rows = torch.from_numpy(anchors[start : start + 128])
        similarity = descriptors[rows] @ descriptors.T
        similarity[codes[None, :] == codes[rows][:, None]] = -torch.inf
        found.append(similarity.topk(k, dim=1).indices)
    return torch.cat(found).numpy().astype(np.int64)


def child(method: str, n: int, dim: int, chunk: int, probes: int, out: str) -> dict:
    """One measurement in this (fresh) process; writes the positives to `out` (.npy) for the recall."""
    import numpy as np

    from moca.mining.ivf import IvfSettings, mine_neighbours_ivf
    from moca.mining.knn import mine_neighbours
    from moca.mining.synthetic import clustered_descriptors

    x, videos = clustered_descriptors(n, dim, seed=0)
    if method == "recall-reference":  # exact positives of sampled anchors (not timed as mining)
        anchors = np.sort(np.random.default_rng(1).choice(n, size=min(n, chunk), replace=False))
        np.save(out, np.concatenate([anchors[:, None], _exact_positives(x, videos, anchors, K)], axis=1))
        return {}
    before = _reset_peak()
    start, cpu = time.perf_counter(), time.process_time()
    if method == "ivf":
        found = mine_neighbours_ivf(x, videos, K, NEGATIVES, 0, chunk, IvfSettings(probes=probes))
    else:
        found = mine_neighbours(x, videos, K, NEGATIVES, 0, chunk)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    extra = _status_bytes("VmHWM") - before
    np.save(out, found.positives)
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "extra_peak_mb": extra / 2**20}


def _run(args, method: str, n: int, chunk: int, work: Path) -> dict:
    out = work / f"{method}-{n}.npy"
    command = [sys.executable, __file__, "--child", method, str(n), str(args.dim), str(chunk), str(args.ivf_probes),
               str(out)]
    env = {**os.environ, "MOCA_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{method} at {n} frames failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for line in done.stderr.splitlines():  # the ivf path's per-phase timings
        if "ivf mining of" in line or "IVF index:" in line:
            print(f"          {line.strip()}", flush=True)
    return {**result, "method": method, "n": n, "chunk": chunk, "positives": out}


def _recall(args, n: int, ivf: dict, exact: dict | None, work: Path) -> tuple[float, str]:
    import numpy as np

    from moca.mining.ivf import recall_at_k

    found = np.load(ivf["positives"])
    if exact is not None:
        return recall_at_k(found, np.load(exact["positives"])), f"all {n} anchors vs exact mining"
    reference = np.load(_run(args, "recall-reference", n, args.recall_anchors, work)["positives"])
    anchors, positives = reference[:, 0], reference[:, 1:]
    return recall_at_k(found[anchors], positives), f"{len(anchors)} random anchors vs brute force"


def _row(result: dict, note: str = "") -> None:
    print(f"{result['n']:>9} {result['method']:>6} {result['chunk']:>6} {result['seconds']:>9.1f} "
          f"{result['cpu_seconds']:>9.1f} {result['extra_peak_mb']:>9.0f}  {note}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[17_000, 100_000])
    parser.add_argument("--methods", nargs="+", default=["exact", "naive", "ivf"], choices=["exact", "naive", "ivf"])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--ivf-chunk-size", type=int, default=1024)
    parser.add_argument("--ivf-probes", type=int, default=8)
    parser.add_argument("--exact-max", type=int, default=100_000, help="largest N mined exactly (time grows N^2)")
    parser.add_argument("--naive-max-gb", type=float, default=6.0)
    parser.add_argument("--recall-anchors", type=int, default=2000)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    add_thread_option(parser)
    args = parser.parse_args()
    if args.child:
        method, n, dim, chunk, probes, out = args.child
        logging.basicConfig(level=logging.INFO, format="%(message)s")  # on stderr, which the parent reads
        pin_threads(int(os.environ["MOCA_NUM_THREADS"]))
        print(json.dumps(child(method, int(n), int(dim), int(chunk), int(probes), out)))
        return
    pin_threads(args.threads)
    print_load("before")
    print(f"{'frames':>9} {'method':>6} {'chunk':>6} {'seconds':>9} {'CPU s':>9} {'extra MB':>9}  note")
    with tempfile.TemporaryDirectory(prefix="moca-bench-mining-") as tmp:
        work = Path(tmp)
        for n in sorted(args.sizes):
            exact = None
            if "exact" in args.methods and n <= args.exact_max:
                exact = _run(args, "exact", n, args.chunk_size, work)
                _row(exact, f"load {load_average()}")
            if "naive" in args.methods and exact and 9 * n * n <= args.naive_max_gb * 2**30:
                naive = _run(args, "naive", n, n, work)
                _row(naive, f"one {n} x {n} block; naive/exact: time "
                            f"{naive['seconds'] / exact['seconds']:.2f}x, memory "
                            f"{naive['extra_peak_mb'] / max(exact['extra_peak_mb'], 1):.1f}x")
            if "ivf" in args.methods:
                ivf = _run(args, "ivf", n, args.ivf_chunk_size, work)
                recall, how = _recall(args, n, ivf, exact, work)
                speed = f", {exact['seconds'] / ivf['seconds']:.1f}x faster than exact" if exact else ""
                _row(ivf, f"probes {args.ivf_probes}: recall@{K} {recall:.4f} ({how}){speed}; load {load_average()}")
    print_load("after")


if __name__ == "__main__":
    main()
