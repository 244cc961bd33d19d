"""Progress reporting: a live bar on a terminal, plain periodic log lines otherwise (CI, Kubeflow pods)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("moca")


def progress(items: Iterable[T], desc: str, total: int | None = None, log_every_s: float = 10.0) -> Iterator[T]:
    """Yield `items`, showing progress as a bar on a TTY or as a log line every `log_every_s` seconds."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        yield from tqdm(items, desc=desc, total=total, dynamic_ncols=True)
        return
    start = last = time.monotonic()
    count = 0
    for count, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= log_every_s:
            last = now
            of = f"/{total}" if total else ""
            log.info("%s: %d%s (%.1f/s)", desc, count, of, count / max(now - start, 1e-9))
    log.info("%s: done, %d items in %.1f s", desc, count, time.monotonic() - start)
