"""Approximate (faiss IVF) mining against exact mining on clustered descriptors: recall, rules, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from moca.mining.ivf import IvfSettings, mine_neighbours_ivf, recall_at_k
from moca.mining.knn import mine_neighbours
from moca.mining.synthetic import clustered_descriptors


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    return clustered_descriptors(6000, dim=64, seed=1)


@pytest.fixture(scope="module")
def exact(clustered):
    return mine_neighbours(*clustered, k=10, negatives=10, seed=0, chunk_size=1000)


@pytest.fixture(scope="module")
def approximate(clustered):
    return mine_neighbours_ivf(*clustered, k=10, negatives=10, seed=0, chunk_size=700,
                               settings=IvfSettings(probes=8, quantile_sample=512))


def test_synthetic_descriptors_are_clustered_by_video_and_normalised(clustered):
    x, videos = clustered
    assert x.dtype == np.float32 and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    same_video = float((x[0] * x[1]).sum())  # frames 0-4 are one video
    unrelated = float((x[:500] @ x[-500:].T).mean())
    assert same_video > 0.75 and 0.1 < unrelated < 0.35
    np.testing.assert_array_equal(videos[:10], [0] * 5 + [1] * 5)


def test_positives_recall_the_exact_ones(exact, approximate):
    assert recall_at_k(approximate.positives, exact.positives) >= 0.95
    assert recall_at_k(exact.positives, exact.positives) == 1.0


def test_positive_scores_are_exact_cosines_of_other_videos(clustered, approximate):
    x, videos = clustered
    rows = np.arange(len(x))[:, None]
    assert (approximate.positives >= 0).all()
    assert (videos[approximate.positives] != videos[rows]).all()
    expected = np.einsum("nd,nkd->nk", x, x[approximate.positives])
    np.testing.assert_allclose(approximate.positive_scores, expected, atol=1e-5)
    assert (np.diff(approximate.positive_scores, axis=1) <= 1e-6).all()  # most similar first


def test_negatives_come_from_the_less_similar_half(clustered, exact, approximate):
    x, videos = clustered
    assert (approximate.negatives >= 0).all()
    rows = np.arange(len(x))[:, None]
    assert (videos[approximate.negatives] != videos[rows]).all()
    for anchor in range(0, len(x), 97):
        negatives = approximate.negatives[anchor]
        assert len(set(negatives)) == len(negatives)
        assert not set(negatives) & set(approximate.positives[anchor])
        others = x[videos != videos[anchor]] @ x[anchor]
        # the median is estimated from 512 sampled frames: within a few percent of the true one
        assert (approximate.negative_scores[anchor] <= np.quantile(others, 0.6)).all()
    expected = np.einsum("nd,nkd->nk", x, x[approximate.negatives])
    np.testing.assert_allclose(approximate.negative_scores, expected, atol=1e-5)
    # as dissimilar on average as the exact rule's negatives
    assert abs(np.mean(approximate.negative_scores) - np.mean(exact.negative_scores)) < 0.01


def test_output_does_not_depend_on_the_block_size(clustered, approximate):
    again = mine_neighbours_ivf(*clustered, k=10, negatives=10, seed=0, chunk_size=2048,
                                settings=IvfSettings(probes=8, quantile_sample=512))
    np.testing.assert_array_equal(again.positives, approximate.positives)
    np.testing.assert_array_equal(again.negatives, approximate.negatives)


def test_tiny_sets_pad_like_exact_mining():
    x, _ = clustered_descriptors(6, dim=8, seed=2)
    videos = np.array(["a", "a", "a", "b", "b", "c"])
    found = mine_neighbours_ivf(x, videos, k=5, negatives=5, settings=IvfSettings(probes=1))
    exact = mine_neighbours(x, videos, k=5, negatives=5)
    # one list holds every frame here, so the search is exhaustive: the same positives as exact mining
    np.testing.assert_array_equal(found.positives, exact.positives)
    assert np.isnan(found.positive_scores[:3, 3:]).all()
    for anchor in range(6):
        negatives = found.negatives[anchor][found.negatives[anchor] >= 0]
        assert not (videos[negatives] == videos[anchor]).any()
    alone = mine_neighbours_ivf(x[:3], videos[:3], k=2, negatives=2)
    assert (alone.positives == -1).all() and (alone.negatives == -1).all()


def test_bad_settings():
    with pytest.raises(ValueError, match="probes"):
        IvfSettings(probes=0)
    with pytest.raises(ValueError, match="lists"):
        IvfSettings(lists=-1)
