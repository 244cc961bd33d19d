"""What one training step eats: an anchor frame with its audio, P of its mined positive frames and K negatives.

`read_pairs` turns the miner's `pairs.parquet` (one row per anchor/positive, with the anchor's negatives) into one
entry per anchor. An epoch visits every anchor once; which of its top-K positives and which negatives it gets are
drawn from (seed, epoch, anchor index) alone, and so is the visiting order (`plan_epoch`), so any process, any
world size and any resumed run agrees on what step t of epoch e contains.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from moca.errors import DataError


class FrameStore(Protocol):
    """Frames by key: the RGB image (3, 224, 224) and the audio input of its time window (C, 1, 128, 204)."""

    def image(self, key: str) -> torch.Tensor: ...

    def audio(self, key: str) -> torch.Tensor: ...


@dataclass(frozen=True)
class AnchorPairs:
    anchor: str
    positives: tuple[str, ...]  # best first
    negatives: tuple[str, ...]


PAIR_COLUMNS = ("anchor_key", "positive_key", "rank")
NEGATIVE_COLUMNS = ("anchor_key", "negative_key", "draw")


def _read_table(path: Path, columns: tuple[str, ...]) -> Any:
    import pandas as pd

    try:
        table = pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise DataError(path, "not found (write it with `moca mine-pairs`)") from exc
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types for a damaged file
        raise DataError(path, f"not a readable Parquet file ({exc})") from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; has {list(table.columns)}")
    if table.empty:
        raise DataError(path, "no rows")
    return table


def read_pairs(path: str | Path) -> list[AnchorPairs]:
    """One entry per anchor, in the file's anchor order, from `moca mine-pairs` output: `pairs.parquet` and the
    `negatives.parquet` beside it (one row per anchor/positive and per anchor/negative)."""
    path = Path(path)
    pairs = _read_table(path, PAIR_COLUMNS)
    negatives_path = path.with_name("negatives.parquet")
    negatives = _read_table(negatives_path, NEGATIVE_COLUMNS).sort_values("draw", kind="stable")
    negatives_of = {a: tuple(map(str, rows["negative_key"])) for a, rows in negatives.groupby("anchor_key", sort=False)}
    entries = []
    for anchor, rows in pairs.sort_values("rank", kind="stable").groupby("anchor_key", sort=False):
        if anchor not in negatives_of:
            raise DataError(negatives_path, f"anchor {anchor!r} has no negatives")
        entries.append(AnchorPairs(str(anchor), tuple(map(str, rows["positive_key"])), negatives_of[anchor]))
    order = {k: i for i, k in enumerate(dict.fromkeys(pairs["anchor_key"]))}
    return sorted(entries, key=lambda e: order[e.anchor])


class PairDataset(torch.utils.data.Dataset):
    """Anchors with `positives` mined positives and `negatives` negatives each (distinct while the anchor has
    enough, else drawn with repetition). With `load_inputs=False` only keys come back (features from the cache)."""

    def __init__(self, anchors: Sequence[AnchorPairs], store: FrameStore, seed: int, load_inputs: bool = True,
                 positives: int = 1, negatives: int = 1):
        if positives < 1 or negatives < 1:
            raise ValueError(f"positives ({positives}) and negatives ({negatives}) per anchor must be >= 1")
        empty = [e.anchor for e in anchors if not e.positives or not e.negatives]
        if empty:
            raise ValueError(f"{len(empty)} anchor(s) without positives or negatives, e.g. {empty[0]!r}")
        self.anchors = list(anchors)
        self.store = store
        self.seed = seed
        self.load_inputs = load_inputs
        self.positives, self.negatives = positives, negatives
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.anchors)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def frame_keys(self) -> list[str]:
        """Every frame a step can show the visual trunk (anchors, positives, negatives)."""
        keys = {e.anchor for e in self.anchors}
        for e in self.anchors:
            keys.update(e.positives)
            keys.update(e.negatives)
        return sorted(keys)

    def anchor_keys(self) -> list[str]:
        return [e.anchor for e in self.anchors]

    def sample(self, index: int) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        """(anchor, positives, negatives) keys of anchor `index` in the current epoch."""
        entry = self.anchors[index]
        # A string seed is hashed with SHA-512 by `random`, so it is the same in every process (unlike hash()).
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")

        def draw(pool: tuple[str, ...], count: int) -> tuple[str, ...]:
            return tuple(rng.sample(pool, count) if len(pool) >= count else rng.choices(pool, k=count))

        return entry.anchor, draw(entry.positives, self.positives), draw(entry.negatives, self.negatives)

    def __getitem__(self, index: int) -> dict[str, Any]:
        anchor, positives, negatives = self.sample(index)
        item: dict[str, Any] = {"anchor_key": anchor, "positive_keys": positives, "negative_keys": negatives}
        if self.load_inputs:
            item["anchor_image"] = self.store.image(anchor)
            item["positive_images"] = torch.stack([self.store.image(k) for k in positives])
            item["negative_images"] = torch.stack([self.store.image(k) for k in negatives])
            item["audio"] = self.store.audio(anchor)
        return item


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def plan_epoch(
    n: int, seed: int, epoch: int, batch_size: int, world_size: int, rank: int, grad_accum: int
) -> list[list[list[int]]]:
    """Micro-batches of this rank for every optimiser step of the epoch: [step][micro][sample index].

    Step t's global batch is order[t*B:(t+1)*B] whatever the world size; rank r takes the r-th contiguous slice,
    cut into `grad_accum` micro-batches. The tail that does not fill a global batch is dropped, so every step
    averages exactly B samples (what makes N ranks equal one process).
    """
    order = epoch_order(n, seed, epoch)
    share = batch_size // world_size
    micro = share // grad_accum
    plan = []
    for t in range(n // batch_size):
        mine = order[t * batch_size + rank * share : t * batch_size + (rank + 1) * share]
        plan.append([mine[i : i + micro] for i in range(0, share, micro)])
    return plan
