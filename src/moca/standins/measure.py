"""Measure every stand-in's gate on the held-out set, next to the random-init model of the same config.

    python -m moca.standins gates [--weights DIR] [--out FILE] [--videos 200]

The gate set is synthetic S4 with seed `GATE_SEED` (all videos in `train`, which mining reads); OWOD-BIND runs on
a second small set (seed `GATE_SEED + 1`, the usual 70/15/15 split) through `moca.baselines.run_baseline`, exactly
as `moca baseline owod-bind` does. Random-init models use seed 0, as the pipeline does without weights.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from moca.standins.corpus import GATE_SEED, SCENE_CONTEXT, CorpusFrame, corpus_config, ensure_corpus, load_frames
from moca.standins.gates import (
    FrameLabels,
    best_matches,
    binary_iou,
    centre_point,
    chance_rates,
    pair_rates,
    patch_owners,
    retrieval_class_match,
    sounding_auc,
    visual_ceiling,
)
from moca.standins.registry import AUTOMATIC_SAM, WEIGHTS_DIR, get_standin

log = logging.getLogger(__name__)

MINING_K = (5, 10)  # the demo's k and the method's default


def _random(model: str) -> torch.nn.Module:
    from moca.models import build_model

    torch.manual_seed(0)
    return build_model(model)


def dino_gate(root: Path, frames: list[CorpusFrame], weights: Any, work: Path) -> dict[str, Any]:
    """Mined-pair class rates through `moca.mining.mine_pairs` itself (the stand-in as a weights spec)."""
    from moca.mining import MiningConfig, mine_pairs

    labels = FrameLabels.from_frames(frames, 12)
    row = {f.key: i for i, f in enumerate(frames)}
    result: dict[str, Any] = {"chance": chance_rates(labels).as_dict(),
                              "visual_ceiling": {k: visual_ceiling(labels, k).as_dict() for k in MINING_K}}
    for name, spec in (("random_init", None), ("standin", weights)):
        for k in MINING_K:
            out = work / f"pairs-{name}-{k}"
            config = MiningConfig(model="dino_tiny", k=k, negatives=0, seed=0, weights=spec)
            mine_pairs(root, "s4", out, config, cache_dir=work / f"descriptors-{name}")  # described once for all k
            pairs = pd.read_parquet(out / "pairs.parquet")
            rates = pair_rates(labels, pairs.anchor_key.map(row).to_numpy(), pairs.positive_key.map(row).to_numpy())
            result.setdefault(name, {})[k] = rates.as_dict()
    return result


def sam_gate(frames: list[CorpusFrame], sam: torch.nn.Module, automatic_frames: int = 30) -> dict[str, Any]:
    """Point- and box-prompted mIoU against instance masks (objects of >= 64 px) through `SamProposer`, as MPM
    and OWOD-BIND prompt SAM; the automatic generator's proposals per frame and object recall (IoU >= 0.5)."""
    from moca.infer.config import SamConfig
    from moca.infer.sam import SamProposer, automatic_masks

    proposer = SamProposer(sam, SamConfig(model="sam_tiny"))
    point, box = [], []
    auto: dict[str, dict[str, list]] = {"default": {"n": [], "recall": []}, "demo": {"n": [], "recall": []}}
    for index, frame in enumerate(frames):
        objects = [frame.owner == i for i in range(len(frame.classes)) if (frame.owner == i).sum() >= 64]
        proposer.set_frame(frame.image)
        masks, _ = proposer.points(torch.tensor([centre_point(m) for m in objects]))
        point += [binary_iou(m.numpy(), o) for m, o in zip(masks, objects)]
        boxes = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                              for ys, xs in (np.nonzero(o) for o in objects)], dtype=torch.float32)
        masks, _ = proposer.boxes(boxes)
        box += [binary_iou(m.numpy(), o) for m, o in zip(masks, objects)]
        if index >= automatic_frames:
            continue
        for setting, overrides in (("default", {}), ("demo", AUTOMATIC_SAM)):
            proposer.use_config(SamConfig(model="sam_tiny", **overrides))
            found = proposer.automatic()
            auto[setting]["n"].append(len(found))
            matched = best_matches(automatic_masks(found, frame.owner.shape).numpy(), np.stack(objects))
            auto[setting]["recall"] += list(matched >= 0.5)
        proposer.use_config(SamConfig(model="sam_tiny"))
    return {"point_miou": float(np.mean(point)), "box_miou": float(np.mean(box)), "objects": len(point),
            "automatic": {s: {"masks_per_frame": float(np.mean(v["n"])), "frames": len(v["n"]),
                              "object_recall_iou50": float(np.mean(v["recall"]))} for s, v in auto.items()},
            "automatic_thresholds": {"default": "SAM's (pred_iou 0.88, stability 0.95, 32x32 points)",
                                     "demo": AUTOMATIC_SAM}}


