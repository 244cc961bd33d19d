"""Approximate pair mining for ~1M frames (VGGSound scale): faiss IVF positives, negatives against a sampled median.

Exact mining (`moca.mining.knn`) costs N^2 x D: 1M frames is 770 TFLOP, days on a few cores. Here
  positives: an inverted-file index (faiss IndexIVFScalarQuantizer, inner product on the L2-normalised
             descriptors = cosine): a coarse k-means quantiser with `lists` centroids, trained on a sample;
             vectors stored as float16 (1.5 GB at 1M x 768, half of float32; scanned 1.6x faster than 8-bit
             codes here, and 4-bit PQ fast-scan lost most of the neighbours on clustered descriptors).
             Each anchor's `probes` nearest lists are scanned for `candidates` neighbours, which are re-scored
             exactly from the float32 descriptors; same-video frames are dropped and the best K kept.
  negatives: the exact rule ("at most the anchor's lower median similarity over other videos' frames") with the
             median estimated from `quantile_sample` frames drawn once for all anchors (its standard error is
             about 0.5 / sqrt(sample) in quantile, 1.6 % at 1,024). Candidates are the same hashed draws as the
             exact path; their similarities are computed exactly, one dot product each.
Recall@K against exact mining is measured by benchmarks/bench_mining.py (docs/benchmarks/mining.md).

Memory beyond the descriptors: the codes (2 N x D bytes), the lists' ids (8 N bytes) and per-block buffers;
about 2 GB at 1M x 768, flat in the number of blocks. faiss is imported only when this path runs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from moca.mining.knn import (
    Neighbours,
    Results,
    VideoIndex,
    check_inputs,
    draw_count,
    hashed_draws,
    lower_medians,
    sample_negatives,
)
from moca.progress import progress

log = logging.getLogger(__name__)

TRAIN_POINTS_PER_LIST = 40  # faiss warns below 39 training points per centroid
GATHER_COLUMNS = 8  # candidate columns gathered at once when re-scoring: (rows, 8, D) floats


@dataclass(frozen=True)
class IvfSettings:
    lists: int = 0  # coarse centroids; 0 = about 2 sqrt(N)
    probes: int = 8  # lists scanned per query
    candidates: int = 0  # neighbours fetched per query before exact re-scoring; 0 = 2K + longest video - 1
    quantile_sample: int = 1024  # frames the negatives' median is estimated from

    def __post_init__(self) -> None:
        for name in ("lists", "candidates"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0 (0 = automatic), got {getattr(self, name)}")
        for name in ("probes", "quantile_sample"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")


class _Phases:
    """Wall seconds per phase of a run, logged at its end: where a 1M-frame run spends its time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] += time.perf_counter() - start

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:  # an optional dependency at run time: exact mining needs none of it
        raise ImportError("mining method 'ivf' needs faiss-cpu (pip install faiss-cpu==1.15.1)") from exc
    return faiss


