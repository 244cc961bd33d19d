"""`moca infer`: audio-pixel maps -> coarse masks -> MPM with SAM -> prediction files (method.md items 8-9).

    from moca.infer import run_inference
    manifest = run_inference("runs/train/out", "data", "s4", "test", "preds/moca", {"mpm": "points"})

Writes, per predicted frame, `OUT/{key}.npy` + `OUT/{key}.png` (moca.infer.outputs), the report's side files
`OUT/_maps/{key}.npy` (normalised h x w audio-pixel map) and `OUT/_coarse/{key}.png`, and `OUT/infer_manifest.json`.
Frames whose outputs already exist and load are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moca.config import config_hash, to_dict
from moca.data.layout import FrameRef, check_benchmark
from moca.errors import DataError
from moca.infer.config import InferConfig, infer_config
from moca.infer.maps import kmeans_mask, normalise_map, patch_to_pixel, peak_points, threshold_mask, upsample
from moca.infer.mpm import match_proposals
from moca.infer.outputs import (
    AVSS_EVAL_SIZE,
    claim_output,
    frames_to_predict,
    load_frame,
    prediction_done,
    write_prediction,
    write_side_array,
    write_side_mask,
)
from moca.infer.sam import SamProposer, automatic_masks, build_sam
from moca.io import write_json
from moca.progress import progress

log = logging.getLogger(__name__)
MANIFEST = "infer_manifest.json"


@dataclass
class FrameResult:
    patch_map: torch.Tensor  # (h, w) normalised audio-pixel map
    coarse: torch.Tensor  # (H, W) bool
    mask: torch.Tensor  # (H, W) bool, the prediction
    proposals: int  # SAM proposals considered
    kept: int  # proposals kept by MPM
    fell_back: bool  # MPM kept none and returned the coarse mask


def coarse_mask(patch_map: torch.Tensor, dense: torch.Tensor, size: tuple[int, int], cfg: InferConfig) -> torch.Tensor:
    """The coarse mask (H, W) bool of one frame from its normalised patch map (h, w) and features (h, w, D)."""
    if cfg.coarse == "kmeans":
        return kmeans_mask(dense, patch_map, size, cfg.threshold, cfg.kmeans_k, cfg.kmeans_iters)
    return threshold_mask(upsample(patch_map[None], size)[0], cfg.threshold)


def proposals_for(proposer: SamProposer, rgb: np.ndarray, patch_map: torch.Tensor, cfg: InferConfig) -> torch.Tensor:
    """SAM proposals (N, H, W) bool for frame `rgb`: point prompts at peaks of H, or the automatic generator."""
    size = rgb.shape[:2]
    proposer.set_frame(rgb)
    if cfg.mpm == "auto":
        return automatic_masks(proposer.automatic(), size)
    peaks = peak_points(patch_map, cfg.num_points, cfg.threshold)
    masks, _iou = proposer.points(patch_to_pixel(peaks, tuple(patch_map.shape), size))
    return masks.cpu()


def segment_frame(rgb: np.ndarray, patch_map: torch.Tensor, dense: torch.Tensor, cfg: InferConfig,
                  proposer: SamProposer | None) -> FrameResult:
    """Coarse mask and MPM for one frame (the model's outputs already computed)."""
    size = rgb.shape[:2]
    coarse = coarse_mask(patch_map, dense, size, cfg)
    if cfg.mpm == "none" or proposer is None:
        return FrameResult(patch_map, coarse, coarse, 0, 0, False)
    proposals = proposals_for(proposer, rgb, patch_map, cfg)
    match = match_proposals(proposals, coarse, cfg.keep_ratio)
    return FrameResult(patch_map, coarse, match.mask, len(proposals), int(match.kept.sum()), match.fell_back)


def _expected_size(frame: FrameRef, benchmark: str) -> tuple[int, int] | None:
    """The prediction size without decoding the frame (PNG/JPEG header only); None when unreadable."""
    if benchmark == "avss":
        return AVSS_EVAL_SIZE
    from PIL import Image

    try:
        with Image.open(frame.image) as image:
            return image.size[::-1]
    except (OSError, ValueError):
        return None  # load_frame will raise the DataError that names the file


def _model_inputs(rgbs: list[np.ndarray], audio: list[torch.Tensor], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    from moca.data.datasets import avss_eval_image

    # The whole frame resized to 224 (no centre crop), so the 16x16 map covers every pixel it is upsampled onto.
    return torch.stack([avss_eval_image(rgb) for rgb in rgbs]).to(device), torch.stack(audio).to(device)


@torch.no_grad()
def run_inference(model_uri_or_dir: str | Path, data_root: str | Path, benchmark: str, split: str,
                  out_dir: str | Path, config: InferConfig | Mapping[str, Any] | None = None) -> dict:
    """Predict every annotated frame of `benchmark`/`split`; returns the manifest written to OUT/infer_manifest.json."""
    from moca.data.datasets import WaveformAudio
    from moca.infer.model import load_model
    from moca.models import audio_pixel_map

    cfg = infer_config(config)
    data_root, out = Path(data_root), Path(out_dir)
    check_benchmark(benchmark)
    if not data_root.is_dir():
        raise DataError(data_root, "data root not found")
    started = time.perf_counter()
    # SAM first: a refused SAM setting fails before the (much larger) backbone is built
    proposer = None if cfg.mpm == "none" else SamProposer(build_sam(cfg.sam, cfg.device, "infer.sam.weights"), cfg.sam)
    loaded = load_model(model_uri_or_dir, cfg.device)
    audio_fn = WaveformAudio(cfg.audio or loaded.audio)
    videos = list(frames_to_predict(data_root, benchmark, split, cfg.all_frames))
    if not videos:
        raise DataError(data_root, f"no frames to predict in {benchmark}/{split}")
    plain = _plain(cfg)
    claim_output(out, {"kind": "moca-infer", "adapters_sha256": loaded.adapters_sha256,
                       "config_hash": config_hash(plain), "benchmark": benchmark, "split": split})
    counts = {"frames": 0, "predicted": 0, "skipped_existing": 0, "proposals": 0, "kept": 0, "fallbacks": 0}
    for video, frames in progress(videos, desc=f"infer {benchmark}/{split}"):
        counts["frames"] += len(frames)
        todo = [f for f in frames if not prediction_done(out, f.key, _expected_size(f, benchmark) or (-1, -1))]
        counts["skipped_existing"] += len(frames) - len(todo)
        if not todo:
            continue
        rgbs = [load_frame(f, benchmark) for f in todo]
        images, audio = _model_inputs(rgbs, [audio_fn(video, f.time_s) for f in todo], cfg.device)
        output = loaded.model(images, audio)
        patch_maps = normalise_map(audio_pixel_map(output.dense, output.audio_emb)).cpu()
        for i, frame in enumerate(todo):
            result = segment_frame(rgbs[i], patch_maps[i], output.dense[i].cpu(), cfg, proposer)
            write_side_array(out, "maps", frame.key, result.patch_map.numpy().astype(np.float32))
            write_side_mask(out, "coarse", frame.key, result.coarse.numpy())
            write_prediction(out, frame.key, result.mask.numpy(), cfg.logit)
            counts["predicted"] += 1
            counts["proposals"] += result.proposals
            counts["kept"] += result.kept
            counts["fallbacks"] += int(result.fell_back)
    manifest = {
        "kind": "moca-infer",
        "method": f"moca-mpm-{cfg.mpm}" if cfg.mpm != "none" else "moca-coarse",
        "model": {"source": str(model_uri_or_dir), "adapters_sha256": loaded.adapters_sha256,
                  "backbone": loaded.model.config.backbone},
        "data": {"root": str(data_root), "benchmark": benchmark, "split": split},
        "config": plain,
        "config_hash": config_hash(plain),
        "counts": counts,
        "sam_embeddings": proposer.embeddings_computed if proposer else 0,
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(out / MANIFEST, manifest)
    log.info("infer %s/%s: %s -> %s", benchmark, split, counts, out)
    return manifest


def _plain(cfg: InferConfig) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(to_dict(cfg), default=str))


_MODEL_CACHE: dict[str, Any] = {}


def _model_key(model_dir: Path) -> str:
    """The model's identity: its adapters, config and backbone manifest, so the copy MLflow makes of a model folder
    (validating the serving example right after moca checked it) reuses the backbone already built."""
    from moca.infer.model import find_adapters
    from moca.io import sha256_file

    adapters = find_adapters(model_dir)
    beside = [adapters.parent / name for name in ("config.yaml", "backbones.json")]
    return ":".join(sha256_file(f) for f in [adapters, *beside] if f.is_file())


@torch.no_grad()
def predict_frames(model_dir: str | Path, model_input: Any) -> list[np.ndarray]:
    """The MLflow pyfunc's predict (the serving contract, docs/tracking.md): rows of `image` (encoded PNG or JPEG
    bytes) and `audio` (WAV bytes) -> one normalised audio-pixel map (H, W) float32 in [0, 1] per row, at the
    image's size (audio: the whole clip, as ImageBind embeds one)."""
    from moca.data.audio import AudioConfig, frame_audio_input, load_waveform
    from moca.data.readers import read_image
    from moca.infer.model import load_model
    from moca.models import audio_pixel_map

    # Decode every input before building the model: a bad row fails in milliseconds, naming itself, not after
    # building a 1.2 B-parameter backbone.
    rows = [(read_image(f"input row {i}: image", bytes(image)),
             load_waveform(f"input row {i}: audio", AudioConfig().sample_rate, bytes(audio)))  # ImageBind: 16 kHz
            for i, (image, audio) in enumerate(zip(model_input["image"], model_input["audio"]))]  # fmt: skip
    key = _model_key(Path(model_dir))
    if key not in _MODEL_CACHE:  # pyfunc calls predict many times; building the backbone once is enough
        _MODEL_CACHE[key] = load_model(model_dir)
    loaded = _MODEL_CACHE[key]
    audio_cfg = replace(loaded.audio, window="clip")  # no frame time: ImageBind's clips over the whole file
    maps = []
    for rgb, waveform in rows:
        audio = frame_audio_input(waveform, None, audio_cfg)
        images, audio = _model_inputs([rgb], [audio], "cpu")
        output = loaded.model(images, audio)
        patch_map = normalise_map(audio_pixel_map(output.dense, output.audio_emb))
        maps.append(upsample(patch_map, rgb.shape[:2])[0].numpy().astype(np.float32))
    return maps
