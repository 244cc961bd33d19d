"""The official-code restatement in benchmarks/bench_metrics.py serves as the test oracle."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_metrics.py"


@pytest.fixture(scope="session")
def reference() -> ModuleType:
    sys.path.insert(0, str(BENCH.parent))  # its sibling `harness`, as when run as a script
    spec = importlib.util.spec_from_file_location("bench_metrics", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