def build_index(descriptors: np.ndarray, settings: IvfSettings, seed: int, phases: _Phases | None = None):
    """Train the coarse quantiser on a sample, then add every descriptor as float16 codes (in blocks)."""
    phases = phases or _Phases()
    faiss = _import_faiss()
    n, dim = descriptors.shape
    lists = settings.lists or max(1, min(round(2 * math.sqrt(n)), n // TRAIN_POINTS_PER_LIST))
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, lists, faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    train = np.random.default_rng(seed).choice(n, size=min(n, TRAIN_POINTS_PER_LIST * lists), replace=False)
    with phases("train"):
        index.train(descriptors[np.sort(train)])
    with phases("add"):
        for start in range(0, n, 65_536):
            index.add(descriptors[start : start + 65_536])
    index.nprobe = min(settings.probes, lists)  # faiss's Python wrapper keeps the quantiser alive with the index
    log.info("IVF index: %d lists, %d probes, %d training points", lists, index.nprobe, len(train))
    return index


class _RowDots:
    """Exact similarities of block rows with the descriptors named per row, through one reused gather buffer.

    Gathering (rows, C, D) at once would allocate hundreds of MB per block (and page-fault them in every time);
    `GATHER_COLUMNS` columns at a time into a buffer allocated once keeps it to rows x 8 x D floats.
    """

    def __init__(self, descriptors: torch.Tensor, rows: int):
        self.descriptors = descriptors
        self.buffer = torch.empty(rows * GATHER_COLUMNS, descriptors.shape[1])

    def __call__(self, block: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """(rows, C): block row r against descriptors[columns[r, c]]."""
        rows, parts = len(block), []
        for c in range(0, columns.shape[1], GATHER_COLUMNS):
            part = columns[:, c : c + GATHER_COLUMNS]
            gathered = self.buffer[: part.numel()]
            torch.index_select(self.descriptors, 0, part.reshape(-1), out=gathered)
            parts.append(torch.einsum("rd,rcd->rc", block, gathered.view(rows, part.shape[1], -1)))
        return torch.cat(parts, dim=1)


def _positives(
    block: torch.Tensor, found: np.ndarray, row_dots: _RowDots, codes: torch.Tensor, rows: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-score the index's candidates exactly, drop padding and same-video frames, keep the best k (-1/NaN pad)."""
    candidates = torch.from_numpy(found)
    safe = candidates.clamp_min(0)
    valid = (candidates >= 0) & (codes[safe] != codes[rows][:, None])
    scores, order = torch.where(valid, row_dots(block, safe), -torch.inf).topk(min(k, candidates.shape[1]), dim=1)
    kept = torch.isfinite(scores)
    positives = torch.where(kept, candidates.gather(1, order), -1)
    scores = torch.where(kept, scores, torch.nan)
    pad = k - scores.shape[1]  # fewer candidates than k: a tiny index
    return (torch.nn.functional.pad(positives, (0, pad), value=-1),
            torch.nn.functional.pad(scores, (0, pad), value=torch.nan))


def _sampled_medians(block: torch.Tensor, sample: torch.Tensor, sample_codes: torch.Tensor,
                     row_codes: torch.Tensor) -> torch.Tensor:
    """Per anchor, the lower median of its similarity to the sampled frames of other videos (NaN if none)."""
    other = sample_codes[None, :] != row_codes[:, None]
    values = torch.where(other, block @ sample.T, torch.inf)
    return lower_medians(values, other.sum(dim=1).numpy())


def _negatives(
    block: torch.Tensor, start: int, row_dots: _RowDots, codes: torch.Tensor, median: torch.Tensor,
    positives: torch.Tensor, index: VideoIndex, count: int, seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact path's hashed draws and first-eligible rule, with draws scored lazily: the first `2 count + 12`
    draws hold `count` eligible ones for almost every row (about half of all frames are eligible); only rows
    short of them score the rest. A row short after all draws is finished exactly over its whole row."""
    rows = np.arange(start, start + len(block))
    row_codes = codes[start : start + len(block)]
    draws = torch.from_numpy(hashed_draws(seed, rows, draw_count(count), len(index)))
    draw_scores = torch.full(draws.shape, torch.nan)  # NaN: not scored, hence not eligible

    def score(selected: torch.Tensor, columns: slice) -> None:
        draw_scores[selected, columns] = row_dots(block[selected], draws[selected, columns])

    def eligible_of(selected: torch.Tensor) -> torch.Tensor:
        drawn = draws[selected]
        return ((draw_scores[selected] <= median[selected, None]) & (codes[drawn] != row_codes[selected, None])
                & ~(drawn[:, :, None] == positives[selected, None, :]).any(-1))

    everyone, first = torch.arange(len(block)), min(2 * count + 12, draws.shape[1])
    score(everyone, slice(0, first))
    eligible = eligible_of(everyone)
    short = torch.nonzero(eligible.sum(dim=1) < count).flatten()
    if len(short) and first < draws.shape[1]:
        score(short, slice(first, None))
        eligible[short] = eligible_of(short)
    want = torch.from_numpy(np.where(index.others(start, start + len(block)) > 0, count, 0))

    def pool_of_row(r: int) -> np.ndarray:
        row_scores = row_dots.descriptors @ block[r]
        ok = (row_scores <= median[r]) & (codes != row_codes[r])
        ok[positives[r][positives[r] >= 0]] = False
        return torch.nonzero(ok).flatten().numpy()

    sampled = sample_negatives(draws, eligible, rows, count, seed, want, pool_of_row)
    # the chosen ones were scored as draws; a row finished over its whole row is scored here
    drawn = draws[:, None, :] == sampled[:, :, None]
    scores = draw_scores.gather(1, drawn.int().argmax(-1))
    missing = (sampled >= 0) & ~drawn.any(-1)
    for r in torch.nonzero(missing.any(dim=1)).flatten().tolist():
        scores[r] = row_dots(block[r : r + 1], sampled[r : r + 1].clamp_min(0))[0]
    return sampled, torch.where(sampled >= 0, scores, torch.nan)


def mine_neighbours_ivf(
    descriptors: np.ndarray | torch.Tensor,
    videos: np.ndarray,
    k: int = 10,
    negatives: int = 10,
    seed: int = 0,
    chunk_size: int = 1024,
    settings: IvfSettings = IvfSettings(),
) -> Neighbours:
    """Like `moca.mining.knn.mine_neighbours` (same outputs and rules), approximately; see the module doc."""
    descriptors = check_inputs(descriptors, videos, k, negatives, chunk_size).contiguous()
    array = descriptors.numpy()
    index = VideoIndex(videos)
    codes = torch.from_numpy(index.codes)
    n = len(index)
    phases = _Phases()
    faiss_index = build_index(array, settings, seed, phases)
    width = min(n, settings.candidates or 2 * k + int(index.sizes.max()) - 1)
    sample = torch.from_numpy(np.sort(np.random.default_rng([seed, n]).choice(
        n, size=min(n, settings.quantile_sample), replace=False)))
    sample_descriptors = descriptors[sample]
    row_dots = _RowDots(descriptors, min(chunk_size, n))
    results = Results(n, k, negatives)
    starts = range(0, n, chunk_size)
    for start in progress(starts, desc="mining chunks (ivf)", total=len(starts)):
        stop = min(start + chunk_size, n)
        block, rows = descriptors[start:stop], torch.arange(start, stop)
        with phases("search"):
            _, found = faiss_index.search(array[start:stop], width)
        with phases("re-score positives"):
            positives, scores = _positives(block, found, row_dots, codes, rows, k)
        with phases("sampled medians"):
            median = _sampled_medians(block, sample_descriptors, codes[sample], codes[start:stop])
        with phases("negatives"):
            sampled, negative_scores = _negatives(block, start, row_dots, codes, median, positives, index,
                                                  negatives, seed)
        results.put(start, (positives, scores, sampled, negative_scores))
    log.info("ivf mining of %d frames: %s", n, phases)
    return results.found


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact positives (N, K) that `found` (N, K) also lists for the same anchor (-1 = none)."""
    hits = ((found[:, :, None] == exact[:, None, :]) & (exact[:, None, :] >= 0)).any(1)
    return float(hits.sum() / max((exact >= 0).sum(), 1))
