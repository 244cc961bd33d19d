"""`moca baseline NAME`: training-free baselines and floors, written in the prediction layout of `moca infer`.

A registry of builders, in the style of segment-anything's `sam_model_registry`: each takes the config and
returns the method's reported name and a per-frame function (video, frame, rgb) -> (H, W) mask.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from moca.baselines.config import BaselineConfig, baseline_config, load_plugin
from moca.baselines.floors import all_foreground, centre_prior
from moca.config import config_hash
from moca.data.layout import FrameRef, VideoRef, check_benchmark
from moca.errors import ConfigError, DataError
from moca.infer.outputs import claim_output, frames_to_predict, load_frame, prediction_done, write_prediction
from moca.io import write_json
from moca.progress import progress

FramePredictor = Callable[[VideoRef, FrameRef, np.ndarray], np.ndarray]
MANIFEST = "baseline_manifest.json"


def _centre(cfg: BaselineConfig) -> tuple[str, FramePredictor]:
    return "centre-prior", lambda video, frame, rgb: centre_prior(rgb.shape[:2], cfg.centre_fraction)


def _all_foreground(cfg: BaselineConfig) -> tuple[str, FramePredictor]:
    return "all-foreground", lambda video, frame, rgb: all_foreground(rgb.shape[:2])


def _proposer(cfg: BaselineConfig) -> Any:
    from moca.infer.sam import SamProposer, build_sam

    return SamProposer(build_sam(cfg.sam, cfg.device, "baseline.sam.weights"), cfg.sam)


def _owod_bind(cfg: BaselineConfig) -> tuple[str, FramePredictor]:
    import torch

    from moca.baselines.owod_bind import OwodBind, SamAutoBoxes
    from moca.data.datasets import WaveformAudio
    from moca.models import build_model
    from moca.models.registry import usable_weights

    proposer = _proposer(cfg)
    if cfg.detector:
        name, boxes = "owod-bind", load_plugin(cfg.detector, "baseline.detector")
    else:  # no class-agnostic detector here: SAM's proposals stand in for its boxes, and the name says so
        name, boxes = "owod-bind-samboxes", SamAutoBoxes(proposer)
    weights = usable_weights(cfg.imagebind, cfg.imagebind_weights, "baseline.imagebind_weights")
    if weights is None:
        torch.manual_seed(0)  # random-init backbone (tests/demo): the same one every run
    imagebind = build_model(cfg.imagebind, weights).to(cfg.device)
    method = OwodBind(imagebind, proposer, boxes, cfg)
    audio_fn = WaveformAudio(cfg.audio)
    return name, lambda video, frame, rgb: method.predict(rgb, audio_fn(video, frame.time_s).to(cfg.device))


def _at_gdino_sam(cfg: BaselineConfig) -> tuple[str, FramePredictor]:
    from moca.baselines.at_gdino_sam import AtGdinoSam, plugins_from_config
    from moca.data.audio import load_waveform

    tagger, detector = plugins_from_config(cfg)  # fails with the plug-in instructions before any model loads
    method = AtGdinoSam(tagger, detector, _proposer(cfg), cfg)
    rate = cfg.audio.sample_rate
    return "at-gdino-sam", lambda video, frame, rgb: method.predict(rgb, load_waveform(video.audio, rate), rate)


BASELINES: dict[str, Callable[[BaselineConfig], tuple[str, FramePredictor]]] = {
    "centre": _centre,
    "all-foreground": _all_foreground,
    "owod-bind": _owod_bind,
    "at-gdino-sam": _at_gdino_sam,
}


def run_baseline(name: str, data_root: str | Path, benchmark: str, split: str, out_dir: str | Path,
                 config: BaselineConfig | Mapping[str, Any] | None = None,
                 predictor: tuple[str, FramePredictor] | None = None) -> dict:
    """Predict every annotated frame with baseline `name`; returns the manifest written to OUT/baseline_manifest.json.

    `predictor` replaces the registry's builder (tests and Python callers with their own plug-in objects)."""
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; available: {', '.join(BASELINES)}")
    cfg = baseline_config(config)
    data_root, out = Path(data_root), Path(out_dir)
    check_benchmark(benchmark)
    if not data_root.is_dir():
        raise DataError(data_root, "data root not found")
    videos = list(frames_to_predict(data_root, benchmark, split, cfg.all_frames))
    if not videos:
        raise DataError(data_root, f"no frames to predict in {benchmark}/{split}")
    started = time.perf_counter()
    method, predict = predictor or BASELINES[name](cfg)
    plain = _plain(cfg)
    claim_output(out, {"kind": "moca-baseline", "method": method, "config_hash": config_hash(plain),
                       "benchmark": benchmark, "split": split})
    counts = {"frames": 0, "predicted": 0, "skipped_existing": 0, "empty": 0}
    for video, frames in progress(videos, desc=f"baseline {method} {benchmark}/{split}"):
        for frame in frames:
            counts["frames"] += 1
            rgb = load_frame(frame, benchmark)
            if prediction_done(out, frame.key, rgb.shape[:2]):
                counts["skipped_existing"] += 1
                continue
            mask = np.asarray(predict(video, frame, rgb))
            write_prediction(out, frame.key, mask, cfg.logit)
            counts["predicted"] += 1
            counts["empty"] += int(not mask.any())
    manifest = {"kind": "moca-baseline", "method": method, "baseline": name,
                "data": {"root": str(data_root), "benchmark": benchmark, "split": split},
                "config": plain, "config_hash": config_hash(plain), "counts": counts,
                "seconds": round(time.perf_counter() - started, 3)}
    write_json(out / MANIFEST, manifest)
    return manifest


def _plain(cfg: BaselineConfig) -> dict[str, Any]:
    import json

    from moca.config import to_dict

    return json.loads(json.dumps(to_dict(cfg), default=str))
