"""CI guard for issue 11: the default MoCA objective must keep moving the audio-pixel map towards the sounding object.

A fixed small setting of the proof harness (docs/training.md, "Does it learn?"): the STAND-IN tiny ImageBind, a
100-video synthetic S4 world, pairs whose positives share the anchor's sounding class (so the test guards the
objective and the training loop, not the quality of a DINO stand-in), the default `LossConfig`, 150 steps. The
trained adapters must beat the untrained ones (gates at 0) on sounding-vs-distractor AUC of H on the held-out
test videos, and the gain must need the right audio. Everything is seeded: the numbers are the same every run.
Oracle pairs on a scene_context 0 world are the setting where the objective is measured to work; with DINO-mined
pairs it does not yet beat gates at 0 (docs/training.md, the verdict), so guarding that would guard nothing.

The stand-in is the shipped one when `moca.standins` provides it; otherwise a smaller one is pre-trained here
once (a separate 300-video corpus) and kept in pytest's cache folder (`.pytest_cache/d/moca-learning-guard`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moca.losses import LossConfig
from moca.train import probe, proof

# Required AUC gain over gates at 0. Measured in this setting: +0.034 with the default objective (0.608 -> 0.643);
# the detached top-k relevance, which gives H no gradient, gained +0.007 in the harness's variants table.
GAIN = 0.02


def _standin(folder: Path) -> proof.Backbone:
    try:
        from moca.standins import get_standin  # the shipped, rebuildable stand-ins (once available)

        shipped = get_standin("imagebind_tiny_standin")
        return proof.Backbone(shipped.path(), shipped.sha256)
    except Exception:  # noqa: BLE001 - no shipped stand-in here: build a small one below
        pass
    from moca.data.synth import SynthConfig, synthesize
    from moca.io import sha256_file
    from moca.train.pretrain import pretrain_tiny

    weights = folder / "imagebind_tiny_guard_standin.pt"
    if not weights.is_file():
        corpus = folder / "corpus"
        if not (corpus / "synth.json").is_file():
            synthesize(corpus, SynthConfig(benchmark="s4", videos=300, seed=proof.PRETRAIN_CORPUS_SEED,
                                           split_fractions=(1.0, 0.0, 0.0)))
        pretrain_tiny(corpus, weights, steps=300, frames_per_video=1)
    return proof.Backbone(weights, sha256_file(weights))


@pytest.mark.slow  # ~2-4 min with a cached stand-in, 10+ min on a loaded machine when it is pre-trained first
@pytest.mark.timeout(2400)
def test_trained_adapters_beat_gates_zero_on_auc(request):
    folder = Path(request.config.cache.mkdir("moca-learning-guard"))
    bb = _standin(folder)
    world = proof.make_world(folder, videos=100, seed=0)
    proof.encode_test(world, bb.model(0))
    mismatch = probe.mismatched_audio(world.test_truths)
    before = proof.score(world, bb.model(0), mismatch)
    pairs = proof.labelled_pairs(world, "oracle", k=10, negatives=10, seed=0)
    cfg = proof.ProofConfig(steps=150, batch_size=8, lr=3e-3)
    model, history = proof.train_pairs_arm(world, bb, pairs, LossConfig(), cfg, seed=0, out=folder / "run",
                                           work=folder)
    after = proof.score(world, model, mismatch)

    def auc(scores: dict[str, np.ndarray], audio: str) -> float:
        return float(np.nanmean(scores[audio][:, 0]))

    gain = auc(after, "own") - auc(before, "own")
    report = (f"AUC {auc(before, 'own'):.3f} -> {auc(after, 'own'):.3f} (gain {gain:+.3f}, needed > {GAIN}); "
              f"mismatched audio {auc(before, 'mismatched'):.3f} -> {auc(after, 'mismatched'):.3f}; "
              f"relevance on the sounding object {history[0]['relevance/sounding']:.3f} -> "
              f"{history[-1]['relevance/sounding']:.3f}")
    print(report)
    assert gain > GAIN, report
    # the gain is the audio's: with a mismatched audio the map must not gain as much
    assert auc(after, "mismatched") - auc(before, "mismatched") < gain, report
