"""PMA (pixel matching aggregation) and the MoCA training losses (method.md items 5 and 6).

Image similarity is built from pixels, so it tolerates objects that moved between the two frames:

    S_pq      = sim(x_p, y_q)                  pixel p of x against pixel q of y ("ncc" or "ssd")
    best_p    = max_q S_pq                     each pixel of x takes its best match anywhere in y
    PMA(x, y) = sum_p w_p best_p               w: audio-relevance weights over x's pixels, summing to 1

The weights come from the audio-pixel map H_p = <x_p, e_a> (`relevance`):
  softmax: w = softmax(H / relevance_tau), with gradient. Training then moves H itself: a pixel whose best match
           in the positive beats its best match in the negative gains relevance, one that does not loses it.
           This is what makes the loss reach the map inference reads (docs/training.md, "Does it learn?").
  topk:    w = 1/k on the top `top_ratio` pixels by H, a detached discrete choice: H gets no gradient (the first
           reconstruction; measured not to teach localisation, kept as an option).
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

Losses, per anchor a with its P positives and K negatives (all computed with the anchor's audio):
  margin:  mean_k max(0, m - mean_j PMA(a, p_j) + PMA(a, n_k))
  infonce: cross-entropy of [mean_j PMA(a, p_j), PMA(a, n_1..K) (, other anchors' positives)] / tau, column 0
Summed over the similarity kinds with their weights, averaged over the batch.

Shapes: feature maps are (B, N, D) or (B, h, w, D) (flattened to N = h*w); candidate sets (B, C, N, D) or
(B, C, h, w, D); relevance maps (B, N) or (B, h, w). Batch dimensions broadcast, as torch.matmul does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from moca.errors import ConfigError

SIMILARITY_KINDS = ("ncc", "ssd")
LOSS_KINDS = ("margin", "infonce")
RELEVANCE_KINDS = ("softmax", "topk")
# Added under the square root when normalising for NCC: a zero vector gets norm ~1e-4 instead of 0, which keeps
# the gradient finite, and changes unit-scale features by a relative 1e-8 only.
NCC_EPS = 1e-8


@dataclass
class LossConfig:
    kinds: tuple[str, ...] = ("ncc", "ssd")
    weights: tuple[float, ...] = (1.0, 1.0)  # one per kind, summed
    margin: float = 0.2
    relevance: str = "softmax"  # how PMA weighs the anchor's pixels (module doc): "softmax" or "topk"
    relevance_tau: float = 0.2  # softmax temperature over the audio-pixel map (cosines)
    top_ratio: float = 0.25  # relevance "topk": fraction of the anchor's pixels, most audio-relevant first
    # Gradient through the pixel matches (the candidates' features and the best-match values). False: only the
    # audio relevance learns, the candidates run without gradient (cheaper), so the margin cannot be met by
    # reshaping the features instead of moving the map.
    match_grad: bool = False
    positives: int = 5  # mined positives per anchor; PMA is averaged over them
    negatives: int = 5  # mined negatives per anchor; one hinge (or logit) each
    symmetric: bool = False
    loss: str = "margin"  # "margin" (triplet hinge) or "infonce"
    tau: float = 0.07  # InfoNCE temperature
    # InfoNCE only: the other anchors' positives as extra negatives. They were computed with *their* anchors'
    # audio, so an adapter that writes the audio into every pixel separates them without localising anything.
    in_batch: bool = False

    def __post_init__(self) -> None:
        self.kinds, self.weights = tuple(self.kinds), tuple(float(w) for w in self.weights)
        if not self.kinds or any(kind not in SIMILARITY_KINDS for kind in self.kinds):
            raise ConfigError(f"loss.kinds: {self.kinds} must be a non-empty subset of {SIMILARITY_KINDS}")
        if len(self.weights) != len(self.kinds):
            raise ConfigError(f"loss.weights: {len(self.weights)} weight(s) for {len(self.kinds)} kind(s)")
        if self.relevance not in RELEVANCE_KINDS:
            raise ConfigError(f"loss.relevance: {self.relevance!r} must be one of {RELEVANCE_KINDS}")
        if self.relevance_tau <= 0:
            raise ConfigError(f"loss.relevance_tau: {self.relevance_tau} must be > 0")
        if not 0 < self.top_ratio <= 1:
            raise ConfigError(f"loss.top_ratio: {self.top_ratio} must be in (0, 1]")
        if self.positives < 1 or self.negatives < 1:
            raise ConfigError(f"loss.positives ({self.positives}) and loss.negatives ({self.negatives}) must be >= 1")
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


def _candidates(features: torch.Tensor, what: str) -> torch.Tensor:
    """(B, C, h, w, D) or (B, C, N, D) -> (B, C, N, D)."""
    if features.dim() == 5:
        return features.flatten(2, 3)
    if features.dim() == 4:
        return features
    raise ValueError(f"{what} need a candidate axis: (B, C, N, D) or (B, C, h, w, D), got {tuple(features.shape)}")


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


def best_matches(x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """best_p = max_q S_pq: (..., N, D) x (..., M, D) -> (..., N); amax splits the gradient between tied maxima."""
    return _similarity(x, y, kind).amax(dim=-1)


def audio_relevance(dense: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
    """Audio-pixel map <f_p, e_a>: dense (B, N, D) or (B, h, w, D), audio (B, D) -> (B, N)."""
    return (_pixels(dense) @ audio_emb.unsqueeze(-1)).squeeze(-1)


def top_count(n_pixels: int, top_ratio: float) -> int:
    """How many pixels the "topk" relevance keeps: ceil(top_ratio * N), at least one."""
    return max(1, math.ceil(top_ratio * n_pixels - 1e-9))  # the epsilon keeps 0.25 * 256 at 64, not 65


def relevance_weights(relevance: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """(..., N) audio-pixel map -> (..., N) weights summing to 1 over the pixels (see the module doc)."""
    if config.relevance == "softmax":
        return torch.softmax(relevance / config.relevance_tau, dim=-1)
    count = top_count(relevance.shape[-1], config.top_ratio)
    top = relevance.detach().topk(count, dim=-1).indices
    return torch.zeros_like(relevance, memory_format=torch.contiguous_format).detach().scatter_(-1, top, 1.0 / count)


def _pma_one_way(x: torch.Tensor, y: torch.Tensor, weights_x: torch.Tensor, kind: str,
                 match_grad: bool = True) -> torch.Tensor:
    """(..., N, D), (..., M, D), (..., N) weights -> (...). Works for any broadcastable leading dimensions."""
    best = best_matches(x, y, kind)
    if not match_grad:
        best = best.detach()
    return (best * weights_x).sum(dim=-1)


def pma(
    x: torch.Tensor,
    y: torch.Tensor,
    weights_x: torch.Tensor,
    kind: str,
    symmetric: bool = False,
    weights_y: torch.Tensor | None = None,
    match_grad: bool = True,
) -> torch.Tensor:
    """PMA score of x against y, one per batch item: (B,). Weights are per pixel of x (and of y when symmetric),
    e.g. `relevance_weights(audio_relevance(x, e_a), config)`."""
    x, y, weights_x = _pixels(x), _pixels(y), _relevance(weights_x)
    forward = _pma_one_way(x, y, weights_x, kind, match_grad)
    if not symmetric:
        return forward
    if weights_y is None:
        raise ValueError("symmetric PMA needs weights_y (the relevance weights of y's pixels)")
    return 0.5 * (forward + _pma_one_way(y, x, _relevance(weights_y), kind, match_grad))


def candidate_scores(anchor: torch.Tensor, candidates: torch.Tensor, audio_anchor: torch.Tensor, config: LossConfig,
                     kind: str) -> torch.Tensor:
    """PMA of every anchor (B, N, D) against its C candidates (B or 1, C, M, D) -> (B, C), with the pixels weighed
    by the anchor's audio. With a leading 1, candidates are shared by all anchors and broadcast, not copied."""
    weights = relevance_weights(audio_relevance(anchor, audio_anchor), config).unsqueeze(1)  # (B, 1, N)
    a = anchor.unsqueeze(1)
    scores = _pma_one_way(a, candidates, weights, kind, config.match_grad)
    if not config.symmetric:
        return scores
    # the candidates' pixels weighed by the *anchor's* audio too: (B, C, M)
    weights_c = relevance_weights((candidates @ audio_anchor[:, None, :, None]).squeeze(-1), config)
    return 0.5 * (scores + _pma_one_way(candidates, a, weights_c, kind, config.match_grad))


