"""The proof harness's plumbing: one shared backbone, pair sources, the shuffled-audio store, the verdict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moca.train import proof
from moca.train.proof import ProofConfig, Run


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return proof.make_world(tmp_path_factory.mktemp("proof"), videos=12, seed=0)


def test_after_model_shares_the_before_models_backbone(world, tmp_path):
    """The old proof built its "after" model from a newly drawn random backbone; every arm must load the same one."""
    bb = proof.backbone(tmp_path, imagebind=None, pretrain_steps=0, corpus_videos=0)
    before = bb.model(adapter_seed=0)
    pairs = proof.labelled_pairs(world, "random", k=2, negatives=2, seed=0)
    cfg = ProofConfig(steps=2, batch_size=2, lr=1e-2, warmup_steps=0)
    loss = proof.LossConfig(positives=2, negatives=2, margin=10.0)  # every hinge active: the adapters must move
    after, history = proof.train_pairs_arm(world, bb, pairs, loss, cfg, seed=1, out=tmp_path / "run", work=tmp_path)
    assert len(history) == 2 and {"margin/sounding", "relevance/sounding", "active"} <= set(history[-1])
    trained, untrained = after.backbone.state_dict(), before.backbone.state_dict()
    assert trained.keys() == untrained.keys()
    assert all(torch.equal(trained[k], untrained[k]) for k in trained)
    assert any(not torch.equal(after.adapter_state_dict()[k], before.adapter_state_dict()[k])
               for k in before.adapter_state_dict())
    # a second random backbone file is not drawn: the same file, the same weights
    assert proof.backbone(tmp_path, None, 0, 0).sha256 == bb.sha256


def test_labelled_pairs_follow_their_definition(world):
    truths = world.train_truths
    for kind in ("oracle", "visual", "random"):
        pairs = proof.labelled_pairs(world, kind, k=3, negatives=2, seed=0)
        assert pairs
        for entry in pairs:
            anchor = truths[entry.anchor]
            assert all(truths[k].video != anchor.video for k in entry.positives + entry.negatives)
            if kind == "oracle":
                assert all(truths[k].sounding_class == anchor.sounding_class for k in entry.positives)
                assert all(truths[k].sounding_class != anchor.sounding_class for k in entry.negatives)
    visual = proof.labelled_pairs(world, "visual", k=3, negatives=2, seed=0)

    def overlap(a, b):
        a, b = set(truths[a].object_classes), set(truths[b].object_classes)
        return len(a & b) / len(a | b)

    for entry in visual:
        worst_positive = min(overlap(entry.anchor, k) for k in entry.positives)
        assert all(overlap(entry.anchor, k) <= worst_positive for k in entry.negatives)


def test_shuffled_audio_comes_from_another_video(world):
    class Store:
        def image(self, key):
            return key

        def audio(self, key):
            return key

    shuffled = proof.ShuffledAudio(Store(), world, seed=0)
    keys = sorted(world.train_truths)
    assert all(shuffled.image(k) == k for k in keys)
    donors = [shuffled.audio(k) for k in keys]
    assert all(world.train_truths[d].video != world.train_truths[k].video for k, d in zip(keys, donors))


def _run(arm: str, data_seed: int, seed: int, auc: float, pointing: float, mismatched_auc: float = 0.5) -> Run:
    own = np.array([[auc, pointing, 0.1]] * 3)
    mismatched = np.array([[mismatched_auc, 0.1, 0.05]] * 3)
    return Run(arm.split("/")[0], "default", data_seed, seed, [], own, mismatched)


def test_verdict_needs_every_comparison_above_its_interval():
    rng = np.random.default_rng(0)
    none = [_run("none", d, 0, 0.70, 0.50) for d in (0, 1)]

    def arm(name, auc, pointing, mismatched=0.5):
        return [_run(name, d, s, auc + rng.normal(0, 0.005), pointing + rng.normal(0, 0.005),
                     mismatched + rng.normal(0, 0.005)) for d in (0, 1) for s in (0, 1, 2)]

    groups = {"none": none, "mined/default": arm("mined", 0.80, 0.60), "random/default": arm("random", 0.60, 0.30),
              "shuffled/default": arm("shuffled", 0.60, 0.30)}
    found = proof.verdict(groups)
    assert found["passed"], found
    assert found["comparisons"]["auc vs none"]["mean"] == pytest.approx(0.10, abs=0.01)
    # a gain that survives a mismatched audio is not audio-specific: the verdict fails
    groups["mined/default"] = arm("mined", 0.80, 0.60, mismatched=0.65)
    assert not proof.verdict(groups)["passed"]
    # no better than random pairs: fails
    groups["mined/default"] = arm("mined", 0.60, 0.30)
    assert not proof.verdict(groups)["passed"]
    assert proof.verdict({"none": none}) == {"measured": False}


def test_summary_table_and_history_are_json_ready():
    none = [_run("none", 0, 0, 0.7, 0.5)]
    runs = [_run("mined", 0, s, 0.8, 0.6) for s in (0, 1)]
    summary = proof.summarise(runs, none, samples=200)
    assert summary["auc/own"]["mean"] == pytest.approx(0.8)
    assert summary["auc/own"]["delta_vs_none"] == pytest.approx(0.1)
    text = proof.table({"none": proof.summarise(none, none, 200), "mined/default": summary})
    assert text.count("\n") == 3 and "mined/default" in text
    history = [{"loss": float(i), "active": 1.0} for i in range(100)]
    found = proof.history_summary(history, every=25)
    assert found["first"]["loss"] == pytest.approx(4.5) and len(found["trace"]["loss"]) == 4


def test_reports_merge_into_the_report_of_all_runs(tmp_path):
    runs = [_run("none", d, 0, 0.7, 0.5) for d in (0, 1)] + [_run("mined", d, s, 0.8, 0.6) for d in (0, 1)
                                                              for s in (0, 1)]
    paths = []
    for data_seed in (0, 1):
        mine = [r for r in runs if r.data_seed == data_seed]
        report = {"config": {}, "backbone": {"sha256": "x"}, "dino": None, "gates": {str(data_seed): {}},
                  "runs": [proof._run_record(r) for r in mine]}
        paths.append(tmp_path / f"{data_seed}.json")
        paths[-1].write_text(__import__("json").dumps(proof.finish(report, mine, 200)))
    merged = proof.merge_reports(paths, samples=200)
    whole = proof.finish({}, runs, 200)
    assert merged["summaries"] == whole["summaries"] and set(merged["gates"]) == {"0", "1"}
    with pytest.raises(ValueError, match="twice"):
        proof.merge_reports([paths[0], paths[0]])
