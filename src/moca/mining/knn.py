"""Exact cosine kNN pair mining over frame descriptors, in row blocks through preallocated, reused buffers.

For every anchor frame (method.md item 2):
  positives: the K most similar frames from *other* videos (same-video frames are near-duplicates, not pairs);
  negatives: sampled without replacement from the least similar half of the other videos' frames (similarity at
             most the anchor's lower median over them), never one of its positives.

Memory is flat by construction: anchors are processed `chunk_size` rows at a time against all N frames, and every
block reuses three buffers allocated once: the (chunk, N) float32 similarities, a (chunk, N) float32 working copy
for the median, and a (chunk, N) bool eligibility mask; about 9 x chunk x N bytes (230 MB at chunk 256 and 100k
frames; the full matrix would be 40 GB). Same-video entries are addressed by index (block row, column), never by
an N-wide mask, so a block allocates only per-row outputs and those index pairs (chunk x longest video).
Allocating the large block tensors anew each block fragmented glibc's heap (+1.2-7 GB at 100k frames, issue 14).
Rows are complete, which keeps everything exact: the per-anchor median needs the whole row, and torch.topk over
a full row gives the same positives as the naive matrix would.

Negatives are chunk-independent: anchor i's random draws depend only on (seed, i), through a counter-based hash,
so any chunk size gives identical output (tested against one block holding the whole matrix, and against golden
output of the earlier allocate-per-block version).

`moca.mining.ivf` is the approximate path for ~1M frames; it shares the video index and the negative sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from moca.progress import progress

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Neighbours:
    """Indices into the descriptor rows; -1 (index) / NaN (score) pad rows with fewer candidates than asked."""

    positives: np.ndarray  # (N, K) int64, most similar first
    positive_scores: np.ndarray  # (N, K) float32 cosine similarity
    negatives: np.ndarray  # (N, M) int64, in draw order
    negative_scores: np.ndarray  # (N, M) float32


class VideoIndex:
    """Which frames share a video: each frame's video code, the videos' sizes, and each video's frames (CSR)."""

    def __init__(self, videos: np.ndarray):
        self.codes = np.unique(np.asarray(videos), return_inverse=True)[1].reshape(-1).astype(np.int64)
        self.sizes = np.bincount(self.codes)
        self._frames = np.argsort(self.codes, kind="stable")
        self._offsets = np.concatenate([[0], np.cumsum(self.sizes)])

    def __len__(self) -> int:
        return len(self.codes)

    def others(self, start: int, stop: int) -> np.ndarray:
        """(rows,) how many frames of other videos each anchor in start..stop has."""
        return len(self.codes) - self.sizes[self.codes[start:stop]]

    def same_video(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(block row, column) of every same-video entry of anchors start..stop, the anchor itself included."""
        counts = self.sizes[self.codes[start:stop]]
        rows = np.repeat(np.arange(stop - start), counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return rows, self._frames[np.repeat(self._offsets[self.codes[start:stop]], counts) + within]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast, well-mixed bijection on uint64 (numpy arrays wrap on overflow by design)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_draws(seed: int, rows: np.ndarray, count: int, n: int) -> np.ndarray:
    """`count` pseudo-random indices in [0, n) per row, a pure function of (seed, row, draw number)."""
    row_keys = _splitmix64(rows.astype(np.uint64) ^ _splitmix64(np.array([seed], dtype=np.uint64)))
    counters = np.arange(count, dtype=np.uint64)
    return (_splitmix64(row_keys[:, None] + counters[None, :] * _GOLDEN) % np.uint64(n)).astype(np.int64)


def draw_count(count: int) -> int:
    """Hashed draws per row for `count` negatives: about half of all columns are eligible, so a row comes up short
    with negligible probability (such rows are finished exactly, see `sample_negatives`)."""
    return 4 * count + 32


def _first_valid(candidates: torch.Tensor, valid: torch.Tensor, count: int) -> torch.Tensor:
    """Per row, the first `count` candidates where `valid` holds, in order; -1 where a row runs out."""
    width = candidates.shape[1]
    order = torch.where(valid, torch.arange(width, device=valid.device), width).sort(dim=1).values[:, :count]
    chosen = candidates.gather(1, order.clamp_max(width - 1))
    return torch.where(order < width, chosen, -1)


def _repeats(draws: torch.Tensor) -> torch.Tensor:
    """(rows, D) bool: the draw repeats an earlier draw of its row. Through a stable sort per row, so no
    (rows, D, D) comparison is ever allocated."""
    ordered, order = draws.sort(dim=1, stable=True)
    repeated = torch.zeros_like(draws, dtype=torch.bool)
    repeated.scatter_(1, order[:, 1:], ordered[:, 1:] == ordered[:, :-1])  # equal neighbours: the later one
    return repeated


def sample_negatives(
    draws: torch.Tensor, draw_eligible: torch.Tensor, rows: np.ndarray, count: int, seed: int, want: torch.Tensor,
    pool_of_row,
) -> torch.Tensor:
    """`count` distinct eligible columns per row, uniformly at random; (rows, count) int64, -1 padded.

    Rejection sampling: keep the first distinct eligible ones among the row's hashed `draws` (`draw_eligible`
    says which are eligible). `want` (rows,) is how many the row should get (its eligible count, capped at
    `count`); a row that comes up short is finished exactly by a generator seeded by (seed, row), over
    `pool_of_row(r)`, the numpy array of that block row's eligible columns (as many as it holds, up to `want`).
    """
    chosen = _first_valid(draws, draw_eligible & ~_repeats(draws), count)
    for r in torch.nonzero((chosen >= 0).sum(dim=1) < want).flatten().tolist():
        pool = pool_of_row(r)
        size = min(int(want[r]), len(pool))
        picked = np.random.default_rng([seed, int(rows[r])]).choice(pool, size=size, replace=False)
        chosen[r] = -1
        chosen[r, : len(picked)] = torch.from_numpy(picked).to(chosen.device)
    return chosen


class _BlockBuffers:
    """The three (chunk, N) tensors every block reuses; allocated once per mining run."""

    def __init__(self, chunk: int, n: int, device: torch.device):
        self.similarity = torch.empty(chunk, n, device=device)
        self.scratch = torch.empty(chunk, n, device=device)  # the median's working copy (partitioned in place)
        self.eligible = torch.empty(chunk, n, dtype=torch.bool, device=device)

    def rows(self, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # leading rows of a contiguous buffer: contiguous views, as a freshly allocated tensor would be
        return self.similarity[:count], self.scratch[:count], self.eligible[:count]


def lower_medians(values: torch.Tensor, counts: np.ndarray) -> torch.Tensor:
    """Per row of `values` (rows, W), whose excluded entries hold +inf, the lower median of its `counts[row]`
    included entries, i.e. the value at rank ceil(count/2)-1; NaN for a row with none. Reorders `values` in place.

    On CPU numpy's introselect (np.partition) finds it, about ten times faster than torch.kthvalue; on a GPU
    torch.kthvalue does. Rows of one block have only as many distinct ranks as there are distinct video lengths,
    so one call per distinct rank serves the whole block.
    """
    ranks = (counts + 1) // 2 - 1
    median = np.full(len(ranks), np.nan, dtype=np.float32)
    has_other = ranks >= 0
    if not has_other.any():
        return torch.from_numpy(median).to(values.device)
    if values.device.type == "cpu":
        array = values.numpy()
        array.partition(np.unique(ranks[has_other]), axis=1)
        median[has_other] = array[has_other, ranks[has_other]]
        return torch.from_numpy(median)
    return _kthvalue_medians(values, ranks, torch.from_numpy(median).to(values.device))


def _kthvalue_medians(values: torch.Tensor, ranks: np.ndarray, median: torch.Tensor) -> torch.Tensor:
    """`lower_medians` for tensors off the CPU: torch.kthvalue per distinct rank (ranks < 0 keep `median`'s NaN)."""
    for rank in np.unique(ranks[ranks >= 0]).tolist():
        selected = torch.from_numpy(np.nonzero(ranks == rank)[0]).to(values.device)
        median[selected] = values.index_select(0, selected).kthvalue(rank + 1, dim=1).values
    return median


def _lower_median_other(
    similarity: torch.Tensor, same: tuple[torch.Tensor, torch.Tensor], n_other: np.ndarray, scratch: torch.Tensor
) -> torch.Tensor:
    """Per row, the lower median of the similarities to other videos' frames (NaN for a row with none), from a
    copy in `scratch` whose same-video entries are +inf."""
    scratch.copy_(similarity)
    scratch[same] = torch.inf
    return lower_medians(scratch, n_other)


def _row_counts(mask: torch.Tensor) -> torch.Tensor:
    """True entries per row. On CPU through numpy: torch's sum/count_nonzero of a bool (chunk, N) block first
    makes an int64 copy of it (200 MB at 256 x 100k), every block."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.count_nonzero(mask.numpy(), axis=1))
    return mask.sum(dim=1)


def _mine_block(
    start: int, stop: int, descriptors: torch.Tensor, index: VideoIndex, buffers: _BlockBuffers,
    k: int, negatives: int, seed: int,
) -> tuple[torch.Tensor, ...]:
    similarity, scratch, eligible = buffers.rows(stop - start)
    torch.mm(descriptors[start:stop], descriptors.T, out=similarity)
    same = tuple(torch.from_numpy(a).to(similarity.device) for a in index.same_video(start, stop))
    # NaN medians compare False, so a row without other videos gets no eligible negative.
    median = _lower_median_other(similarity, same, index.others(start, stop), scratch)
    torch.le(similarity, median[:, None], out=eligible)
    eligible[same] = False
    # In place: only same-video entries change, and those are never negatives, whose scores are read below.
    similarity[same] = -torch.inf
    scores, positives = similarity.topk(min(k, len(index)), dim=1)
    has_positive = torch.isfinite(scores)
    positives = torch.where(has_positive, positives, -1)
    scores = torch.where(has_positive, scores, torch.nan)
    # A padded (-1) positive is redirected to the row's first positive, or column 0 when it has none: in that
    # case no column is eligible anyway, so clearing one changes nothing.
    eligible.scatter_(1, torch.where(has_positive, positives, positives[:, :1].clamp_min(0)), False)
    rows = np.arange(start, stop)
    draws = torch.from_numpy(hashed_draws(seed, rows, draw_count(negatives), len(index))).to(eligible.device)
    want = _row_counts(eligible).clamp_max(negatives)
    sampled = sample_negatives(draws, eligible.gather(1, draws), rows, negatives, seed, want,
                               lambda r: torch.nonzero(eligible[r]).flatten().cpu().numpy())
    negative_scores = torch.where(sampled >= 0, similarity.gather(1, sampled.clamp_min(0)), torch.nan)
    return positives, scores, sampled, negative_scores


def check_inputs(descriptors, videos: np.ndarray, k: int, negatives: int, chunk_size: int) -> torch.Tensor:
    """The descriptors as a float32 tensor, after checking the arguments every mining method shares."""
    if k < 1 or negatives < 0 or chunk_size < 1:
        raise ValueError(f"need k >= 1, negatives >= 0, chunk_size >= 1; got {k}, {negatives}, {chunk_size}")
    descriptors = torch.as_tensor(descriptors, dtype=torch.float32)
    if descriptors.dim() != 2 or descriptors.shape[0] != len(videos):
        raise ValueError(f"descriptors {tuple(descriptors.shape)} do not match {len(videos)} video labels")
    return descriptors


class Results:
    """The output arrays, allocated once and filled block by block: nothing a block allocates outlives it, so
    the heap cannot fragment around retained per-block pieces."""

    def __init__(self, n: int, k: int, negatives: int):
        self.found = Neighbours(np.empty((n, k), np.int64), np.empty((n, k), np.float32),
                                np.empty((n, negatives), np.int64), np.empty((n, negatives), np.float32))

    def put(self, start: int, parts: tuple[torch.Tensor, ...]) -> None:
        for array, part in zip((self.found.positives, self.found.positive_scores, self.found.negatives,
                                self.found.negative_scores), parts):
            array[start : start + len(part)] = part.cpu().numpy()


def mine_neighbours(
    descriptors: np.ndarray | torch.Tensor,
    videos: np.ndarray,
    k: int = 10,
    negatives: int = 10,
    seed: int = 0,
    chunk_size: int = 256,
    device: str = "cpu",
) -> Neighbours:
    """Positives and negatives for every row of L2-normalised `descriptors` (N, D); `videos` (N,) labels each row
    with its video (any hashable values). See the module doc for the rules and the memory bound. On a GPU
    (`device="cuda"`) the descriptors and the block buffers live in its memory."""
    descriptors = check_inputs(descriptors, videos, k, negatives, chunk_size).to(device)
    index = VideoIndex(videos)
    n = len(index)
    buffers = _BlockBuffers(min(chunk_size, n), n, descriptors.device)
    results = Results(n, min(k, n), negatives)
    starts = range(0, n, chunk_size)
    for start in progress(starts, desc="mining chunks", total=len(starts)):
        results.put(start, _mine_block(start, min(start + chunk_size, n), descriptors, index, buffers, k, negatives,
                                       seed))
    return results.found
