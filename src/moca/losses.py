"""PMA (pixel matching aggregation) and the MoCA training losses (method.md items 5 and 6).

Image similarity is built from pixels, so it tolerates objects that moved between the two frames:

    S_pq      = sim(x_p, y_q)                  pixel p of x against pixel q of y ("ncc" or "ssd")
    best_p    = max_q S_pq                     each pixel of x takes its best match anywhere in y
    PMA(x, y) = mean of best_p over the top `top_ratio` pixels of x by audio relevance <x_p, e_a>

Because y enters only through a max over its pixels, PMA does not change when y's pixels are permuted or the
object is translated. The symmetric form averages PMA(x, y) and PMA(y, x).

Similarity forms (both are "higher is more alike"):
  ncc: normalised cross-correlation of two feature vectors. Each pixel's D-vector is centred on its own mean
       over the D channels and scaled to unit length; S_pq is the dot product of the two, i.e. the Pearson
       correlation of the channels of x_p and y_q, in [-1, 1]. A constant (or zero) vector has no direction:
       it is mapped to the zero vector, so its similarity is 0 and its gradient stays finite.
  ssd: negative sum of squared differences, -||x_p - y_q||^2, computed as -(||x||^2 + ||y||^2 - 2 x.y) so the
       N x M matrix comes from one matmul instead of an N x M x D difference tensor (clamped at 0 against
       rounding). For L2-normalised features it lies in [-4, 0].

Shapes: feature maps are (B, N, D) or (B, h, w, D) (flattened to N = h*w); relevance maps (B, N) or (B, h, w).
Batch dimensions broadcast (B=1 against B=8), as torch.matmul does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from moca.errors import ConfigError

SIMILARITY_KINDS = ("ncc", "ssd")
LOSS_KINDS = ("margin", "infonce")
# Added under the square root when normalising for NCC: a zero vector gets norm ~1e-4 instead of 0, which keeps
# the gradient finite, and changes unit-scale features by a relative 1e-8 only.
NCC_EPS = 1e-8


@dataclass
class LossConfig:
    kinds: tuple[str, ...] = ("ncc", "ssd")
    weights: tuple[float, ...] = (1.0, 1.0)  # one per kind, summed
    margin: float = 0.2
    top_ratio: float = 0.25  # fraction of the anchor's pixels, most audio-relevant first, that PMA averages over
    symmetric: bool = False
    loss: str = "margin"  # "margin" (triplet hinge) or "infonce"
    tau: float = 0.07  # InfoNCE temperature

    def __post_init__(self) -> None:
        self.kinds, self.weights = tuple(self.kinds), tuple(float(w) for w in self.weights)
        if not self.kinds or any(kind not in SIMILARITY_KINDS for kind in self.kinds):
            raise ConfigError(f"loss.kinds: {self.kinds} must be a non-empty subset of {SIMILARITY_KINDS}")
        if len(self.weights) != len(self.kinds):
            raise ConfigError(f"loss.weights: {len(self.weights)} weight(s) for {len(self.kinds)} kind(s)")
        if not 0 < self.top_ratio <= 1:
            raise ConfigError(f"loss.top_ratio: {self.top_ratio} must be in (0, 1]")
        if self.loss not in LOSS_KINDS:
            raise ConfigError(f"loss.loss: {self.loss!r} must be one of {LOSS_KINDS}")
        if self.tau <= 0:
            raise ConfigError(f"loss.tau: {self.tau} must be > 0")


def _pixels(features: torch.Tensor) -> torch.Tensor:
    """(..., h, w, D) maps or (..., N, D) pixel lists -> (B, N, D)."""
    if features.dim() == 4:
        return features.flatten(1, 2)
    if features.dim() == 3:
        return features
    raise ValueError(f"expected (B, N, D) or (B, h, w, D) features, got shape {tuple(features.shape)}")


def _relevance(relevance: torch.Tensor) -> torch.Tensor:
    """(B, h, w) or (B, N) -> (B, N)."""
    if relevance.dim() == 3:
        return relevance.flatten(1, 2)
    if relevance.dim() == 2:
        return relevance
    raise ValueError(f"expected (B, N) or (B, h, w) relevance, got shape {tuple(relevance.shape)}")


def _ncc_normalise(x: torch.Tensor) -> torch.Tensor:
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred * torch.rsqrt(centred.square().sum(dim=-1, keepdim=True) + NCC_EPS)


def _similarity(x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """(..., N, D) x (..., M, D) -> (..., N, M); leading dimensions broadcast."""
    if kind == "ncc":
        return _ncc_normalise(x) @ _ncc_normalise(y).transpose(-1, -2)
    if kind == "ssd":
        squared = x.square().sum(-1).unsqueeze(-1) + y.square().sum(-1).unsqueeze(-2) - 2 * x @ y.transpose(-1, -2)
        return -squared.clamp_min(0)
    raise ValueError(f"unknown similarity kind {kind!r}; expected one of {SIMILARITY_KINDS}")


def pixel_similarity(x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """S_pq for every pixel p of x and q of y: (B, N, D) x (B, M, D) -> (B, N, M). See the module doc for kinds."""
    return _similarity(_pixels(x), _pixels(y), kind)


def audio_relevance(dense: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
    """Audio-pixel map <f_p, e_a>: dense (B, N, D) or (B, h, w, D), audio (B, D) -> (B, N)."""
    return (_pixels(dense) @ audio_emb.unsqueeze(-1)).squeeze(-1)


def top_count(n_pixels: int, top_ratio: float) -> int:
    """How many pixels PMA averages over: ceil(top_ratio * N), at least one."""
    return max(1, math.ceil(top_ratio * n_pixels - 1e-9))  # the epsilon keeps 0.25 * 256 at 64, not 65


def _pma_one_way(x: torch.Tensor, y: torch.Tensor, relevance_x: torch.Tensor, top_ratio: float, kind: str):
    """(..., N, D), (..., M, D), (..., N) -> (...). Works for any broadcastable leading dimensions."""
    best = _similarity(x, y, kind).amax(dim=-1)  # (..., N); amax splits the gradient evenly between tied maxima
    relevance_x = relevance_x.expand(best.shape)
    # Which pixels count is a discrete choice: no gradient flows through the relevance ranking itself.
    top = relevance_x.detach().topk(top_count(best.shape[-1], top_ratio), dim=-1).indices
    return best.gather(-1, top).mean(dim=-1)


def pma(
    x: torch.Tensor,
    y: torch.Tensor,
    relevance_x: torch.Tensor,
    top_ratio: float,
    kind: str,
    symmetric: bool = False,
    relevance_y: torch.Tensor | None = None,
) -> torch.Tensor:
    """PMA score of x against y, one per batch item: (B,). `relevance_y` is needed only when `symmetric`."""
    x, y, relevance_x = _pixels(x), _pixels(y), _relevance(relevance_x)
    forward = _pma_one_way(x, y, relevance_x, top_ratio, kind)
    if not symmetric:
        return forward
    if relevance_y is None:
        raise ValueError("symmetric PMA needs relevance_y (the audio-pixel map of y)")
    return 0.5 * (forward + _pma_one_way(y, x, _relevance(relevance_y), top_ratio, kind))


def margin_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    relevance_anchor: torch.Tensor,
    config: LossConfig | None = None,
    relevance_positive: torch.Tensor | None = None,
    relevance_negative: torch.Tensor | None = None,
) -> torch.Tensor:
    """sum_kinds w_k * mean_batch max(0, m - PMA_k(a, p) + PMA_k(a, n)), a scalar.

    The relevance maps of p and n (computed with the *anchor's* audio) are needed only for symmetric PMA.
    """
    config = config or LossConfig()
    total = anchor.new_zeros(())
    for kind, weight in zip(config.kinds, config.weights):
        score_p = pma(anchor, positive, relevance_anchor, config.top_ratio, kind, config.symmetric, relevance_positive)
        score_n = pma(anchor, negative, relevance_anchor, config.top_ratio, kind, config.symmetric, relevance_negative)
        total = total + weight * F.relu(config.margin - score_p + score_n).mean()
    return total


def _candidate_scores(
    anchor: torch.Tensor,
    candidates: torch.Tensor,
    relevance_anchor: torch.Tensor,
    audio_anchor: torch.Tensor | None,
    config: LossConfig,
    kind: str,
) -> torch.Tensor:
    """PMA of every anchor against its C candidates: anchor (B, N, D), candidates (B or 1, C, M, D) -> (B, C).

    With a leading 1, candidates are shared by all anchors (the in-batch case) and broadcast, not copied.
    """
    a, rel_a = anchor.unsqueeze(1), relevance_anchor.unsqueeze(1)
    scores = _pma_one_way(a, candidates, rel_a, config.top_ratio, kind)
    if not config.symmetric:
        return scores
    if audio_anchor is None:
        raise ValueError("symmetric InfoNCE needs audio_anchor (B, D) to score the candidates' pixels")
    # Candidate pixels ranked by the *anchor's* audio, as for the margin loss: (B, C, M).
    relevance_candidates = (candidates @ audio_anchor[:, None, :, None]).squeeze(-1)
    backward = _pma_one_way(candidates, a, relevance_candidates, config.top_ratio, kind)
    return 0.5 * (scores + backward)


def info_nce(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor | None,
    relevance_anchor: torch.Tensor,
    config: LossConfig | None = None,
    in_batch: bool = True,
    audio_anchor: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE over PMA scores / tau: each anchor's positive against its mined negatives and, with `in_batch`,
    the other anchors' positives. Summed over kinds with their weights, averaged over the batch.

    anchor, positive: (B, N, D) or (B, h, w, D); negatives: (B, K, N, D) or (B, K, h, w, D) or None.
    `audio_anchor` (B, D) is needed only for symmetric PMA, to rank each candidate's pixels with the anchor's audio.
    """
    config = config or LossConfig()
    anchor, positive, relevance_anchor = _pixels(anchor), _pixels(positive), _relevance(relevance_anchor)
    if negatives is not None and negatives.dim() == 5:
        negatives = negatives.flatten(2, 3)
    batch = anchor.shape[0]
    use_in_batch = in_batch and batch > 1
    if negatives is None and not use_in_batch:
        raise ValueError("InfoNCE needs negatives: pass mined negatives or use in_batch with a batch of 2 or more")
    target = torch.zeros(batch, dtype=torch.long, device=anchor.device)  # column 0: the anchor's own positive
    off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=anchor.device)
    total = anchor.new_zeros(())
    for kind, weight in zip(config.kinds, config.weights):
        # Every anchor against every positive in the batch: the diagonal is its own, the rest are in-batch negatives.
        versus_positives = _candidate_scores(anchor, positive.unsqueeze(0), relevance_anchor, audio_anchor, config,
                                             kind)
        columns = [versus_positives.diagonal().unsqueeze(1)]
        if negatives is not None:
            columns.append(_candidate_scores(anchor, negatives, relevance_anchor, audio_anchor, config, kind))
        if use_in_batch:
            columns.append(versus_positives[off_diagonal].view(batch, batch - 1))
        logits = torch.cat(columns, dim=1) / config.tau
        total = total + weight * F.cross_entropy(logits, target)
    return total


