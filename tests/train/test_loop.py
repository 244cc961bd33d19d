"""The training loop on stand-ins: schedule, data order, cache exactness, resume after a crash, corrupt checkpoints."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
from train_standins import StandInModel, StandInStore, margin_objective, stand_in_pairs

from moca.errors import ConfigError, DataError
from moca.train.checkpoint import list_checkpoints, load_latest_checkpoint
from moca.train.config import LoopConfig
from moca.train.data import PairDataset, plan_epoch
from moca.train.loop import _collate, _Features, lr_factor, micro_step_loss, train


def _cfg(**overrides) -> LoopConfig:
    base = dict(batch_size=4, epochs=2, checkpoint_every=2, keep_last=2, tracking=False, lr=1e-2)
    return LoopConfig(**{**base, **overrides})


def _run(out: Path, cfg: LoopConfig, objective=margin_objective, resume: bool = False):
    dataset = PairDataset(stand_in_pairs(), StandInStore(), seed=cfg.seed)
    return train(StandInModel(), objective, dataset, cfg, out, config_hash="h", model_id="standin", resume=resume)


def test_lr_schedule_warmup_then_cosine_to_floor():
    cfg = LoopConfig(warmup_steps=2, min_lr_ratio=0.1)
    assert [lr_factor(s, 10, cfg) for s in (0, 1)] == [0.5, 1.0]
    assert lr_factor(2, 10, cfg) == pytest.approx(1.0)
    assert lr_factor(6, 10, cfg) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the decay
    assert lr_factor(10, 10, cfg) == pytest.approx(0.1)
    assert lr_factor(7, 10, LoopConfig(schedule="constant")) == 1.0


def test_global_batches_are_the_same_for_any_world_size_and_accumulation():
    single = plan_epoch(26, seed=3, epoch=1, batch_size=8, world_size=1, rank=0, grad_accum=1)
    assert len(single) == 3  # 26 // 8, the tail is dropped
    for world, accum in ((2, 1), (2, 2), (4, 2)):
        plans = [plan_epoch(26, 3, 1, 8, world, r, accum) for r in range(world)]
        for t in range(3):
            union = sorted(i for plan in plans for micro in plan[t] for i in micro)
            assert union == sorted(single[t][0])
            assert all(len(micro) == 8 // world // accum for plan in plans for micro in plan[t])
    assert plan_epoch(26, 3, 1, 8, 1, 0, 1) == single  # deterministic
    assert plan_epoch(26, 3, 2, 8, 1, 0, 1) != single  # reshuffled per epoch


@pytest.mark.parametrize("positives, negatives", [(1, 1), (2, 3)])
def test_samples_depend_only_on_seed_epoch_and_index(positives, negatives):
    a = PairDataset(stand_in_pairs(), StandInStore(), seed=1, positives=positives, negatives=negatives)
    b = PairDataset(stand_in_pairs(), StandInStore(), seed=1, positives=positives, negatives=negatives)
    b.set_epoch(0)
    assert [a.sample(i) for i in range(len(a))] == [b.sample(i) for i in range(len(b))]
    b.set_epoch(1)
    assert [a.sample(i) for i in range(len(a))] != [b.sample(i) for i in range(len(b))]
    for i in range(len(a)):
        anchor, drawn_positives, drawn_negatives = a.sample(i)
        assert anchor == a.anchors[i].anchor
        assert len(drawn_positives) == positives and set(drawn_positives) <= set(a.anchors[i].positives)
        assert len(drawn_negatives) == negatives and set(drawn_negatives) <= set(a.anchors[i].negatives)
        if len(a.anchors[i].positives) >= positives:  # distinct while the anchor has enough
            assert len(set(drawn_positives)) == positives


@pytest.mark.parametrize("positives, negatives", [(1, 1), (2, 3)])
def test_cached_prefix_gives_the_same_loss_as_computing_it(positives, negatives):
    model = StandInModel().eval()
    dataset = PairDataset(stand_in_pairs(), StandInStore(), seed=0, positives=positives, negatives=negatives)
    batch = _collate([dataset[i] for i in range(5)])
    losses = []
    for cache in (False, True):
        features = _Features(model, dataset, _cfg(cache_prefix=cache), "standin", torch.device("cpu"))
        losses.append(micro_step_loss(model, margin_objective, features, batch, contextlib.nullcontext())[0])
    assert losses[0].item() > 0
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=1e-6)


def test_disk_cache_is_reused_and_damaged_files_are_recomputed(tmp_path):
    model = StandInModel().eval()
    dataset = PairDataset(stand_in_pairs(), StandInStore(), seed=0)
    cfg = _cfg(cache_dir=str(tmp_path / "cache"))
    first = _Features(model, dataset, cfg, "standin", torch.device("cpu"))
    files = sorted((tmp_path / "cache" / "standin" / "visual_prefix").glob("*.pt"))
    assert len(files) == len(dataset.frame_keys())
    files[0].write_bytes(b"garbage")
    second = _Features(model, dataset, cfg, "standin", torch.device("cpu"))  # rewrites the damaged file
    keys = dataset.frame_keys()
    cpu = torch.device("cpu")
    torch.testing.assert_close(first.visual.get(keys, cpu), second.visual.get(keys, cpu))


def test_training_changes_the_adapters_and_nothing_else(tmp_path):
    before = StandInModel().state_dict()
    dataset = PairDataset(stand_in_pairs(), StandInStore(), seed=0)
    model = StandInModel()
    result = train(model, margin_objective, dataset, _cfg(epochs=1), tmp_path, config_hash="h", model_id="standin")
    assert result.steps == 24 // 4 and len(result.losses) == 6
    assert set(result.adapters) == set(model.adapter_state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]) != (name in result.adapters), name


class _Crash(Exception):
    pass


def _crashing(after_calls: int):
    calls = {"n": 0}

    def objective(*args):
        calls["n"] += 1
        if calls["n"] > after_calls:
            raise _Crash
        return margin_objective(*args)

    return objective


@pytest.mark.parametrize("cache", [False, True])
def test_resume_after_a_crash_reaches_the_same_weights(tmp_path, cache):
    cfg = _cfg(epochs=2, cache_prefix=cache)  # 12 steps, checkpoints every 2
    straight = _run(tmp_path / "straight", cfg)
    out = tmp_path / "crashed"
    # Crash during step 6 (last checkpoint: step 4), resume, crash during step 9 (4 steps later; checkpoint 8).
    for calls_before_crash in (5, 4):
        with pytest.raises(_Crash):
            _run(out, cfg, objective=_crashing(calls_before_crash), resume=True)
    resumed = _run(out, cfg, resume=True)
    assert resumed.resumed_from == 8
    assert resumed.losses == straight.losses
    for name, value in straight.adapters.items():
        assert torch.equal(value, resumed.adapters[name]), name


def test_damaged_latest_checkpoint_falls_back_to_the_previous_good_one(tmp_path):
    _run(tmp_path, _cfg(epochs=1, checkpoint_every=1, keep_last=3))
    folder = tmp_path / "checkpoints"
    newest, middle, oldest = list_checkpoints(folder)
    assert [c.step for c in (newest, middle, oldest)] == [6, 5, 4]
    newest.path.write_bytes(newest.path.read_bytes()[:100])  # truncated
    assert load_latest_checkpoint(folder, "h")["step"] == 5
    data = bytearray(middle.path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    middle.path.write_bytes(bytes(data))
    assert load_latest_checkpoint(folder, "h")["step"] == 4
    oldest.sidecar.unlink()  # a write that never finished
    assert load_latest_checkpoint(folder, "h") is None


def test_checkpoint_from_another_config_is_refused(tmp_path):
    _run(tmp_path, _cfg(epochs=1))
    with pytest.raises(ConfigError, match="written with config h"):
        load_latest_checkpoint(tmp_path / "checkpoints", "other")


def test_checkpoints_load_with_weights_only_and_hold_the_full_state(tmp_path):
    _run(tmp_path, _cfg(epochs=1))
    state = torch.load(list_checkpoints(tmp_path / "checkpoints")[0].path, weights_only=True)
    assert {"adapters", "optimizer", "scheduler", "rng", "step", "epoch", "config_hash", "losses"} <= set(state)
    assert set(state["rng"][0]) >= {"torch", "numpy", "python"}


def test_bad_batch_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not divisible"):
        LoopConfig(batch_size=6, grad_accum=4).micro_batch(1)
    with pytest.raises(DataError, match="cannot fill one batch"):
        _run(tmp_path, _cfg(batch_size=32))
    with pytest.raises(ConfigError, match="schedule"):
        LoopConfig(schedule="linear")


def test_candidates_without_gradient_and_the_step_history(tmp_path):
    seen = []

    class Objective:
        candidates_need_grad = False

        def __init__(self):
            self.stats: dict[str, float] = {}

        def __call__(self, anchor, positives, negatives, audio_emb):
            seen.append((anchor.requires_grad, positives.requires_grad, negatives.requires_grad,
                         tuple(positives.shape[:2]), tuple(negatives.shape[:2])))
            self.stats = {"active": 0.5}
            return margin_objective(anchor, positives, negatives, audio_emb)

    def inspect(batch, anchor, positives, negatives, audio_emb):
        assert not anchor.requires_grad and positives.shape[1] == 2
        return {"anchors": float(len(batch["anchor_key"]))}

    dataset = PairDataset(stand_in_pairs(), StandInStore(), seed=0, positives=2, negatives=3)
    result = train(StandInModel(), Objective(), dataset, _cfg(epochs=1), tmp_path, config_hash="h",
                   model_id="standin", inspect=inspect)
    assert seen and all(a and not p and not n for a, p, n, _, _ in seen)
    assert seen[0][3:] == ((4, 2), (4, 3))
    assert len(result.history) == result.steps
    assert result.history[0]["active"] == 0.5 and result.history[0]["anchors"] == 4.0
    assert {"loss", "lr", "grad_norm"} <= set(result.history[0])


def test_adapter_grad_norms_are_logged_per_adapter():
    from moca.train.loop import _adapter_grad_norms

    model = torch.nn.Module()
    model.adapters = torch.nn.ModuleDict({"2": torch.nn.Linear(2, 2, bias=False), "4": torch.nn.Linear(2, 2)})
    model.adapters["2"].weight.grad = torch.full((2, 2), 0.5)  # norm 1
    model.adapters["4"].weight.grad = torch.zeros(2, 2)
    model.adapters["4"].bias.grad = torch.tensor([3.0, 4.0])  # norm 5
    assert _adapter_grad_norms(model) == {"grad_norm/2": 1.0, "grad_norm/4": 5.0}
    assert _adapter_grad_norms(torch.nn.Linear(2, 2)) == {}
