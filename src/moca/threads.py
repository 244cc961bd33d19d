"""How many threads a moca process computes with: the CPUs it may actually use, or `MOCA_NUM_THREADS`.

In a container `os.cpu_count()` is the node's core count, not the pod's share: torch then starts one intra-op
thread per node core, and on a 2-CPU quota the threads mostly wait for each other (on the shared 2-core build
machine one thread beat two in every A/B: issue 14). So the count comes, in this order, from
  1. `MOCA_NUM_THREADS` (k8s sets it from the container's CPU limit through the downward API),
  2. the cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us / cpu.cfs_period_us`, the tightest along the
     process's cgroup path), rounded down,
  3. the CPUs the process may run on (`os.sched_getaffinity`), else `os.cpu_count()`,
taking the smallest of 2 and 3. Under torchrun, the `LOCAL_WORLD_SIZE` processes of one node share those CPUs, so
each takes its share. At least 1 always.

`configure_threads()` exports the count to the OpenMP/BLAS variables (for torch, numpy and faiss imported later,
and for child processes) and, where torch is already imported, calls `torch.set_num_threads` directly. It never
imports torch itself, so a CLI's `--help` stays fast; torch reads `OMP_NUM_THREADS` when it starts its pool.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from moca.errors import ConfigError

log = logging.getLogger(__name__)

ENV_VAR = "MOCA_NUM_THREADS"  # the CPUs this container (or machine) gives moca, shared by torchrun's local ranks
# Read by OpenMP (torch's intra-op pool, faiss), MKL, OpenBLAS (numpy) and numexpr when they initialise.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")

_interop_set = False


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str  # one line for the log: where the number came from


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """controller ("" for cgroup v2) -> the process's cgroup path, from /proc/self/cgroup lines `id:ctrls:path`."""
    paths: dict[str, str] = {}
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def _ancestors(mount: Path, cgroup_path: str) -> list[Path]:
    """The process's cgroup folder and its parents up to the mount; inside a container the mount is often the
    container's own cgroup, so the listed path may not exist below it and only the mount itself is read."""
    parts = [p for p in cgroup_path.split("/") if p]
    return [mount.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_quota(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max":
        return None
    return int(quota) / int(period or 100_000)


def _v1_quota(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    if quota is None or period is None or int(quota) <= 0 or int(period) <= 0:
        return None
    return int(quota) / int(period)


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> tuple[float, str] | None:
    """The tightest CPU quota (in CPUs) along this process's cgroup, and the file it came from; None if unlimited."""
    paths = _cgroup_paths(proc_cgroup)
    candidates = [(folder, _v2_quota) for folder in _ancestors(root, paths.get("", "/"))]
    v1_mount = next((root / name for name in ("cpu,cpuacct", "cpu", "cpuacct,cpu") if (root / name).is_dir()), None)
    if v1_mount is not None:
        v1_path = paths.get("cpu", paths.get("cpuacct", "/"))
        candidates += [(folder, _v1_quota) for folder in _ancestors(v1_mount, v1_path)]
    found = []
    for folder, read_quota in candidates:
        try:
            quota = read_quota(folder)
        except ValueError:  # a malformed file: ignore it rather than fail a run over thread counts
            log.warning("%s: unreadable CPU quota, ignored", folder)
            continue
        if quota is not None:
            found.append((quota, str(folder / ("cpu.max" if read_quota is _v2_quota else "cpu.cfs_quota_us"))))
    return min(found) if found else None


def usable_cpus() -> tuple[int, str]:
    """CPUs this process may be scheduled on (affinity mask), or the machine's count where that is unknown."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)), "CPU affinity"
    return os.cpu_count() or 1, "os.cpu_count()"


def choose_threads(
    environ: Mapping[str, str] = os.environ, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> ThreadChoice:
    """The thread count and why (see the module doc for the order); a bad `MOCA_NUM_THREADS` is a ConfigError."""
    cpus = _container_cpus(environ, root, proc_cgroup)
    local_ranks = environ.get("LOCAL_WORLD_SIZE", "1")
    if local_ranks.isdigit() and int(local_ranks) > 1:
        share = max(1, cpus.threads // int(local_ranks))
        return ThreadChoice(share, f"{cpus.reason}, shared by LOCAL_WORLD_SIZE={local_ranks} processes")
    return cpus


def _container_cpus(environ: Mapping[str, str], root: Path, proc_cgroup: Path) -> ThreadChoice:
    explicit = environ.get(ENV_VAR, "").strip()
    if explicit:
        try:
            threads = int(explicit)  # the downward API gives whole CPUs (limits.cpu, divisor 1, rounded up)
        except ValueError:
            raise ConfigError(f"{ENV_VAR}: {explicit!r} is not a number of threads") from None
        if threads < 1:
            raise ConfigError(f"{ENV_VAR}: must be >= 1, got {explicit!r}")
        return ThreadChoice(threads, f"{ENV_VAR}={explicit}")
    cpus, cpus_from = usable_cpus()
    quota = cgroup_cpu_quota(root, proc_cgroup)
    if quota is not None and math.floor(quota[0]) < cpus:
        return ThreadChoice(max(1, math.floor(quota[0])), f"cgroup CPU quota {quota[0]:g} CPUs ({quota[1]})")
    return ThreadChoice(max(1, cpus), f"{cpus_from}: {cpus} CPUs, no tighter cgroup quota")


def configure_threads(
    environ: MutableMapping[str, str] = os.environ, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> int:
    """Choose the thread count, export it to `environ` (the OpenMP/BLAS variables; `MOCA_NUM_THREADS` is left as it
    is, so a child process derives the same count), apply it to torch and faiss where they are already imported,
    log it, and return it.

    Call it first thing in every entry point (before heavy imports, so BLAS libraries read the variables).
    Calling it again is harmless: torch's inter-op pool, which can only be sized before it first runs, is sized
    once and left alone afterwards.
    """
    choice = choose_threads(environ, root, proc_cgroup)
    for name in THREAD_VARIABLES:
        environ[name] = str(choice.threads)
    applied = []
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(choice.threads)
        _set_interop_once(torch, choice.threads)
        applied.append("torch")
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(choice.threads)
        applied.append("faiss")
    # DEBUG: every CLI command passes here, and a usage error must stay one line on stderr.
    log.debug("compute threads: %d (%s)%s", choice.threads, choice.reason,
              f"; applied to {', '.join(applied)}" if applied else "; exported for libraries imported later")
    return choice.threads


def _set_interop_once(torch, threads: int) -> None:
    global _interop_set
    if _interop_set:
        return
    _interop_set = True
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # inter-op work already ran in this process: its pool keeps its size
        log.debug("torch inter-op threads already in use; left at %d", torch.get_num_interop_threads())
