"""Manifest speed: `build_manifest` (each file decoded once) against a naive pass with the training readers.

The naive reference reads every frame through `moca.data.readers` (RGB conversion, mask decoding) and re-reads the
clip's wav for every frame, as a per-frame loop written without care would. Times are CPU seconds.
Run: `.venv/bin/python benchmarks/bench_manifest.py [VIDEOS] [--threads 1]`.
Numbers on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness import add_thread_option, pin_threads

from moca.data.layout import list_videos
from moca.data.readers import read_image, read_mask, read_wav
from moca.data.synth import SynthConfig, synthesize
from moca.validation import build_manifest


def naive(root: Path, benchmark: str) -> int:
    frames = 0
    for video in list_videos(root, benchmark):
        for frame in video.frames:
            read_image(frame.image)
            if frame.mask is not None:
                read_mask(frame.mask, benchmark)
            read_wav(video.audio)
            frames += 1
    return frames


def best_of(fn, repeats: int = 3) -> float:
    """Best CPU time of `repeats` runs: both passes are single-threaded, and CPU time is far less disturbed than
    wall time by other jobs on a shared machine."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=int, nargs="?", default=60)
    add_thread_option(parser)
    args = parser.parse_args()
    pin_threads(args.threads)
    videos = args.videos
    with tempfile.TemporaryDirectory() as tmp:
        for benchmark in ("s4", "ms3", "avss"):
            root = synthesize(Path(tmp) / benchmark, SynthConfig(benchmark=benchmark, videos=videos, seed=0))
            frames = sum(len(v.frames) for v in list_videos(root, benchmark))
            ours = best_of(lambda root=root, benchmark=benchmark: build_manifest(root, benchmark))
            ref = best_of(lambda root=root, benchmark=benchmark: naive(root, benchmark))
            print(f"{benchmark}: {frames} frames; build_manifest {ours:.2f} CPU s ({frames / ours:.0f} frames/s), "
                  f"naive readers {ref:.2f} CPU s ({frames / ref:.0f} frames/s); ratio naive/ours {ref / ours:.2f}x")


if __name__ == "__main__":
    main()
