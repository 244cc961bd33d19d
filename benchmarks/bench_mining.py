"""Pair mining at S4-train scale (17,000 frames) and 100,000 frames: blocked kNN vs the naive full N x N matrix.

Each measurement runs in a fresh subprocess so that its peak RSS (ru_maxrss) is its own; the figure reported is
the peak minus the RSS once the descriptors exist, i.e. what the mining itself added. The naive reference is the
same code with one block holding the whole matrix; at 100,000 frames it would need ~40 GB per N x N float32
matrix (several live at once), so it is estimated from the 17,000-frame run (memory scales with N^2), not run.

    .venv/bin/python benchmarks/bench_mining.py [--sizes 17000 100000] [--chunk-size 256] [--dim 768]

Numbers from a shared 2-core machine are noisy: compare ratios, not absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

NAIVE_LIMIT_BYTES = 8 << 30  # run the naive reference only where its N x N matrices plausibly fit


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(n: int, dim: int, chunk_size: int) -> dict:
    """One run in this process: random L2-normalised descriptors, 5 frames per video, k = negatives = 10."""
    import numpy as np

    from moca.mining.knn import mine_neighbours

    rng = np.random.default_rng(0)
    descriptors = rng.standard_normal((n, dim), dtype=np.float32)
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    videos = np.arange(n) // 5
    before = _rss_mb()
    start = time.perf_counter()
    mine_neighbours(descriptors, videos, k=10, negatives=10, seed=0, chunk_size=chunk_size)
    return {"n": n, "chunk_size": chunk_size, "seconds": time.perf_counter() - start,
            "extra_peak_mb": _rss_mb() - before}


def _in_child(n: int, dim: int, chunk_size: int) -> dict:
    command = [sys.executable, __file__, "--child", str(n), str(dim), str(chunk_size)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[17_000, 100_000])
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--child", type=int, nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    naive_reference = None
    print(f"{'frames':>8} {'method':>8} {'seconds':>9} {'extra peak MB':>14}  note")
    for n in sorted(args.sizes):
        blocked = _in_child(n, args.dim, args.chunk_size)
        print(f"{n:>8} {'blocked':>8} {blocked['seconds']:>9.1f} {blocked['extra_peak_mb']:>14.0f}  "
              f"chunk {args.chunk_size} rows")
        if 4 * n * n <= NAIVE_LIMIT_BYTES:
            naive = _in_child(n, args.dim, n)
            naive_reference = naive
            note = "measured"
        elif naive_reference is not None:
            scale = (n / naive_reference["n"]) ** 2  # both time and the N x N buffers grow with N^2
            naive = {"seconds": naive_reference["seconds"] * scale,
                     "extra_peak_mb": naive_reference["extra_peak_mb"] * scale}
            note = f"ESTIMATED from {naive_reference['n']} frames x (N ratio)^2, not run"
        else:
            print(f"{n:>8} {'naive':>8} {'-':>9} {4 * n * n / 2**20:>14.0f}  one N x N float32 matrix, not run")
            continue
        print(f"{n:>8} {'naive':>8} {naive['seconds']:>9.1f} {naive['extra_peak_mb']:>14.0f}  {note}")
        print(f"{n:>8} {'ratio':>8} {naive['seconds'] / blocked['seconds']:>8.2f}x "
              f"{naive['extra_peak_mb'] / max(blocked['extra_peak_mb'], 1):>13.1f}x  naive / blocked")


if __name__ == "__main__":
    main()
