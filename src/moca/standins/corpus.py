"""The stand-ins' synthetic corpora: frames with their instance masks and object classes, never evaluation data.

Evaluation data (the demo, tests, the proof harness) uses synthetic seeds below 1000. The stand-ins pre-train on
`CORPUS_SEED` and are gated on `GATE_SEED`, so a stand-in has never seen a frame it is judged on, as the real
foundation models never saw AVSBench. Both are ordinary synthetic S4 datasets on disk with every video in `train`
(the split mining and `moca.train.pretrain` read) but one val and one test video, which the generator keeps for
any set of 3 videos or more even when their fractions are 0 (`moca.data.synth.split_plan`). Instance masks are
re-rendered from the generator's plan (`moca.data.synth.instance_masks`), so the folders keep the AVSBench layout.

Scene context (`SynthConfig.scene_context`, P(background = the sounding class's scene)) differs on purpose:
- the gate sets use `SCENE_CONTEXT` (0.8), that of the demo worlds and the proof harness: real scenes correlate
  with their sounding objects (the paper's premise for mining visually similar frames), and with independent
  backgrounds a label-free miner has nothing to find (mined positives measured at chance, 0.076 vs 0.082);
- the pre-training corpus uses `CORPUS_SCENE_CONTEXT` (0): trained where the scene predicts the sound, the
  ImageBind stand-in binds each sound to its *scene* and its audio-pixel map lights the background (seen in the
  demo's comparison grid); across the web-scale data real ImageBind saw, no one scene goes with a sound, the
  object does, so the corpus keeps backgrounds independent of the sound.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moca.data.synth import SynthConfig, instance_masks, plan_videos, synthesize

CORPUS_SEED = 1000  # pre-training corpus of every stand-in
GATE_SEED = 1001  # held-out set the gates are measured on
EVALUATION_SEEDS_BELOW = 1000  # seeds left to evaluation data: a stand-in never trains on them
SCENE_CONTEXT = 0.8  # of the gate sets, as the demo worlds (module doc)
CORPUS_SCENE_CONTEXT = 0.0  # of the pre-training corpus (module doc)


@dataclass(frozen=True)
class CorpusFrame:
    video: str
    key: str  # the frame's key in the dataset layout (as mining tables name it)
    image: np.ndarray  # (H, W, 3) uint8, as written to disk
    owner: np.ndarray  # (H, W) int16: index into `classes` of the object painting each pixel, -1 = background
    classes: tuple[int, ...]  # synthetic class of each object, in the generator's depth order
    sounding: tuple[bool, ...]  # whether each object sounds

    @property
    def sounding_class(self) -> int:
        return next(c for c, s in zip(self.classes, self.sounding) if s)


def corpus_config(videos: int, seed: int, scene_context: float = CORPUS_SCENE_CONTEXT) -> SynthConfig:
    """A synthetic S4 corpus with (nearly) every video in the train split."""
    if seed < EVALUATION_SEEDS_BELOW:
        raise ValueError(f"stand-in corpora use seeds >= {EVALUATION_SEEDS_BELOW} (below is evaluation data), "
                         f"got {seed}")
    return SynthConfig(benchmark="s4", videos=videos, seed=seed, split_fractions=(1.0, 0.0, 0.0),
                       scene_context=scene_context)


def ensure_corpus(root: Path, cfg: SynthConfig) -> Path:
    """Synthesise `cfg` into `root` unless it is already there (synthesis is deterministic: same bytes)."""
    if not (root / "synth.json").is_file():
        synthesize(root, cfg)
    return root


def load_frames(root: Path, cfg: SynthConfig, videos: int | None = None) -> list[CorpusFrame]:
    """Every frame of the first `videos` (default: all) train videos of corpus `root` (synthesised from `cfg`) with
    its instance masks, in video order."""
    from moca.data.layout import list_videos
    from moca.data.readers import read_image

    plans = {plan.name: plan for plan in plan_videos(cfg)}
    frames = []
    for video in list_videos(root, cfg.benchmark, "train")[:videos]:
        plan = plans[video.name]
        classes = tuple(o.synth_class for o in plan.objects)
        sounding = tuple(o.sounding for o in plan.objects)
        for frame in video.frames:
            frames.append(CorpusFrame(video.name, frame.key, read_image(frame.image),
                                      instance_masks(plan, frame.index, cfg.image_size), classes, sounding))
    return frames
