"""Does MoCA learn? The controlled proof-of-learning harness (issue 11; results in docs/training.md).

    python -m moca.train.proof --work DIR [--imagebind FILE] [--dino FILE] [--scene-context 0.8] [--steps 300]
                               [--seeds 0,1,2] [--data-seeds 0,1] [--videos 300] [--arms ...] [--variant N=JSON]
                               [--json FILE] [--figure FILE]
    python -m moca.train.proof --work DIR --merge A.json B.json --json docs/proof_of_learning.json

For every data seed it synthesises an S4 world (`--videos`, 70/15/15 split), takes the STAND-IN foundation
models (pre-trained on a *separate* corpus, never on these worlds), prints the gates, then trains the arms on the
train split with the same budget and seeds, and scores the audio-pixel map H on the held-out test videos with
the correct audio and with a mismatched one (another test video's audio whose sounding class differs):

    none        gates at 0: the stand-in ImageBind as it is
    mined       the MoCA loss with pairs mined by DINO (`--dino` weights; random `dino_tiny` without them)
    visual      the MoCA loss with pairs from the best purely visual miner: frames ranked by the overlap of their
                object classes (uses the generator's labels; what a perfect DINO could give at most)
    oracle      the MoCA loss with positives of the same sounding class (uses the generator's labels)
    random      the MoCA loss with random positives and negatives (negative control)
    shuffled    mined pairs, but each anchor hears another video's audio (negative control)
    supervised  BCE on H against the sounding mask (CEILING: uses masks, not MoCA)

A variant (`--variant name=JSON`) overrides the loss config; it trains the pair arms among `--arms` (mined,
visual, oracle, random).
Metrics (`moca.train.probe`): sounding-vs-distractor AUC on H, pointing, coarse mIoU, per video, with bootstrap
95 % intervals over videos; the seed interval is a t interval over the (data seed, seed) runs. Training logs per
step the loss, active-hinge fraction, per-adapter gradient norms and the PMA margin by region of the anchor.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moca.io import sha256_file, write_json
from moca.losses import LossConfig, PairObjective, best_matches
from moca.train import probe

log = logging.getLogger(__name__)

ARMS = ("none", "mined", "visual", "oracle", "random", "shuffled", "supervised")
PAIR_ARMS = ("mined", "visual", "oracle", "random")
PRETRAIN_CORPUS_SEED = 1000  # stand-in corpora use seeds >= 1000; evaluation worlds below (moca.standins)


@dataclass
class ProofConfig:
    videos: int = 300
    scene_context: float = 0.0  # `moca.data.synth.SynthConfig.scene_context` of the evaluation worlds
    data_seeds: tuple[int, ...] = (0, 1)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 300
    batch_size: int = 8
    lr: float = 3e-3
    warmup_steps: int = 10
    arms: tuple[str, ...] = ARMS
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> LossConfig overrides
    variants_only: bool = False  # run only the variants (to merge with a report of the default)
    loss: LossConfig = field(default_factory=LossConfig)  # the default objective (arms other than variants)
    mining_k: int = 10
    mining_negatives: int = 10
    supervised_tau: float = 0.1  # BCE on H / tau (ceiling arm)
    mismatch_seed: int = 0
    bootstrap: int = 2000


# ------------------------------------------------------------------------------------------------ the world


@dataclass
class World:
    seed: int
    root: Path
    synth: Any  # SynthConfig
    train_truths: dict[str, probe.FrameTruth]  # by frame key, every train frame
    test_truths: list[probe.FrameTruth]  # annotated test frames, EvalFrames order
    test_prefix: torch.Tensor | None = None  # frozen features of the test frames (filled by `encode_test`)
    test_tokens: torch.Tensor | None = None
    test_emb: torch.Tensor | None = None


def make_world(work: Path, videos: int, seed: int, scene_context: float = 0.0) -> World:
    from moca.data.synth import SynthConfig, synthesize

    cfg = SynthConfig(benchmark="s4", videos=videos, seed=seed, scene_context=scene_context)
    root = work / (f"world-{seed}-{videos}" + (f"-scene{scene_context:g}" if scene_context else ""))
    if not (root / "synth.json").is_file():
        synthesize(root, cfg)
    train = {t.key: t for t in probe.frame_truths(root, cfg, "train", annotated_only=False)}
    return World(seed, root, cfg, train, probe.frame_truths(root, cfg, "test"))


@torch.no_grad()
def encode_test(world: World, model: Any) -> None:
    """Frozen prefix and audio of every test frame, once (the adapters change only the suffix)."""
    from moca.data.datasets import EvalFrames

    frames = EvalFrames(world.root, "s4", "test")
    prefix, tokens, emb = [], [], []
    for batch in torch.utils.data.DataLoader(frames, batch_size=16):
        prefix.append(model.visual_prefix(batch["image"]))
        t, e = model.encode_audio(batch["audio"])
        tokens.append(t)
        emb.append(e)
    world.test_prefix, world.test_tokens, world.test_emb = torch.cat(prefix), torch.cat(tokens), torch.cat(emb)


@torch.no_grad()
def test_maps(world: World, model: Any, audio_index: np.ndarray | None = None, batch: int = 32) -> torch.Tensor:
    """H (N, h, w) of every test frame, with the audio of frame `audio_index[i]` (default: its own)."""
    from moca.models import audio_pixel_map

    index = torch.arange(len(world.test_prefix)) if audio_index is None else torch.as_tensor(audio_index)
    maps = []
    for start in range(0, len(index), batch):
        chosen = index[start : start + batch]
        dense = model.visual_suffix(world.test_prefix[start : start + batch], world.test_tokens[chosen])
        maps.append(audio_pixel_map(dense, world.test_emb[chosen]))
    return torch.cat(maps)


def score(world: World, model: Any, mismatch: np.ndarray) -> dict[str, np.ndarray]:
    """Per-video (V, 3) auc/pointing/miou with the right audio ("own") and a mismatched one ("mismatched")."""
    return {name: probe.video_means(probe.frame_scores(test_maps(world, model, audio), world.test_truths),
                                    world.test_truths)[1]
            for name, audio in (("own", None), ("mismatched", mismatch))}


# --------------------------------------------------------------------------------------------- stand-ins


@dataclass(frozen=True)
class Backbone:
    """The frozen ImageBind every arm shares: one weights file, so "before" and "after" models cannot differ in it."""

    path: Path
    sha256: str

    def model(self, adapter_seed: int) -> Any:
        """A MocaModel on these weights with the demo adapters (positions 2, 4) drawn from `adapter_seed`."""
        from moca.models import MocaConfig, MocaModel, WeightsSpec, tiny_moca_config

        torch.manual_seed(adapter_seed)
        config = MocaConfig("imagebind_tiny", WeightsSpec(self.path.resolve().as_uri(), self.sha256),
                            tiny_moca_config().adapter)
        return MocaModel(config).eval()


def backbone(work: Path, imagebind: Path | None, pretrain_steps: int, corpus_videos: int) -> Backbone:
    """`imagebind` as given, else the STAND-IN pre-trained here on a separate corpus (seed PRETRAIN_CORPUS_SEED),
    else (pretrain_steps 0) one random tiny ImageBind saved once, so every arm loads the same one."""
    if imagebind is not None:
        return Backbone(imagebind, sha256_file(imagebind))
    if pretrain_steps <= 0:
        path = work / "imagebind_tiny_random_seed0.pt"
        if not path.is_file():
            from moca.io import atomic_open
            from moca.models import build_model

            torch.manual_seed(0)
            with atomic_open(path, "wb") as handle:
                torch.save(build_model("imagebind_tiny").state_dict(), handle)
        return Backbone(path, sha256_file(path))
    from moca.data.synth import SynthConfig, synthesize
    from moca.train.pretrain import pretrain_tiny

    corpus = work / f"pretrain-corpus-{PRETRAIN_CORPUS_SEED}-{corpus_videos}"
    if not (corpus / "synth.json").is_file():
        synthesize(corpus, SynthConfig(benchmark="s4", videos=corpus_videos, seed=PRETRAIN_CORPUS_SEED,
                                       split_fractions=(1.0, 0.0, 0.0)))
    path = work / f"imagebind_tiny_standin_{corpus_videos}v_{pretrain_steps}s.pt"
    digest = sha256_file(path) if path.is_file() else pretrain_tiny(corpus, path, steps=pretrain_steps)
    return Backbone(path, digest)


# ------------------------------------------------------------------------------------------------- pairs


def mined_pairs(world: World, work: Path, dino: Path | None, cfg: ProofConfig) -> list:
    """DINO-mined pairs of the train split (`moca.mining`, the pipeline's step), read back as the loop reads them."""
    from moca.mining.run import MiningConfig, mine_pairs
    from moca.models import WeightsSpec
    from moca.train.data import read_pairs

    weights = None if dino is None else WeightsSpec(dino.resolve().as_uri(), sha256_file(dino))
    tag = "random" if dino is None else sha256_file(dino)[:12]
    out = work / f"pairs-{world.root.name}-{tag}"
    if not (out / "manifest.json").is_file():
        mine_pairs(world.root, "s4", out, MiningConfig(model="dino_tiny", k=cfg.mining_k,
                                                        negatives=cfg.mining_negatives, weights=weights))
    return read_pairs(out / "pairs.parquet")


def labelled_pairs(world: World, kind: str, k: int, negatives: int, seed: int) -> list:
    """Pairs drawn from the generator's labels, every frame an anchor as in mining:
    "oracle"  positives share the sounding class, negatives do not;
    "visual"  the best purely visual miner: positives are the frames of other videos whose object classes overlap
              the anchor's most (Jaccard, ties broken at random), negatives drawn from the least similar half;
    "random"  positives and negatives are any frames of other videos.
    In small worlds an anchor whose sounding class no other video has is left out of "oracle"."""
    from moca.train.data import AnchorPairs

    keys = sorted(world.train_truths)
    truths = [world.train_truths[key] for key in keys]
    classes = np.array([t.sounding_class for t in truths])
    videos = np.array([t.video for t in truths])
    present = np.zeros((len(keys), world.synth.classes), bool)
    for i, t in enumerate(truths):
        present[i, list(t.object_classes)] = True
    rng = np.random.default_rng([seed, world.seed])
    entries = []
    for i, key in enumerate(keys):
        other = videos != videos[i]
        if kind == "visual":
            overlap = (present & present[i]).sum(1) / (present | present[i]).sum(1) + 1e-6 * rng.random(len(keys))
            ranked = [j for j in np.argsort(-overlap) if other[j]]
            pick_pos = ranked[:k]
            pick_neg = rng.choice(ranked[len(ranked) // 2 :], min(negatives, len(ranked) // 2), replace=False)
        else:
            same = other & (classes == classes[i]) if kind == "oracle" else other
            differ = other & (classes != classes[i]) if kind == "oracle" else other
            if not same.any() or not differ.any():
                continue
            pick_pos = rng.choice(np.flatnonzero(same), min(k, int(same.sum())), replace=False)
            pick_neg = rng.choice(np.flatnonzero(differ), min(negatives, int(differ.sum())), replace=False)
        entries.append(AnchorPairs(key, tuple(keys[j] for j in pick_pos), tuple(keys[j] for j in pick_neg)))
    return entries


def positive_share(world: World, pairs: list) -> tuple[float, float]:
    """(P(a positive shares the anchor's sounding class), the same for a random frame of another video)."""
    truths = world.train_truths
    shared = [truths[p].sounding_class == truths[e.anchor].sounding_class for e in pairs for p in e.positives]
    classes = np.array([t.sounding_class for t in truths.values()])
    videos = np.array([t.video for t in truths.values()])
    chance = [np.mean(classes[videos != v] == c) for c, v in zip(classes, videos)]
    return float(np.mean(shared)), float(np.mean(chance))


class ShuffledAudio:
    """A frame store whose audio of every train frame is another video's (a fixed derangement of the videos)."""

    def __init__(self, store: Any, world: World, seed: int = 0):
        self.store = store
        videos = sorted({t.video for t in world.train_truths.values()})
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(videos))
        while len(videos) > 1 and (order == np.arange(len(videos))).any():
            order = rng.permutation(len(videos))
        donor = {v: videos[j] for v, j in zip(videos, order)}
        by_video: dict[str, list[str]] = {}
        for key in sorted(world.train_truths):
            by_video.setdefault(world.train_truths[key].video, []).append(key)
        self.source = {}
        for video, keys in by_video.items():
            theirs = by_video[donor[video]]
            self.source.update({k: theirs[min(i, len(theirs) - 1)] for i, k in enumerate(keys)})

    def image(self, key: str) -> torch.Tensor:
        return self.store.image(key)

    def audio(self, key: str) -> torch.Tensor:
        return self.store.audio(self.source[key])


# ------------------------------------------------------------------------------------------------ training


class RegionMargins:
    """Inspector for the training loop: the PMA pixel margin mean_j best(a, p_j) - mean_k best(a, n_k) (NCC) and
    the relevance mass, split by the anchor's region (ground truth used for logging only, never for training)."""

    def __init__(self, world: World, loss: LossConfig):
        self.world, self.loss = world, loss

    def __call__(self, batch: dict[str, Any], anchor: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                 audio_emb: torch.Tensor) -> dict[str, float]:
        from moca.losses import audio_relevance, relevance_weights

        a = anchor.flatten(1, 2)
        margin = (best_matches(a.unsqueeze(1), positives.flatten(2, 3), "ncc").mean(1)
                  - best_matches(a.unsqueeze(1), negatives.flatten(2, 3), "ncc").mean(1))  # (b, N)
        weights = relevance_weights(audio_relevance(a, audio_emb), self.loss)
        regions = torch.from_numpy(np.stack([self.world.train_truths[k].regions.ravel() for k in batch["anchor_key"]]))
        out = {}
        for name, region in (("background", probe.BACKGROUND), ("sounding", probe.SOUNDING),
                             ("distractor", probe.DISTRACTOR)):
            inside = regions == region
            rows = inside.any(1)
            if rows.any():
                out[f"margin/{name}"] = float(((margin * inside).sum(1)[rows] / inside.sum(1)[rows]).mean())
            out[f"relevance/{name}"] = float((weights * inside).sum(1).mean())
        return out


def _loop_config(cfg: ProofConfig, anchors: int, seed: int, cache: Path) -> Any:
    from moca.train.config import LoopConfig

    epochs = math.ceil(cfg.steps / max(1, anchors // cfg.batch_size))
    return LoopConfig(lr=cfg.lr, batch_size=cfg.batch_size, epochs=epochs, max_steps=cfg.steps,
                      warmup_steps=cfg.warmup_steps, seed=seed, checkpoint_every=cfg.steps, keep_last=1,
                      tracking=False, cache_prefix=True, cache_dir=str(cache), device="cpu", bf16=False)


def _cache_id(world: World, bb: Backbone, audio: str) -> str:
    from moca.config import config_hash

    return config_hash({"weights": bb.sha256, "cut": 2, "world": str(world.root.resolve()), "audio": audio})


def train_pairs_arm(world: World, bb: Backbone, pairs: list, loss: LossConfig, cfg: ProofConfig, seed: int,
                    out: Path, work: Path, shuffled: bool = False) -> tuple[Any, list[dict[str, float]]]:
    """One MoCA run through the real training loop (`moca.train.loop.train`); returns the model and its history."""
    import shutil

    from moca.data.datasets import TrainFrames
    from moca.train.data import PairDataset
    from moca.train.loop import train

    store = TrainFrames(world.root, "s4", "train")
    store = ShuffledAudio(store, world) if shuffled else store
    dataset = PairDataset(pairs, store, seed=seed, positives=loss.positives, negatives=loss.negatives)
    model = bb.model(seed)
    shutil.rmtree(out, ignore_errors=True)  # a fresh run each time: the harness compares arms, never resumes
    result = train(model, PairObjective(loss), dataset, _loop_config(cfg, len(dataset), seed, work / "cache"), out,
                   config_hash="proof", model_id=_cache_id(world, bb, "shuffled" if shuffled else "own"),
                   inspect=RegionMargins(world, loss))
    return model, result.history


def train_supervised(world: World, bb: Backbone, cfg: ProofConfig, seed: int, work: Path
                     ) -> tuple[Any, list[dict[str, float]]]:
    """The CEILING: the same adapters, budget and schedule, trained with BCE on H / tau against the sounding
    patches (uses masks: not MoCA, not unsupervised)."""
    from moca.data.datasets import TrainFrames
    from moca.models import audio_pixel_map
    from moca.train.cache import FeatureCache
    from moca.train.loop import lr_factor

    store = TrainFrames(world.root, "s4", "train")
    keys = sorted(world.train_truths)
    model = bb.model(seed)
    model_id = _cache_id(world, bb, "own")
    visual = FeatureCache("visual_prefix", lambda x: (model.visual_prefix(x),), store.image, model_id, work / "cache")
    audio = FeatureCache("audio", model.encode_audio, store.audio, model_id, work / "cache")
    visual.warm(keys, torch.device("cpu"))
    audio.warm(keys, torch.device("cpu"))
    targets = torch.from_numpy(np.stack([world.train_truths[k].regions.ravel() == probe.SOUNDING for k in keys]))
    params = list(model.trainable_parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    loop = _loop_config(cfg, len(keys), seed, work / "cache")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.steps, loop))
    rng = np.random.default_rng(seed)
    history = []
    for _ in range(cfg.steps):
        chosen = rng.choice(len(keys), cfg.batch_size, replace=False)
        batch_keys = [keys[i] for i in chosen]
        (prefix,) = visual.get(batch_keys, torch.device("cpu"))
        tokens, emb = audio.get(batch_keys, torch.device("cpu"))
        maps = audio_pixel_map(model.visual_suffix(prefix, tokens), emb).flatten(1)
        target = targets[chosen].float()
        balance = (1 - target).sum() / target.sum().clamp_min(1)  # ~25 background patches per sounding one
        loss = torch.nn.functional.binary_cross_entropy_with_logits(maps / cfg.supervised_tau, target,
                                                                    pos_weight=balance)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        history.append({"loss": float(loss.detach())})
    return model.eval(), history


# ------------------------------------------------------------------------------------------------ results


@dataclass
class Run:
    arm: str
    variant: str
    data_seed: int
    seed: int
    videos: list[str]
    own: np.ndarray  # (V, 3) auc, pointing, miou per test video
    mismatched: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def means(self, audio: str = "own") -> np.ndarray:
        return np.nanmean(getattr(self, audio), axis=0)


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % Student-t interval of the mean (the seed interval); a single value has no interval."""
    from scipy import stats

    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def _per_video(runs: list[Run], audio: str) -> np.ndarray:
    """(all test videos of all data seeds, 3): each video's metric averaged over the training seeds."""
    blocks = []
    for data_seed in sorted({r.data_seed for r in runs}):
        chosen = [getattr(r, audio) for r in runs if r.data_seed == data_seed]
        blocks.append(np.nanmean(np.stack(chosen), axis=0))
    return np.concatenate(blocks)


def summarise(runs: list[Run], baseline: list[Run], samples: int) -> dict[str, Any]:
    """Means with video-bootstrap and seed intervals, and paired differences to `baseline` (gates 0)."""
    out: dict[str, Any] = {"runs": len(runs)}
    for audio in ("own", "mismatched"):
        videos = _per_video(runs, audio)
        base = _per_video(baseline, audio)
        for j, metric in enumerate(probe.METRICS):
            mean, low, high = probe.bootstrap_ci(videos[:, j], samples)
            _, seed_low, seed_high = _t_interval(np.array([r.means(audio)[j] for r in runs]))
            delta = probe.bootstrap_ci(videos[:, j] - base[:, j], samples)
            out[f"{metric}/{audio}"] = {"mean": mean, "video_ci": [low, high], "seed_ci": [seed_low, seed_high],
                                        "delta_vs_none": delta[0], "delta_vs_none_ci": [delta[1], delta[2]]}
    return out


def paired_difference(runs: list[Run], others: list[Run], metric: str, audio: str = "own") -> dict[str, Any]:
    """Run-level differences paired by (data seed, seed) (or by data seed against a seedless arm), with the 95 %
    t interval: "beats X by more than the seed CI" means the interval's low end is above 0."""
    j = probe.METRICS.index(metric)
    by_key = {(r.data_seed, r.seed): r.means(audio)[j] for r in others}
    by_data = {r.data_seed: r.means(audio)[j] for r in others}
    diffs = [r.means(audio)[j] - by_key.get((r.data_seed, r.seed), by_data.get(r.data_seed, np.nan)) for r in runs]
    mean, low, high = _t_interval(np.array(diffs))
    return {"mean": mean, "ci": [low, high], "n": len(diffs), "beats": bool(low > 0)}


def verdict(groups: dict[str, list[Run]], default: str = "default") -> dict[str, Any]:
    """Issue 11's pass criterion for the default objective with mined pairs (docs/training.md)."""
    mined = groups.get(f"mined/{default}")
    if not mined:
        return {"measured": False}
    result: dict[str, Any] = {"measured": True, "comparisons": {}}
    passed = True
    for control in ("none", f"random/{default}", f"shuffled/{default}"):
        if control not in groups:
            passed = False
            continue
        for metric in ("auc", "pointing"):
            found = paired_difference(mined, groups[control], metric)
            result["comparisons"][f"{metric} vs {control.split('/')[0]}"] = found
            passed &= found["beats"]
    if "none" in groups:
        for metric in ("auc", "pointing"):
            found = paired_difference(mined, groups["none"], metric, "mismatched")
            # the gain must vanish: with a mismatched audio the trained map is not better than the untrained one
            found["vanishes"] = not found["beats"]
            result["comparisons"][f"{metric} mismatched vs none"] = found
            passed &= found["vanishes"]
    result["passed"] = passed
    return result


def table(summaries: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per arm/variant, mean [video CI] for own audio, means for mismatched, deltas vs none."""
    head = ("| arm / variant | runs | AUC | pointing | mIoU | AUC mism. | pointing mism. | mIoU mism. "
            "| ΔAUC vs none | Δpointing vs none |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]

    def cell(v: dict[str, Any]) -> str:
        return f"{v['mean']:.3f} [{v['video_ci'][0]:.3f}, {v['video_ci'][1]:.3f}]"

    def delta(v: dict[str, Any]) -> str:
        return f"{v['delta_vs_none']:+.3f} [{v['delta_vs_none_ci'][0]:+.3f}, {v['delta_vs_none_ci'][1]:+.3f}]"

    for name, s in summaries.items():
        rows.append(f"| {name} | {s['runs']} | {cell(s['auc/own'])} | {cell(s['pointing/own'])} | "
                    f"{cell(s['miou/own'])} | {s['auc/mismatched']['mean']:.3f} | "
                    f"{s['pointing/mismatched']['mean']:.3f} | {s['miou/mismatched']['mean']:.3f} | "
                    f"{delta(s['auc/own'])} | {delta(s['pointing/own'])} |")
    return "\n".join(rows)


def history_summary(history: list[dict[str, float]], every: int = 25) -> dict[str, Any]:
    """First and last tenth of every logged quantity, and a trace every `every` steps (the JSON stays small)."""
    if not history:
        return {}
    keys = sorted({k for h in history for k in h})
    tenth = max(1, len(history) // 10)

    def mean(rows: list[dict[str, float]], key: str) -> float:
        values = [h[key] for h in rows if key in h]
        return float(np.mean(values)) if values else float("nan")

    return {"first": {k: mean(history[:tenth], k) for k in keys}, "last": {k: mean(history[-tenth:], k) for k in keys},
            "trace": {k: [round(mean(history[i : i + every], k), 5) for i in range(0, len(history), every)]
                      for k in keys}}


def maps_figure(world: World, maps: dict[str, torch.Tensor], out: Path, frames: int = 6) -> Path:
    """A grid: rows are test frames (one per video), columns the frame with the sounding object outlined in green
    (distractors in white) and each model's audio-pixel map over it (jet, min-max normalised per frame)."""
    from moca.data.datasets import EvalFrames
    from moca.infer.maps import normalise_map, upsample
    from moca.infer.outputs import load_frame
    from moca.report.figures import _pyplot

    dataset = EvalFrames(world.root, "s4", "test", with_audio=False)
    first = list({t.video: i for i, t in reversed(list(enumerate(world.test_truths)))}.values())[::-1][:frames]
    plt = _pyplot()
    columns = ["frame", *maps]
    fig, axes = plt.subplots(len(first), len(columns), figsize=(1.9 * len(columns), 1.9 * len(first)), squeeze=False)
    for row, index in zip(axes, first):
        rgb = load_frame(dataset.entries[index].frame, "s4")
        truth = world.test_truths[index]
        for axis, name in zip(row, columns):
            axis.imshow(rgb)
            if name == "frame":
                axis.contour(truth.mask, levels=[0.5], colors="lime", linewidths=1.0)
            else:
                heat = upsample(normalise_map(maps[name][index : index + 1].float()), rgb.shape[:2])[0].numpy()
                axis.imshow(heat, cmap="jet", alpha=0.55, vmin=0, vmax=1)
                axis.contour(truth.mask, levels=[0.5], colors="white", linewidths=0.6)
            axis.set_xticks([])
            axis.set_yticks([])
    for axis, name in zip(axes[0], columns):
        axis.set_title(name, fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


# --------------------------------------------------------------------------------------------------- main


def _variant_configs(cfg: ProofConfig) -> dict[str, LossConfig]:
    """"default" (cfg.loss) and every named variant, a LossConfig each."""
    variants = {"default": cfg.loss}
    for name, overrides in cfg.variants.items():
        variants[name] = replace(cfg.loss, **overrides)
    return variants


def gates(world: World, bb: Backbone, mined: list, visual: list) -> dict[str, Any]:
    """What must hold before any training can work: measured on this world, printed before the arms."""
    model = bb.model(0)
    share, chance = positive_share(world, mined)
    start = probe.video_means(probe.frame_scores(test_maps(world, model), world.test_truths), world.test_truths)[1]
    with torch.no_grad():
        dense = model.visual_suffix(world.test_prefix, world.test_tokens)
    found = {"mined_positive_shares_sounding_class": share, "chance": chance,
             "visual_miner_shares_sounding_class": positive_share(world, visual)[0],
             "audio_to_visual_class_match": probe.class_match(dense, world.test_emb, world.test_truths,
                                                              world.synth.classes),
             "class_match_chance": 1 / world.synth.classes}
    for j, metric in enumerate(probe.METRICS):
        mean, low, high = probe.bootstrap_ci(start[:, j])
        found[f"start_{metric}"] = {"mean": mean, "video_ci": [low, high]}
    return found


def run_proof(work: Path, cfg: ProofConfig, bb: Backbone, dino: Path | None = None,
              figure: Path | None = None) -> dict[str, Any]:
    """Every arm x variant x data seed x seed; returns the JSON-able report (gates, summaries, verdict, runs)."""
    variants = _variant_configs(cfg)
    runs: list[Run] = []
    report: dict[str, Any] = {"config": _plain(cfg), "backbone": {"path": bb.path.name, "sha256": bb.sha256},
                              "dino": None if dino is None else {"path": dino.name, "sha256": sha256_file(dino)},
                              "gates": {}}
    for data_seed in cfg.data_seeds:
        world = make_world(work, cfg.videos, data_seed, cfg.scene_context)
        encode_test(world, bb.model(0))
        mismatch = probe.mismatched_audio(world.test_truths, cfg.mismatch_seed)
        mined = mined_pairs(world, work, dino, cfg)
        pairs = {"mined": mined, "shuffled": mined}
        for kind in ("visual", "oracle", "random"):
            pairs[kind] = labelled_pairs(world, kind, cfg.mining_k, cfg.mining_negatives, seed=0)
        report["gates"][str(data_seed)] = found = gates(world, bb, mined, pairs["visual"])
        log.info("gates, world %d: %s", data_seed, json.dumps(found))
        print(f"gates (world {data_seed}): {_gate_line(found)}", flush=True)
        figure_maps: dict[str, torch.Tensor] = {}
        if "none" in cfg.arms and not cfg.variants_only:
            model = bb.model(0)
            scores = score(world, model, mismatch)
            runs.append(Run("none", "default", data_seed, 0, [], scores["own"], scores["mismatched"]))
            figure_maps["none"] = test_maps(world, model)
        jobs = [] if cfg.variants_only else [(arm, "default") for arm in cfg.arms if arm != "none"]
        jobs += [(arm, name) for name in variants if name != "default" for arm in PAIR_ARMS if arm in cfg.arms]
        for arm, name in jobs:
            for seed in cfg.seeds:
                started = time.process_time()
                out = work / "runs" / f"{arm}-{name}-{data_seed}-{seed}"
                if arm == "supervised":
                    model, history = train_supervised(world, bb, cfg, seed, work)
                else:
                    model, history = train_pairs_arm(world, bb, pairs[arm], variants[name], cfg, seed, out, work,
                                                     shuffled=arm == "shuffled")
                scores = score(world, model, mismatch)
                run = Run(arm, name, data_seed, seed, [], scores["own"], scores["mismatched"], history,
                          time.process_time() - started)
                runs.append(run)
                print(f"{arm}/{name} world {data_seed} seed {seed}: own {_means(run.means())} | mismatched "
                      f"{_means(run.means('mismatched'))} | {run.seconds:.0f} s CPU", flush=True)
                if seed == cfg.seeds[0] and name == "default":
                    figure_maps[arm] = test_maps(world, model)
                    if arm == "mined":
                        figure_maps["mined, mismatched audio"] = test_maps(world, model, mismatch)
        if figure is not None and data_seed == cfg.data_seeds[0] and figure_maps:
            maps_figure(world, figure_maps, figure)
    report["runs"] = [_run_record(r) for r in runs]
    return finish(report, runs, cfg.bootstrap)


def finish(report: dict[str, Any], runs: list[Run], samples: int) -> dict[str, Any]:
    """Summaries, verdict and table from the runs (also what `--merge` recomputes)."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.arm if run.arm == "none" else f"{run.arm}/{run.variant}", []).append(run)
    baseline = groups.get("none", [])
    report["summaries"] = {name: summarise(group, baseline, samples) for name, group in groups.items()}
    report["verdict"] = verdict(groups)
    report["table"] = table(report["summaries"])
    return report


def _run_record(run: Run) -> dict[str, Any]:
    def rounded(values: np.ndarray) -> list[list[float | None]]:
        return [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in values]

    return {"arm": run.arm, "variant": run.variant, "data_seed": run.data_seed, "seed": run.seed,
            "own": dict(zip(probe.METRICS, map(float, run.means()))),
            "mismatched": dict(zip(probe.METRICS, map(float, run.means("mismatched")))),
            "per_video": {"own": rounded(run.own), "mismatched": rounded(run.mismatched)},
            "cpu_seconds": run.seconds, "history": history_summary(run.history)}


def merge_reports(paths: list[Path], samples: int = 2000) -> dict[str, Any]:
    """One report from several (e.g. one per data seed, or a rerun of some arms): runs pooled, gates kept per
    world, summaries and verdict recomputed. A run present twice (same arm, variant, data seed, seed) is refused."""
    reports = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    runs, seen = [], set()
    merged: dict[str, Any] = {"merged_from": [Path(p).name for p in paths], "config": reports[0]["config"],
                              "backbone": reports[0]["backbone"], "dino": reports[0]["dino"], "gates": {}}
    for report in reports:
        if report["backbone"] != merged["backbone"]:
            raise ValueError(f"reports use different backbones: {report['backbone']} vs {merged['backbone']}")
        merged["gates"].update(report["gates"])
        for record in report["runs"]:
            key = (record["arm"], record["variant"], record["data_seed"], record["seed"])
            if key in seen:
                raise ValueError(f"run {key} appears twice")
            seen.add(key)
            arrays = {a: np.array(record["per_video"][a], dtype=float) for a in ("own", "mismatched")}
            runs.append(Run(record["arm"], record["variant"], record["data_seed"], record["seed"], [],
                            arrays["own"], arrays["mismatched"], seconds=record["cpu_seconds"]))
    merged["runs"] = [r for report in reports for r in report["runs"]]
    return finish(merged, runs, samples)


def _means(values: np.ndarray) -> str:
    return " ".join(f"{m} {v:.3f}" for m, v in zip(probe.METRICS, values))


def _gate_line(found: dict[str, Any]) -> str:
    return (f"P(mined positive shares the sounding class) {found['mined_positive_shares_sounding_class']:.3f} "
            f"(chance {found['chance']:.3f}, best visual miner {found['visual_miner_shares_sounding_class']:.3f}); "
            f"audio->visual class match {found['audio_to_visual_class_match']:.3f} "
            f"(chance {found['class_match_chance']:.3f}); start: "
            + ", ".join(f"{m} {found[f'start_{m}']['mean']:.3f} [{found[f'start_{m}']['video_ci'][0]:.3f}, "
                        f"{found[f'start_{m}']['video_ci'][1]:.3f}]" for m in probe.METRICS))


def _plain(cfg: ProofConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg), default=str))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for worlds, stand-ins, caches and runs")
    parser.add_argument("--imagebind", type=Path, default=None, help="STAND-IN tiny ImageBind weights (a file)")
    parser.add_argument("--pretrain-steps", type=int, default=1000,
                        help="without --imagebind: pre-train the stand-in this long here (0: random backbone)")
    parser.add_argument("--pretrain-videos", type=int, default=1000, help="size of the stand-in's separate corpus")
    parser.add_argument("--dino", type=Path, default=None, help="DINO stand-in weights for mining (default: random)")
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--scene-context", type=float, default=0.0,
                        help="P(a video's background is its sounding class's scene), moca.data.synth")
    parser.add_argument("--data-seeds", type=_ints, default=(0, 1))
    parser.add_argument("--seeds", type=_ints, default=(0, 1, 2))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {ARMS}")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                        help='a loss variant, e.g. topk={"relevance": "topk", "positives": 1, "negatives": 1}')
    parser.add_argument("--variants-only", action="store_true", help="train only the --variant runs (no default)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here (default: WORK/proof.json)")
    parser.add_argument("--figure", type=Path, default=None, help="maps grid PNG (default: WORK/proof_maps.png)")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="JSON",
                        help="only merge these reports (e.g. one per data seed) into --json; nothing is trained")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)  # many small ops: one thread is fastest, and the machines are shared

    if args.merge:
        report = merge_reports(args.merge)
        write_json(args.json or args.work / "proof.json", report)
        print(report["table"])
        print("verdict:", json.dumps(report["verdict"], indent=1))
        return
    arms = tuple(a for a in args.arms.split(",") if a)
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"--arms: unknown {unknown}; choose from {ARMS}")
    variants = {}
    for text in args.variant:
        name, _, overrides = text.partition("=")
        try:
            variants[name] = json.loads(overrides)
            replace(LossConfig(), **variants[name])
        except (json.JSONDecodeError, TypeError) as exc:
            parser.error(f"--variant {text!r}: {exc}")
    cfg = ProofConfig(videos=args.videos, scene_context=args.scene_context, data_seeds=args.data_seeds,
                      seeds=args.seeds, steps=args.steps, batch_size=args.batch_size, lr=args.lr, arms=arms,
                      variants=variants, variants_only=args.variants_only)
    args.work.mkdir(parents=True, exist_ok=True)
    bb = backbone(args.work, args.imagebind, args.pretrain_steps, args.pretrain_videos)
    report = run_proof(args.work, cfg, bb, args.dino, args.figure or args.work / "proof_maps.png")
    write_json(args.json or args.work / "proof.json", report)
    print(report["table"])
    print("verdict:", json.dumps(report["verdict"], indent=1))


if __name__ == "__main__":
    main()
