"""Cosine kNN pair mining over frame descriptors, in row blocks so memory stays linear in the number of frames.

For every anchor frame (method.md item 2):
  positives: the K most similar frames from *other* videos (same-video frames are near-duplicates, not pairs);
  negatives: sampled without replacement from the least similar half of the other videos' frames (similarity at
             most the anchor's lower median over them), never one of its positives.

Memory: anchors are processed `chunk_size` rows at a time against all N frames, so the largest tensors are
(chunk_size, N), never (N, N): 256 x 100,000 floats is 100 MB where the full matrix would be 40 GB. Rows are
complete, which keeps everything exact: the per-anchor median needs the whole row, and torch.topk over a full
row gives the same positives as the naive matrix would.

Negatives are chunk-independent: anchor i's random draws depend only on (seed, i), through a counter-based hash,
so any chunk size gives identical output (tested against one block holding the whole matrix).
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


def _first_valid(candidates: torch.Tensor, valid: torch.Tensor, count: int) -> torch.Tensor:
    """Per row, the first `count` candidates where `valid` holds, in order; -1 where a row runs out."""
    width = candidates.shape[1]
    order = torch.where(valid, torch.arange(width), width).sort(dim=1).values[:, :count]
    chosen = candidates.gather(1, order.clamp_max(width - 1))
    return torch.where(order < width, chosen, -1)


def _sample_negatives(eligible: torch.Tensor, rows: np.ndarray, count: int, seed: int) -> torch.Tensor:
    """`count` distinct eligible columns per row, uniformly at random; (rows, count) int64, -1 padded.

    Rejection sampling: draw 4*count+32 hashed indices per row and keep the first distinct eligible ones. About
    half the columns are eligible, so a row comes up short with negligible probability; such rows (and rows with
    fewer eligible columns than `count`) are finished exactly with a generator seeded by (seed, row).
    """
    draws = torch.from_numpy(hashed_draws(seed, rows, 4 * count + 32, eligible.shape[1]))
    earlier_duplicate = ((draws[:, :, None] == draws[:, None, :]) & torch.ones(draws.shape[1], draws.shape[1],
                                                                                   dtype=torch.bool).tril(-1)).any(-1)
    chosen = _first_valid(draws, eligible.gather(1, draws) & ~earlier_duplicate, count)
    want = eligible.sum(dim=1).clamp_max(count)
    for r in torch.nonzero((chosen >= 0).sum(dim=1) < want).flatten().tolist():
        pool = torch.nonzero(eligible[r]).flatten().numpy()
        picked = np.random.default_rng([seed, int(rows[r])]).choice(pool, size=int(want[r]), replace=False)
        chosen[r] = -1
        chosen[r, : len(picked)] = torch.from_numpy(picked)
    return chosen


def _lower_median_other(similarity: torch.Tensor, same_video: torch.Tensor, n_other: np.ndarray) -> torch.Tensor:
    """Per row, the lower median of the similarities to other videos' frames; NaN for a row with none.

    Same-video entries are set to +inf so the wanted value sits at rank ceil(n_other/2)-1 of the row, and
    numpy's introselect (np.partition) finds it; it is about ten times faster than torch.kthvalue on CPU here.
    `n_other` (rows,) counts each row's other-video frames. Rows of one block have only as many distinct ranks
    as there are distinct video lengths, so one partition call with those few ranks serves the whole block.
    """
    ranks = (n_other + 1) // 2 - 1
    values = similarity.masked_fill(same_video, torch.inf).numpy()
    median = np.full(len(ranks), np.nan, dtype=np.float32)
    has_other = ranks >= 0
    if has_other.any():
        values.partition(np.unique(ranks[has_other]), axis=1)
        median[has_other] = values[has_other, ranks[has_other]]
    return torch.from_numpy(median)


def _mine_block(
    block: torch.Tensor,
    start: int,
    descriptors: torch.Tensor,
    videos: torch.Tensor,
    video_sizes: torch.Tensor,
    k: int,
    negatives: int,
    seed: int,
) -> tuple[torch.Tensor, ...]:
    stop = start + block.shape[0]
    similarity = block @ descriptors.T  # (rows, N): the only large tensors are this and its masks
    same_video = videos[start:stop, None] == videos[None, :]
    # NaN medians compare False, so a row without other videos gets no eligible negative.
    n_other = len(videos) - video_sizes[videos[start:stop]].numpy()
    eligible = ~same_video & (similarity <= _lower_median_other(similarity, same_video, n_other)[:, None])
    # In place: only same-video entries change, and those are never negatives, whose scores are read below.
    scores, positives = similarity.masked_fill_(same_video, -torch.inf).topk(min(k, len(videos)), dim=1)
    has_positive = torch.isfinite(scores)
    positives = torch.where(has_positive, positives, -1)
    scores = torch.where(has_positive, scores, torch.nan)
    # A padded (-1) positive is redirected to the row's first positive, or column 0 when it has none: in that
    # case no column is eligible anyway, so clearing one changes nothing.
    eligible.scatter_(1, torch.where(has_positive, positives, positives[:, :1].clamp_min(0)), False)
    sampled = _sample_negatives(eligible, np.arange(start, stop), negatives, seed)
    negative_scores = torch.where(sampled >= 0, similarity.gather(1, sampled.clamp_min(0)), torch.nan)
    return positives, scores, sampled, negative_scores


def mine_neighbours(
    descriptors: np.ndarray | torch.Tensor,
    videos: np.ndarray,
    k: int = 10,
    negatives: int = 10,
    seed: int = 0,
    chunk_size: int = 256,
) -> Neighbours:
    """Positives and negatives for every row of L2-normalised `descriptors` (N, D); `videos` (N,) labels each row
    with its video (any hashable values). See the module doc for the rules and the memory bound."""
    if k < 1 or negatives < 0 or chunk_size < 1:
        raise ValueError(f"need k >= 1, negatives >= 0, chunk_size >= 1; got {k}, {negatives}, {chunk_size}")
    descriptors = torch.as_tensor(descriptors, dtype=torch.float32)
    if descriptors.dim() != 2 or descriptors.shape[0] != len(videos):
        raise ValueError(f"descriptors {tuple(descriptors.shape)} do not match {len(videos)} video labels")
    video_codes = torch.from_numpy(np.unique(np.asarray(videos), return_inverse=True)[1].astype(np.int64))
    video_sizes = torch.bincount(video_codes)
    starts = range(0, len(video_codes), chunk_size)
    parts = [
        _mine_block(descriptors[s : s + chunk_size], s, descriptors, video_codes, video_sizes, k, negatives, seed)
        for s in progress(starts, desc="mining chunks", total=len(starts))
    ]
    positives, scores, sampled, negative_scores = (torch.cat(column).numpy() for column in zip(*parts))
    return Neighbours(positives, scores, sampled, negative_scores)