def _check(anchor: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, audio: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    anchor = _pixels(anchor)
    positives, negatives = _candidates(positives, "positives"), _candidates(negatives, "negatives")
    for name, tensor in (("positives", positives), ("negatives", negatives)):
        if tensor.shape[0] != anchor.shape[0] or tensor.shape[-1] != anchor.shape[-1]:
            raise ValueError(f"{name} {tuple(tensor.shape)} do not match the anchors {tuple(anchor.shape)}")
    if audio.shape != (anchor.shape[0], anchor.shape[-1]):
        raise ValueError(f"audio embedding {tuple(audio.shape)} must be (B, D) = ({anchor.shape[0]}, "
                         f"{anchor.shape[-1]})")
    return anchor, positives, negatives


def contrastive_loss(
    anchor: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    audio_anchor: torch.Tensor,
    config: LossConfig | None = None,
    stats: dict[str, float] | None = None,
) -> torch.Tensor:
    """The loss `config.loss` names (module doc), a scalar: what training calls.

    anchor (B, N, D) or (B, h, w, D); positives (B, P, ...) and negatives (B, K, ...) with a candidate axis, all
    computed with the anchor's audio, whose embedding is `audio_anchor` (B, D). When `stats` is a dict it receives
    `active` (fraction of hinges above zero; InfoNCE: of anchors whose positive is not the top logit) and
    `pma_positive` / `pma_negative` (mean scores, first kind).
    """
    config = config or LossConfig()
    anchor, positives, negatives = _check(anchor, positives, negatives, audio_anchor)
    total = anchor.new_zeros(())
    active = []
    for index, (kind, weight) in enumerate(zip(config.kinds, config.weights)):
        positive = candidate_scores(anchor, positives, audio_anchor, config, kind).mean(1)  # (B,)
        negative = candidate_scores(anchor, negatives, audio_anchor, config, kind)  # (B, K)
        if config.loss == "margin":
            hinge = F.relu(config.margin - positive.unsqueeze(1) + negative)
            total = total + weight * hinge.mean()
            active.append((hinge > 0).float().flatten())
        else:
            columns = [positive.unsqueeze(1), negative]
            if config.in_batch and anchor.shape[0] > 1:
                batch, count = positives.shape[:2]
                everyone = positives.reshape(1, batch * count, *positives.shape[2:])  # shared by all anchors
                versus = candidate_scores(anchor, everyone, audio_anchor, config, kind).view(batch, batch, count)
                off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=anchor.device)
                columns.append(versus.mean(2)[off_diagonal].view(batch, batch - 1))
            logits = torch.cat(columns, dim=1) / config.tau
            total = total + weight * F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long,
                                                                         device=logits.device))
            active.append((logits.argmax(1) != 0).float())
        if stats is not None and index == 0:
            stats["pma_positive"] = float(positive.detach().mean())
            stats["pma_negative"] = float(negative.detach().mean())
    if stats is not None:
        stats["active"] = float(torch.cat(active).mean())
    return total


class PairObjective:
    """`contrastive_loss` as the training loop calls it (`moca.train.loop.Objective`): the candidates need no
    gradient unless `config.match_grad`, and `stats` holds the last call's diagnostics."""

    def __init__(self, config: LossConfig | None = None):
        self.config = config or LossConfig()
        self.stats: dict[str, float] = {}

    @property
    def candidates_need_grad(self) -> bool:
        return self.config.match_grad

    def __call__(self, anchor: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                 audio_emb: torch.Tensor) -> torch.Tensor:
        self.stats = {}
        return contrastive_loss(anchor, positives, negatives, audio_emb, self.config, self.stats)
