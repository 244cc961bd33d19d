"""The stand-ins' corpus: instance masks re-rendered exactly, seeds kept apart from evaluation data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moca.data.readers import read_mask
from moca.data.synth import SYNTH_CLASSES, SynthConfig, instance_masks, plan_videos, synthesize
from moca.standins.corpus import CORPUS_SCENE_CONTEXT, SCENE_CONTEXT, corpus_config, load_frames


def test_instance_masks_match_the_written_sounding_masks(tmp_path):
    cfg = SynthConfig(benchmark="s4", videos=4, seed=7, split_fractions=(1.0, 0.0, 0.0))
    root = synthesize(tmp_path / "s4", cfg)
    from moca.data.layout import list_videos

    plans = {p.name: p for p in plan_videos(cfg)}
    checked = 0
    train = list_videos(root, "s4", "train")
    for video in train:
        plan = plans[video.name]
        sources = [i for i, o in enumerate(plan.objects) if o.sounding]
        for frame in video.frames:
            if frame.mask is None:
                continue
            owner = instance_masks(plan, frame.index, cfg.image_size)
            assert np.array_equal(np.isin(owner, sources), read_mask(frame.mask, "s4") > 0)
            assert set(np.unique(owner)) <= set(range(-1, len(plan.objects)))
            checked += 1
    assert checked == len(train) > 0  # S4 train annotates the first frame of each video


def test_corpus_frames_carry_classes_and_owner_maps(tmp_path):
    cfg = corpus_config(videos=2, seed=1234)  # below 3 videos the generator puts all in train
    root = synthesize(tmp_path / "corpus", cfg)
    frames = load_frames(root, cfg)
    described = {v["name"]: v for v in json.loads((root / "synth.json").read_text())["videos"]}
    assert len(frames) == 10
    for frame in frames:
        assert SYNTH_CLASSES[frame.sounding_class].name == described[frame.video]["sources"][0]
        assert frame.owner.shape == frame.image.shape[:2]
        assert frame.owner.max() < len(frame.classes)
    first = load_frames(root, cfg, videos=1)  # DINO and SAM read the first videos only
    assert [f.key for f in first] == [f.key for f in frames if f.video == frames[0].video]


def test_corpus_seeds_never_overlap_evaluation_seeds():
    with pytest.raises(ValueError, match="seeds >= 1000"):
        corpus_config(videos=10, seed=0)
    assert corpus_config(videos=10, seed=1000).split_fractions == (1.0, 0.0, 0.0)


def test_pretraining_backgrounds_are_independent_of_the_sound_and_gates_have_the_demo_worlds_scene_context():
    # pre-training: the object, not the scene, goes with the sound (else the ImageBind stand-in lights backgrounds);
    # gates: backgrounds that follow the sounding class, as in the demo worlds and real scenes
    assert corpus_config(videos=10, seed=1000).scene_context == CORPUS_SCENE_CONTEXT == 0
    assert corpus_config(videos=10, seed=1001, scene_context=SCENE_CONTEXT).scene_context == SCENE_CONTEXT > 0
