"""Audio tests work on tensors of a few thousand samples: one torch thread is faster than two fighting for the
shared cores (with other processes busy, 2 threads made one clip 50x slower)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