def contrastive_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    audio_anchor: torch.Tensor,
    config: LossConfig | None = None,
) -> torch.Tensor:
    """The loss `config.loss` names, from dense features and the anchor's audio embedding (what training calls).

    anchor, positive: (B, N, D) or (B, h, w, D); negatives: (B, K, N, D) or (B, K, h, w, D), K mined negatives
    per anchor. The margin loss averages its hinge over the K negatives; InfoNCE adds in-batch negatives.
    """
    config = config or LossConfig()
    anchor, positive = _pixels(anchor), _pixels(positive)
    if negatives.dim() not in (4, 5):
        raise ValueError(f"negatives need a K axis: (B, K, N, D) or (B, K, h, w, D), got {tuple(negatives.shape)}")
    if negatives.dim() == 5:
        negatives = negatives.flatten(2, 3)
    relevance_anchor = audio_relevance(anchor, audio_anchor)
    if config.loss == "infonce":
        return info_nce(anchor, positive, negatives, relevance_anchor, config, audio_anchor=audio_anchor)

    def relevance(features: torch.Tensor) -> torch.Tensor | None:
        return audio_relevance(features, audio_anchor) if config.symmetric else None

    hinges = [
        margin_loss(anchor, positive, negatives[:, k], relevance_anchor, config, relevance(positive),
                    relevance(negatives[:, k]))
        for k in range(negatives.shape[1])
    ]
    return torch.stack(hinges).mean()
