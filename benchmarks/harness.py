"""What every benchmark shares: pinned threads, the machine's load, and A/B timing that warms up and alternates.

    from harness import ab_times, pin_threads, print_load
    threads = pin_threads(args.threads)        # prints "threads: 1 (MOCA_NUM_THREADS=1)"
    times = ab_times({"ours": fast, "reference": slow}, repeats=5)
    print(times.ratio("reference", "ours"))

On a shared machine the two sides of a comparison must see the same contention: each round runs both, in
alternating order (A B, then B A, ...), after one untimed warm-up of each; the ratio of medians is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from moca.threads import choose_threads, configure_threads


def add_thread_option(parser: argparse.ArgumentParser, default: int = 1) -> None:
    parser.add_argument("--threads", type=int, default=default,
                        help=f"compute threads, pinned for both sides (default {default}: the shared build machine)")


def pin_threads(threads: int) -> int:
    """Pin torch/OpenMP/BLAS threads to `threads` through moca.threads (as MOCA_NUM_THREADS would) and print it."""
    os.environ["MOCA_NUM_THREADS"] = str(threads)
    chosen = configure_threads()
    import torch  # after configure_threads: torch starts its pool with OMP_NUM_THREADS

    torch.set_num_threads(chosen)
    print(f"threads: {chosen} ({choose_threads().reason}); torch intra-op {torch.get_num_threads()}")
    return chosen


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def print_load(when: str) -> None:
    print(f"load average {when} (1/5/15 min, {os.cpu_count()} CPUs): {load_average()}")


@dataclass
class Times:
    """Wall and CPU seconds per side, one entry per timed round."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def median(self, side: str, clock: str = "wall") -> float:
        return statistics.median(getattr(self, clock)[side])

    def ratio(self, slow: str, fast: str, clock: str = "wall") -> float:
        return self.median(slow, clock) / self.median(fast, clock)

    def spread(self, side: str, clock: str = "wall") -> str:
        values = getattr(self, clock)[side]
        return f"{min(values):.3g}-{max(values):.3g}"

    def round_ratios(self, slow: str, fast: str, clock: str = "wall") -> list[float]:
        """The ratio within each round: both sides ran back to back, so these share the machine's load."""
        return [s / f for s, f in zip(getattr(self, clock)[slow], getattr(self, clock)[fast])]


def ab_times(sides: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> Times:
    """Time each side `repeats` times, alternating their order every round, after `warmup` untimed runs each."""
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            sides[name]()
    times = Times({n: [] for n in names}, {n: [] for n in names})
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            sides[name]()
            times.wall[name].append(time.perf_counter() - wall)
            times.cpu[name].append(time.process_time() - cpu)
    return times
