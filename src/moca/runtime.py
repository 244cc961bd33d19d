"""The process entry hook: every entry point calls `setup_process()` first (the CLI's main, each Kubeflow component
body, each Prefect task, each torchrun rank through the CLI), so every moca process starts configured the same way.
"""

from __future__ import annotations

import atexit
import gc
import logging
import sys

from moca.threads import configure_threads

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # pods, CI, files: one greppable line per event
TTY_FORMAT = "%(levelname)s %(name)s: %(message)s"


def setup_process() -> None:
    """Configure this process for moca work; safe to call more than once."""
    _configure_logging()
    # Before torch is imported: the thread count is exported as OMP_NUM_THREADS & co., which torch reads at start.
    configure_threads()
    _skip_final_collection()


def _skip_final_collection() -> None:
    """At exit, CPython's last garbage collections walk every object still alive, most of them made by importing
    torch, MLflow and Great Expectations: 1.5-4 s per process on shared cores, paid again by every Kubeflow task
    (docs/benchmarks/pipeline.md). Freezing them first skips that walk; the process is ending, and Python never
    promised finalizers for objects alive at exit. Registered once however often this is called."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def _configure_logging() -> None:
    """INFO lines on stderr: short on a terminal; timestamped plain lines otherwise (pod logs, CI, files), where
    `moca.progress` also logs lines instead of redrawing a bar. Handlers someone else installed (Prefect's,
    pytest's) are kept."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(TTY_FORMAT if sys.stderr.isatty() else LOG_FORMAT))
        root.addHandler(handler)
    logging.captureWarnings(True)  # library warnings become log lines too
    root.setLevel(logging.INFO)
    # Libraries that are chatty at INFO: keep their warnings only.
    for name in ("great_expectations", "alembic", "urllib3", "botocore", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
