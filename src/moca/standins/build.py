"""Build every stand-in from scratch: synthesise the corpus, train DINO, SAM and ImageBind stand-ins, write weights.

    python -m moca.standins build [--out DIR]     # default: the shipped folder, src/moca/standins/weights

Deterministic: one torch thread, fixed seeds, the corpus a pure function of its config, and files written through
an in-memory `torch.save` (its zip records carry no time or temporary name), so two builds on the same platform
and torch build give the same bytes (checked by `--check`). Weights are stored as float16 (loaded into the
float32 models by `moca.models.build_model`), which keeps the three files under 10 MB.
"""

from __future__ import annotations

import inspect
import io
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from moca.data.layout import list_videos
from moca.data.synth import GENERATOR_VERSION, SynthConfig
from moca.io import atomic_write_bytes, sha256_file, write_json
from moca.standins.corpus import CORPUS_SEED, corpus_config, ensure_corpus, load_frames
from moca.standins.dino import DinoRecipe, train_dino
from moca.standins.registry import MANIFEST, WEIGHTS_DIR, StandIn, read_manifest
from moca.standins.sam import SamRecipe, train_sam

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildConfig:
    # Corpus size (all train, seed `seed`). ImageBind's audio-visual link needs many videos per class (the learning
    # work: audio->visual class match 0.644 after 1000 videos); it reads them from disk, a few frames each.
    videos: int = 1000
    # DINO and SAM hold their frames in memory and train per image: the first `image_videos` videos (5 frames each)
    image_videos: int = 200
    seed: int = CORPUS_SEED
    dino: DinoRecipe = field(default_factory=DinoRecipe)
    sam: SamRecipe = field(default_factory=SamRecipe)
    # pretrain_tiny kwargs over its own defaults: its objective and recipe belong to `moca.train.pretrain`
    imagebind: dict[str, Any] = field(default_factory=lambda: {"seed": 0})


def state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """A state dict as `torch.save` bytes, floating tensors in float16; bytes depend only on the tensors."""
    half = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous() for k, v in state.items()}
    buffer = io.BytesIO()
    torch.save(half, buffer)
    return buffer.getvalue()


def _write(path: Path, state: dict[str, torch.Tensor]) -> str:
    atomic_write_bytes(path, state_bytes(state))
    return sha256_file(path)


def _corpus_info(cfg: SynthConfig, videos_used: int) -> dict[str, Any]:
    return {"benchmark": cfg.benchmark, "videos": cfg.videos, "videos_used": videos_used, "seed": cfg.seed,
            "scene_context": cfg.scene_context, "generator_version": GENERATOR_VERSION,
            "note": "synthetic, seed never used for evaluation data (those use seeds < 1000)"}


def _imagebind_recipe(kwargs: dict[str, Any]) -> dict[str, Any]:
    from moca.train.pretrain import pretrain_tiny

    defaults = {name: p.default for name, p in inspect.signature(pretrain_tiny).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {"objective": "moca.train.pretrain.pretrain_tiny: image-audio multiple-instance InfoNCE",
            **defaults, **kwargs}


def build_standins(out: Path = WEIGHTS_DIR, config: BuildConfig | None = None, work: Path | None = None) -> dict:
    """Build the three stand-ins into `out` (weights + `standins.json`, written last); returns the manifest.
    `work` holds the corpus (a temporary folder, removed afterwards, when not given)."""
    config = config or BuildConfig()
    if work is None:
        with tempfile.TemporaryDirectory(prefix="moca-standins-") as tmp:
            return build_standins(out, config, Path(tmp))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-for-bit: reductions split over threads change the float sums
    try:
        return _build(Path(out), config, Path(work))
    finally:
        torch.set_num_threads(threads)


def rebuild_differences(folder: Path = WEIGHTS_DIR,
                        config: BuildConfig | None = None) -> dict[str, tuple[str, str | None]]:
    """Rebuild every stand-in of `folder` in a temporary folder: {name: (its sha256, the rebuilt one or None)}."""
    shipped = read_manifest(folder)
    with tempfile.TemporaryDirectory(prefix="moca-standins-check-") as tmp:
        build_standins(Path(tmp) / "weights", config)
        rebuilt = read_manifest(Path(tmp) / "weights")
    return {name: (shipped[name].sha256, rebuilt[name].sha256 if name in rebuilt else None) for name in sorted(shipped)}


def _train_dino(frames: list, recipe: DinoRecipe) -> dict[str, torch.Tensor]:
    images = torch.stack([torch.from_numpy(f.image).permute(2, 0, 1) for f in frames])
    foreground = torch.stack([torch.from_numpy(f.owner >= 0) for f in frames])  # which pixels show some object
    return train_dino(images, recipe, foreground).state_dict()


def _build(out: Path, config: BuildConfig, work: Path) -> dict:
    from moca.train.pretrain import pretrain_tiny

    cfg = corpus_config(config.videos, config.seed)
    started = time.process_time()
    corpus = ensure_corpus(work / "corpus", cfg)
    frames = load_frames(corpus, cfg, config.image_videos)
    costs = {"corpus_cpu_s": round(time.process_time() - started, 1)}
    image_corpus = _corpus_info(cfg, len({f.video for f in frames}))

    def timed(name: str, train: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        begin = time.process_time()
        state = train()
        costs[f"{name}_cpu_s"] = round(time.process_time() - begin, 1)
        return state

    out.mkdir(parents=True, exist_ok=True)
    dino = timed("dino", lambda: _train_dino(frames, config.dino))
    sam = timed("sam", lambda: train_sam(frames, config.sam).state_dict())

    def imagebind() -> dict[str, torch.Tensor]:
        full = work / "imagebind_full.pt"
        pretrain_tiny(corpus, full, **config.imagebind)
        return torch.load(full, map_location="cpu", weights_only=True)

    bind = timed("imagebind", imagebind)
    entries = []
    for name, model, state, corpus_info, recipe in (
        ("dino_tiny_standin", "dino_tiny", dino, image_corpus,
         {"objective": config.dino.objective, **asdict(config.dino)}),
        ("sam_tiny_standin", "sam_tiny", sam, image_corpus,
         {"objective": "prompt -> mask (focal + dice, IoU head)", **asdict(config.sam)}),
        ("imagebind_tiny_standin", "imagebind_tiny", bind, _corpus_info(cfg, len(list_videos(corpus, "s4", "train"))),
         _imagebind_recipe(config.imagebind)),
    ):
        file = f"{name}.pt"
        digest = _write(out / file, state)
        entries.append(asdict(StandIn(name, model, file, digest, corpus_info, recipe)))
        log.info("stand-in %s -> %s (sha256 %s)", name, out / file, digest)
    costs["total_cpu_s"] = round(time.process_time() - started, 1)
    manifest = {"standins": entries, "build_cost": {**costs, "threads": 1, "torch": torch.__version__},
                "command": "python -m moca.standins build",
                "warning": "STAND-INS trained on synthetic data for the demo and tests; NOT the released weights"}
    write_json(out / MANIFEST, manifest)
    return manifest
