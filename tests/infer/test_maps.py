"""Audio-pixel map normalisation, coarse masks (threshold and k-means) and prompt peaks, on hand-made maps."""

from __future__ import annotations

import torch

from moca.infer.maps import kmeans, kmeans_mask, normalise_map, patch_to_pixel, peak_points, threshold_mask, upsample


def test_normalise_map_spans_zero_to_one_and_constant_is_zero() -> None:
    raw = torch.tensor([[[-0.2, 0.0], [0.2, 0.6]], [[0.3, 0.3], [0.3, 0.3]]])
    out = normalise_map(raw)
    assert torch.allclose(out[0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    assert torch.equal(out[1], torch.zeros(2, 2))


def test_threshold_mask_keeps_pixels_at_or_above_half() -> None:
    patch = torch.zeros(4, 4)
    patch[1:3, 1:3] = 1.0
    heat = upsample(patch[None], (8, 8))[0]
    mask = threshold_mask(heat, 0.5)
    assert mask[2:6, 2:6].all()  # the bright block's pixels
    assert not mask[0].any() and not mask[:, 0].any()  # the border is far from it
    assert threshold_mask(torch.tensor([[0.5, 0.49]]), 0.5).tolist() == [[True, False]]


def _two_region_features() -> tuple[torch.Tensor, torch.Tensor]:
    """A 4x4 grid: left half has feature A, right half feature B; H is high on the right half only."""
    features = torch.zeros(4, 4, 2)
    features[:, :2, 0] = 1.0
    features[:, 2:, 1] = 1.0
    patch_map = torch.zeros(4, 4)
    patch_map[:, 2:] = torch.tensor([0.9, 0.6])  # uneven response: a plain threshold at 0.7 would cut the object
    return features, patch_map


def test_kmeans_separates_feature_groups() -> None:
    features, _ = _two_region_features()
    labels = kmeans(features.reshape(16, 2), k=2, iters=10).view(4, 4)
    assert (labels[:, :2] == labels[0, 0]).all() and (labels[:, 2:] == labels[0, 3]).all()
    assert labels[0, 0] != labels[0, 3]


def test_kmeans_mask_keeps_whole_cluster_whose_mean_passes() -> None:
    features, patch_map = _two_region_features()
    mask = kmeans_mask(features, patch_map, (8, 8), threshold=0.7, k=2)
    assert mask[:, 4:].all() and not mask[:, :4].any()  # mean 0.75 >= 0.7 keeps the whole right cluster
    assert not threshold_mask(upsample(patch_map[None], (8, 8))[0], 0.7)[:, 6:].all()


def test_kmeans_mask_keeps_best_cluster_when_none_passes() -> None:
    features, patch_map = _two_region_features()
    mask = kmeans_mask(features, patch_map, (4, 4), threshold=0.99, k=2)
    assert mask[:, 2:].all() and not mask[:, :2].any()


def test_peak_points_are_local_maxima_strongest_first() -> None:
    patch_map = torch.zeros(6, 6)
    patch_map[1, 1], patch_map[1, 2] = 1.0, 0.9  # one bump: only its top is a peak
    patch_map[4, 4] = 0.7
    patch_map[4, 0] = 0.3  # below the threshold
    assert peak_points(patch_map, num=5, threshold=0.5).tolist() == [[1, 1], [4, 4]]
    assert peak_points(patch_map, num=1, threshold=0.5).tolist() == [[1, 1]]
    assert peak_points(torch.full((3, 3), 0.2), num=2, threshold=0.5).shape == (1, 2)  # global max at least


def test_patch_to_pixel_gives_patch_centres_as_xy() -> None:
    xy = patch_to_pixel(torch.tensor([[0, 0], [1, 3]]), grid=(2, 4), size=(20, 40))
    assert xy.tolist() == [[5.0, 5.0], [35.0, 15.0]]
