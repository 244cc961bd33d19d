"""The gate runners end to end on a few synthetic videos with random-init models (the numbers mean nothing here;
`python -m moca.standins gates` measures the stand-ins on the 200-video gate set)."""

from __future__ import annotations

import pytest

from moca.standins.corpus import corpus_config, ensure_corpus, load_frames
from moca.standins.measure import _random, dino_gate, imagebind_gate, sam_gate


@pytest.mark.slow  # mines pairs twice, prompts SAM, runs the automatic generator and tiny ImageBind: ~30 s
def test_gate_runners_report_every_number(tmp_path):
    cfg = corpus_config(videos=2, seed=1001)
    root = ensure_corpus(tmp_path / "gate", cfg)
    frames = load_frames(root, cfg)
    dino = dino_gate(root, frames, None, tmp_path)
    assert set(dino) == {"chance", "visual_ceiling", "random_init", "standin"}
    assert 0.0 <= dino["random_init"][5]["shares_sounding"] <= 1.0
    sam = sam_gate(frames[:2], _random("sam_tiny"), automatic_frames=1)
    assert 0.0 <= sam["point_miou"] <= 1.0 and sam["automatic"]["demo"]["frames"] == 1
    bind = imagebind_gate(root, frames, _random("imagebind_tiny"))
    assert 0.0 <= bind["sounding_vs_distractor_auc"] <= 1.0 and bind["auc_frames"] > 0
