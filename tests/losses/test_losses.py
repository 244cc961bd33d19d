"""PMA and the losses on hand-made feature maps with answers worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from moca.config import from_dict
from moca.errors import ConfigError
from moca.losses import (
    LossConfig,
    PairObjective,
    audio_relevance,
    contrastive_loss,
    pixel_similarity,
    pma,
    relevance_weights,
    top_count,
)


def topk(relevance: torch.Tensor, ratio: float = 0.25) -> torch.Tensor:
    """PMA weights of the detached top-`ratio` relevance (the first reconstruction)."""
    return relevance_weights(relevance, LossConfig(relevance="topk", top_ratio=ratio))


def test_ncc_on_a_2x2_map_matches_hand_computation():
    # x: one 2x2 map, D = 3. Centred [1,2,3] is [-1,0,1] (norm sqrt 2).
    x = torch.tensor([[[[1.0, 2, 3], [3, 2, 1]], [[2, 4, 6], [0, 0, 5]]]])
    s = pixel_similarity(x, x, "ncc")[0]
    assert s.shape == (4, 4)
    # [0,0,5] centred is [-5/3,-5/3,10/3]: dot with [-1,0,1] is 5, norms sqrt(2) and sqrt(150)/3.
    c = 5 / (math.sqrt(2) * math.sqrt(150) / 3)
    expected = torch.tensor([[1, -1, 1, c], [-1, 1, -1, -c], [1, -1, 1, c], [c, -c, c, 1]])
    torch.testing.assert_close(s, expected, atol=1e-6, rtol=0)


def test_ncc_of_constant_or_zero_vectors_is_zero():
    x = torch.tensor([[[0.0, 0, 0], [2, 2, 2], [1, 0, 0]]])
    s = pixel_similarity(x, x, "ncc")[0]
    assert s[0].abs().max() == 0 and s[1].abs().max() == 0 and s[2, 2] == pytest.approx(1, abs=1e-6)


def test_ssd_on_a_2x2_map_matches_hand_computation():
    x = torch.tensor([[[[1.0, 0], [0, 1]], [[1, 1], [0, 0]]]])
    y = torch.tensor([[[[1.0, 0], [3, 4]], [[0, 0], [1, 1]]]])
    s = pixel_similarity(x, y, "ssd")[0]
    brute = -((x.reshape(4, 1, 2) - y.reshape(1, 4, 2)) ** 2).sum(-1)
    expected = torch.tensor([[0.0, -20, -1, -1], [-2, -18, -1, -1], [-1, -13, -2, 0], [-1, -25, 0, -2]])
    torch.testing.assert_close(brute, expected)
    torch.testing.assert_close(s, expected)


def test_audio_relevance_is_the_dot_product_per_pixel():
    dense = torch.tensor([[[[1.0, 0], [0, 1]], [[1, 1], [2, -1]]]])
    audio = torch.tensor([[2.0, 3.0]])
    torch.testing.assert_close(audio_relevance(dense, audio), torch.tensor([[2.0, 3, 5, 1]]))


@pytest.mark.parametrize("kind", ["ncc", "ssd"])
def test_pma_invariant_to_permuting_the_second_image(kind):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 16, 8, generator=gen), torch.randn(3, 20, 8, generator=gen)
    rel = torch.randn(3, 16, generator=gen)
    shuffled = y[:, torch.randperm(20, generator=gen)]
    torch.testing.assert_close(pma(x, y, topk(rel), kind), pma(x, shuffled, topk(rel), kind), atol=0, rtol=0)


@pytest.mark.parametrize("kind", ["ncc", "ssd"])
def test_pma_invariant_to_translating_an_object(kind):
    # An object (distinct feature vectors) on a uniform background, moved by (2, 3) pixels in the second image.
    gen = torch.Generator().manual_seed(1)
    background, obj = torch.randn(8, generator=gen), torch.randn(2, 2, 8, generator=gen)
    here = background.expand(6, 6, 8).clone()
    here[0:2, 1:3] = obj
    there = background.expand(6, 6, 8).clone()
    there[2:4, 4:6] = obj
    rel = torch.randn(1, 6, 6, generator=gen)
    assert not torch.equal(here, there)
    weights = relevance_weights(rel.flatten(1), LossConfig())
    score_same = pma(here[None], here[None], weights, kind)
    score_moved = pma(here[None], there[None], weights, kind)
    torch.testing.assert_close(score_same, score_moved, atol=0, rtol=0)
    # Matching a frame against itself gives the best score a kind allows: 1 for NCC, 0 for SSD.
    assert score_same.item() == pytest.approx(1.0 if kind == "ncc" else 0.0, abs=1e-5)


def test_pma_averages_only_the_top_audio_relevant_pixels():
    # Four pixels of x; with y = x[:2] the first two match exactly (SSD 0) and the last two do not.
    x = torch.tensor([[[0.0, 0], [1, 0], [5, 5], [9, 9]]])
    y = x[:, :2]
    # best matches: 0, 0, -(16+25)=-41, -(64+81)=-145
    assert pma(x, y, topk(torch.tensor([[4.0, 3, 2, 1]]), 0.5), "ssd").item() == 0
    assert pma(x, y, topk(torch.tensor([[1.0, 2, 3, 4]]), 0.5), "ssd").item() == pytest.approx((-41 - 145) / 2)
    assert pma(x, y, topk(torch.tensor([[1.0, 2, 3, 4]]), 0.25), "ssd").item() == pytest.approx(-145)
    assert pma(x, y, topk(torch.tensor([[1.0, 2, 3, 4]]), 1.0), "ssd").item() == pytest.approx(-186 / 4)


def test_softmax_relevance_weighs_every_pixel_by_its_audio_relevance():
    # relevance (0, ln 2, ln 3, 0) with tau 1 -> softmax weights (1, 2, 3, 1) / 7
    relevance = torch.tensor([[0.0, math.log(2), math.log(3), 0.0]])
    weights = relevance_weights(relevance, LossConfig(relevance="softmax", relevance_tau=1.0))
    torch.testing.assert_close(weights, torch.tensor([[1.0, 2, 3, 1]]) / 7)
    x = torch.tensor([[[0.0, 0], [1, 0], [5, 5], [9, 9]]])
    expected = torch.tensor([(1 * 0 + 2 * 0 + 3 * -41 + 1 * -145) / 7.0])
    torch.testing.assert_close(pma(x, x[:, :2], weights, "ssd"), expected)
    # a colder softmax tends to the single most relevant pixel
    cold = relevance_weights(relevance, LossConfig(relevance="softmax", relevance_tau=1e-3))
    torch.testing.assert_close(cold, torch.tensor([[0.0, 0, 1, 0]]))


@pytest.mark.parametrize("relevance, moves", [("softmax", True), ("topk", False)])
def test_only_the_softmax_relevance_lets_the_loss_move_the_audio_pixel_map(relevance, moves):
    gen = torch.Generator().manual_seed(9)
    anchor = F.normalize(torch.randn(2, 9, 6, generator=gen), dim=-1).requires_grad_()
    positives, negatives = torch.randn(2, 2, 9, 6, generator=gen), torch.randn(2, 3, 9, 6, generator=gen)
    audio = torch.randn(2, 6, generator=gen).requires_grad_()  # H = <f, e_a>: its gradient is H's
    config = LossConfig(relevance=relevance, margin=10.0, match_grad=True)  # every hinge active
    contrastive_loss(anchor, positives, negatives, audio, config).backward()
    assert anchor.grad.abs().max() > 0  # the features learn either way
    assert (audio.grad is not None and audio.grad.abs().max() > 0) == moves
def test_top_count():
    assert top_count(256, 0.25) == 64
    assert top_count(4, 0.1) == 1
    assert top_count(10, 0.25) == 3


def test_symmetric_pma_averages_both_directions():
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(2, 9, 4, generator=gen), torch.randn(2, 5, 4, generator=gen)
    wx, wy = topk(torch.randn(2, 9, generator=gen), 0.5), topk(torch.randn(2, 5, generator=gen), 0.5)
    both = pma(x, y, wx, "ncc", symmetric=True, weights_y=wy)
    torch.testing.assert_close(both, 0.5 * (pma(x, y, wx, "ncc") + pma(y, x, wy, "ncc")))
    with pytest.raises(ValueError, match="weights_y"):
        pma(x, y, wx, "ncc", symmetric=True)


def test_pma_broadcasts_over_batches_and_accepts_maps():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(1, 4, 4, 6, generator=gen), torch.randn(5, 4, 4, 6, generator=gen)
    weights = topk(torch.randn(1, 16, generator=gen))
    scores = pma(x, y, weights, "ssd")
    assert scores.shape == (5,)
    one_by_one = torch.stack([pma(x, y[i : i + 1], weights, "ssd")[0] for i in range(5)])
    torch.testing.assert_close(scores, one_by_one)
    torch.testing.assert_close(scores, pma(x.flatten(1, 2), y.flatten(1, 2), weights, "ssd"))
    with pytest.raises(ValueError, match="expected"):
        pma(x[0, 0], y, weights, "ssd")


def _unit_pixels(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(1, n, d, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_hinge_is_exactly_zero_when_the_margin_is_met_and_exact_when_not():
    config = LossConfig(kinds=("ssd",), weights=(1.0,), margin=0.2, match_grad=True)
    anchor = _unit_pixels(6, 16, 4).requires_grad_()
    audio = F.normalize(torch.randn(1, 16, generator=torch.Generator().manual_seed(10)), dim=-1)
    # Every negative pixel sits at squared distance 0.3 (met) or 0.05 (violated) from its anchor pixel; anchor
    # pixels are ~2 apart, so that pixel is each one's best match and PMA(a, n) is exactly minus that distance,
    # whatever the relevance weights.
    direction = F.normalize(torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(5)), dim=-1)
    for distance, expected in [(0.3, 0.0), (0.05, 0.15)]:
        negative = (anchor + direction * math.sqrt(distance)).detach()
        loss = contrastive_loss(anchor, anchor.detach()[:, None], negative[:, None], audio, config)
        assert loss.item() == pytest.approx(expected, abs=1e-5)
    met = contrastive_loss(anchor, anchor.detach()[:, None], (anchor + direction * math.sqrt(0.3)).detach()[:, None],
                           audio, config)
    assert met.item() == 0
    met.backward()
    assert anchor.grad.abs().max() == 0  # a met margin pushes nothing


def _scores(a, candidates, audio, config, kind):
    """PMA of each anchor against each of its candidates, built from `pma` one pair at a time."""
    weights = relevance_weights(audio_relevance(a, audio), config)
    return torch.stack([torch.stack([pma(a[i : i + 1], c[None], weights[i : i + 1], kind)[0] for c in candidates[i]])
                        for i in range(len(a))])


def test_margin_averages_positives_hinges_each_negative_and_sums_kinds():
    gen = torch.Generator().manual_seed(6)
    a = torch.randn(4, 9, 5, generator=gen)
    positives, negatives = torch.randn(4, 2, 9, 5, generator=gen), torch.randn(4, 3, 9, 5, generator=gen)
    audio = torch.randn(4, 5, generator=gen)
    config = LossConfig(weights=(2.0, 0.5), margin=1.0)
    expected = sum(
        w * torch.relu(1.0 - _scores(a, positives, audio, config, k).mean(1, keepdim=True)
                       + _scores(a, negatives, audio, config, k)).mean()
        for k, w in [("ncc", 2.0), ("ssd", 0.5)]
    )
    stats: dict[str, float] = {}
    torch.testing.assert_close(contrastive_loss(a, positives, negatives, audio, config, stats), expected)
    assert 0 <= stats["active"] <= 1 and set(stats) == {"active", "pma_positive", "pma_negative"}
    with pytest.raises(ValueError, match="candidate axis"):
        contrastive_loss(a, positives[:, 0, 0], negatives, audio, config)


@pytest.mark.parametrize("loss", ["margin", "infonce"])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("relevance", ["softmax", "topk"])
def test_gradients_finite_with_ties_and_zero_vectors(loss, symmetric, relevance):
    # Ties everywhere: constant relevance (top-k tie), duplicated pixels (max tie), zero and constant vectors (NCC).
    anchor = torch.zeros(2, 4, 4, 8)
    anchor[:, :2] = 1.0
    anchor = anchor.requires_grad_()
    positives = torch.zeros(2, 1, 4, 4, 8, requires_grad=True)
    negatives = torch.ones(2, 3, 4, 4, 8).requires_grad_()
    audio = torch.zeros(2, 8)
    config = LossConfig(loss=loss, symmetric=symmetric, relevance=relevance, match_grad=True, in_batch=True)
    value = contrastive_loss(anchor, positives, negatives, audio, config)
    value.backward()
    assert torch.isfinite(value)
    for tensor in (anchor, positives, negatives):
        assert torch.isfinite(tensor.grad).all()


def test_info_nce_matches_hand_built_logits():
    gen = torch.Generator().manual_seed(7)
    a, positives = torch.randn(3, 6, 4, generator=gen), torch.randn(3, 2, 6, 4, generator=gen)
    negatives = torch.randn(3, 2, 6, 4, generator=gen)
    audio = torch.randn(3, 4, generator=gen)
    config = LossConfig(kinds=("ncc",), weights=(1.0,), loss="infonce", tau=0.5, in_batch=True)
    own, mined = _scores(a, positives, audio, config, "ncc").mean(1), _scores(a, negatives, audio, config, "ncc")
    everyone = _scores(a, positives.flatten(0, 1)[None].expand(3, -1, -1, -1), audio, config, "ncc").view(3, 3, 2)
    expected = 0.0
    for i in range(3):
        logits = [own[i]] + list(mined[i]) + [everyone[i, j].mean() for j in range(3) if j != i]
        expected += -torch.log_softmax(torch.stack(logits) / 0.5, dim=0)[0] / 3
    torch.testing.assert_close(contrastive_loss(a, positives, negatives, audio, config), expected)
    # Without in-batch negatives (the default) only the mined ones compete.
    alone = sum(-torch.log_softmax(torch.stack([own[i], *mined[i]]) / 0.5, 0)[0] / 3 for i in range(3))
    config.in_batch = False
    torch.testing.assert_close(contrastive_loss(a, positives, negatives, audio, config), alone)


def test_match_grad_false_trains_only_the_relevance():
    gen = torch.Generator().manual_seed(11)
    anchor = F.normalize(torch.randn(2, 9, 6, generator=gen), dim=-1).requires_grad_()
    positives = torch.randn(2, 1, 9, 6, generator=gen).requires_grad_()
    negatives = torch.randn(2, 2, 9, 6, generator=gen).requires_grad_()
    audio = torch.randn(2, 6, generator=gen).requires_grad_()
    objective = PairObjective(LossConfig(margin=10.0))
    assert objective.candidates_need_grad is False
    objective(anchor, positives, negatives, audio).backward()
    assert positives.grad is None and negatives.grad is None  # the matches are constants
    assert anchor.grad.abs().max() > 0 and audio.grad.abs().max() > 0  # through H = <f, e_a> only
    assert set(objective.stats) == {"active", "pma_positive", "pma_negative"}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"kinds": ["ncc", "l1"]}, "kinds"),
        ({"weights": [1.0]}, "weights"),
        ({"top_ratio": 0}, "top_ratio"),
        ({"relevance": "max"}, "relevance"),
        ({"relevance_tau": 0}, "relevance_tau"),
        ({"negatives": 0}, "negatives"),
        ({"loss": "hinge"}, "loss"),
        ({"tau": 0}, "tau"),
        ({"margn": 0.1}, "unknown key"),
    ],
)
def test_loss_config_rejects_bad_values(bad, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(LossConfig, bad)


def test_loss_config_defaults_follow_method_md():
    config = from_dict(LossConfig, {"kinds": ["ssd"], "weights": [1]})
    assert config.kinds == ("ssd",) and config.weights == (1.0,)
    default = LossConfig()
    assert (default.margin, default.top_ratio, default.tau, default.loss) == (0.2, 0.25, 0.07, "margin")
    # the defaults chosen by the proof harness (docs/training.md)
    assert (default.relevance, default.relevance_tau, default.match_grad) == ("softmax", 0.2, False)
    assert (default.positives, default.negatives, default.in_batch) == (5, 5, False)
