"""AVSS zero-shot labelling: class choice from text similarities, painting, and semantic scoring end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from moca.data.layout import list_videos
from moca.data.palette import NUM_AVSS_CLASSES
from moca.data.synth import SynthConfig, synthesize
from moca.evaluate import evaluate_predictions, ground_truth
from moca.infer.avss import best_class, class_prompts, label_predictions, paint
from moca.infer.outputs import write_prediction


def test_prompts_cover_the_70_sounding_classes() -> None:
    prompts = class_prompts()
    assert len(prompts) == NUM_AVSS_CLASSES - 1
    assert prompts[0] == "a photo of a accordion." and "a photo of a emergency car." in prompts


def test_best_class_skips_background_index() -> None:
    texts = torch.eye(70, 4)  # class i + 1 has text embedding e_i (only 4 non-zero rows)
    assert best_class(torch.tensor([0.0, 0.2, 0.9, 0.1]), texts) == 3
    assert paint(np.array([[True, False]]), 3).tolist() == [[3, 0]]


@pytest.mark.timeout(300)
def test_labels_are_scored_with_the_semantic_protocol(tmp_path: Path) -> None:
    root = tmp_path / "avss"
    synthesize(root, SynthConfig(benchmark="avss", videos=4, seed=2, image_size=64))
    split = next(s for s in ("test", "val", "train") if list_videos(root, "avss", s))
    binary = tmp_path / "binary"
    for video in list_videos(root, "avss", split):
        for frame in (f for f in video.frames if f.mask is not None):
            write_prediction(binary, frame.key, ground_truth(frame, "avss") != 0)  # perfect binary masks
    manifest = label_predictions(binary, root, split, tmp_path / "labels", imagebind="imagebind_tiny")
    assert manifest["counts"]["frames"] == manifest["counts"]["labelled"] + manifest["counts"]["empty"]
    semantic = evaluate_predictions(tmp_path / "labels", root, "avss", split, "semantic")
    assert 0.0 <= semantic["miou"] <= 1.0
    # the masks are perfect, so background is always right: its IoU is 1 wherever it is counted
    assert semantic["per_class"]["background"]["iou"] == pytest.approx(1.0)