@torch.no_grad()
def imagebind_gate(root: Path, frames: list[CorpusFrame], model: torch.nn.Module) -> dict[str, float]:
    """Sounding-vs-distractor AUC of the audio-pixel map (patch level, per frame, averaged) and audio -> image
    retrieval class match (other videos only; score = mean of the 8 best patch similarities)."""
    from moca.data.datasets import TrainFrames
    from moca.models import audio_pixel_map
    from moca.train.pretrain import dense_and_audio, multiple_instance_scores

    dataset = TrainFrames(root, "s4", "train")
    index = {entry.frame.key: i for i, entry in enumerate(dataset.entries)}
    dense, audio = [], []
    for start in range(0, len(frames), 16):
        items = [dataset[index[f.key]] for f in frames[start:start + 16]]
        d, a = dense_and_audio(model.eval(), torch.stack([it["image"] for it in items]),
                               torch.stack([it["audio"] for it in items]))
        dense.append(d)
        audio.append(a)
    dense_all, audio_all = torch.cat(dense), torch.cat(audio)
    grid = int(dense_all.shape[1] ** 0.5)
    heat = audio_pixel_map(dense_all.view(len(frames), grid, grid, -1), audio_all).numpy()
    aucs = [sounding_auc(h, patch_owners(f.owner, grid), f.sounding) for h, f in zip(heat, frames)]
    aucs = [a for a in aucs if a is not None]
    scores = multiple_instance_scores(dense_all, audio_all, top_k=8).T.numpy()  # (audio, image)
    sounding = np.array([f.sounding_class for f in frames])
    return {"sounding_vs_distractor_auc": float(np.mean(aucs)), "auc_frames": len(aucs),
            "audio_to_image_class_match": retrieval_class_match(scores, sounding, sounding,
                                                                np.array([f.video for f in frames])),
            "chance_class_match": float(np.mean([np.mean(sounding[np.array([g.video for g in frames]) != f.video]
                                                         == f.sounding_class) for f in frames]))}


def owod_bind_gate(work: Path, sam_weights: Any, imagebind_weights: Any, videos: int = 40) -> dict[str, Any]:
    """`moca baseline owod-bind` (SAM boxes variant) on a small held-out S4 test split through `run_baseline`:
    frames with an empty mask and mIoU, for random-init tiny models and for the stand-ins, with SAM's default
    generator thresholds and with the demo's lowered ones."""
    from moca.baselines import run_baseline
    from moca.data.synth import SynthConfig, synthesize
    from moca.evaluate import evaluate_predictions

    root = work / "owod-data"
    if not (root / "synth.json").is_file():
        synthesize(root, SynthConfig(benchmark="s4", videos=videos, seed=GATE_SEED + 1, scene_context=SCENE_CONTEXT))
    result: dict[str, Any] = {"data": {"videos": videos, "seed": GATE_SEED + 1, "split": "test",
                                       "scene_context": SCENE_CONTEXT}}
    for name, sam, bind in (("random_init", None, None), ("standin", sam_weights, imagebind_weights)):
        for setting, thresholds in (("default", {}), ("demo", AUTOMATIC_SAM)):
            out = work / f"owod-{name}-{setting}"
            config = {"imagebind": "imagebind_tiny", "imagebind_weights": bind,
                      "sam": {"model": "sam_tiny", "weights": sam, **thresholds}}
            manifest = run_baseline("owod-bind", root, "s4", "test", out, config)
            result.setdefault(name, {})[setting] = {
                "frames": manifest["counts"]["frames"], "empty": manifest["counts"]["empty"],
                "miou": evaluate_predictions(out, root, "s4", "test")["miou"], "method": manifest["method"]}
    return result


def measure_gates(work: Path, weights_dir: Path = WEIGHTS_DIR, videos: int = 200) -> dict[str, Any]:
    """Every gate, stand-in vs random init, with the CPU seconds each took."""
    from moca.models import build_model

    cfg = corpus_config(videos, GATE_SEED, SCENE_CONTEXT)
    root = ensure_corpus(work / "gate-set", cfg)
    frames = load_frames(root, cfg)
    first = [f for i, f in enumerate(frames) if i == 0 or frames[i - 1].video != f.video]  # one frame per video
    specs = {name: get_standin(name, weights_dir).weights(weights_dir)
             for name in ("dino_tiny_standin", "sam_tiny_standin", "imagebind_tiny_standin")}
    report: dict[str, Any] = {"gate_set": {"videos": videos, "seed": GATE_SEED, "frames": len(frames),
                                           "scene_context": cfg.scene_context},
                              "warning": "STAND-INS measured on synthetic data; NOT the released weights' numbers"}

    def timed(name: str, measure: Callable[[], Any]) -> None:
        begin = time.process_time()
        report[name] = measure()
        report[name]["cpu_s"] = round(time.process_time() - begin, 1)
        log.info("gate %s: %s", name, report[name])

    timed("dino", lambda: dino_gate(root, frames, specs["dino_tiny_standin"], work))
    timed("sam", lambda: {"random_init": sam_gate(first, _random("sam_tiny")),
                          "standin": sam_gate(first, build_model("sam_tiny", specs["sam_tiny_standin"]))})
    timed("imagebind", lambda: {"random_init": imagebind_gate(root, first, _random("imagebind_tiny")),
                                "standin": imagebind_gate(root, first, build_model("imagebind_tiny",
                                                                                   specs["imagebind_tiny_standin"]))})
    timed("owod_bind", lambda: owod_bind_gate(work, specs["sam_tiny_standin"], specs["imagebind_tiny_standin"]))
    return report
