"""Does training help? Coarse-mask mIoU on a test split before training (gates at 0) and after, with a floor.

    python -m moca.train.proof --work DIR [--videos 60] [--steps 60] [--pretrain-steps N [--pretrain-videos 200]]

synthesises S4 data, mines pairs with tiny DINO, trains the demo adapters, and prints (and writes
DIR/run-*/proof.json) the test mIoU of: the coarse mask of the untrained model, of the trained one, and a centre prior.
Coarse mask (method.md item 8): audio-pixel map H = <f_p, e_a>, min-max normalised per frame, bilinear to 224,
H >= 0.5 -> saturated logits +10 / -10, scored with `moca.metrics.binary_miou`.
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from moca.io import sha256_file, write_json
from moca.progress import progress

if TYPE_CHECKING:
    from moca.models import MocaConfig

SATURATED = 10.0


def coarse_logits(dense: torch.Tensor, audio_emb: torch.Tensor, size: int = 224) -> torch.Tensor:
    """(B, h, w, D), (B, D) -> (B, size, size) logits of the thresholded, min-max normalised audio-pixel map,
    built exactly as `moca infer` builds its coarse masks."""
    from moca.infer.maps import normalise_map, threshold_mask, upsample
    from moca.models import audio_pixel_map

    heat = upsample(normalise_map(audio_pixel_map(dense, audio_emb)), (size, size))
    return torch.where(threshold_mask(heat, 0.5), SATURATED, -SATURATED)


def centre_prior_logits(size: int = 224) -> torch.Tensor:
    """The centre-prior floor of `moca baseline centre` (a centred disc on a quarter of the frame), as logits."""
    from moca.baselines.floors import centre_prior

    return torch.where(torch.from_numpy(centre_prior((size, size))), SATURATED, -SATURATED)


@torch.no_grad()
def coarse_miou(model, root: Path, benchmark: str = "s4", split: str = "test", batch: int = 8) -> dict[str, float]:
    """Test mIoU of `model`'s coarse masks and of the centre prior on the same frames."""
    from moca.data.datasets import EvalFrames
    from moca.metrics import binary_miou, scores_from_logits

    frames = EvalFrames(root, benchmark, split)
    loader = torch.utils.data.DataLoader(frames, batch_size=batch)
    by_video: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    model.eval()
    for items in progress(loader, desc=f"coarse masks {split}"):
        out = model(items["image"], items["audio"])
        scores = scores_from_logits(coarse_logits(out.dense, out.audio_emb).numpy())
        for video, score, mask in zip(items["video"], scores, items["mask"].numpy()):
            by_video[video].append((score, mask))
    prior = scores_from_logits(centre_prior_logits().numpy())
    stacked = [(np.stack([s for s, _ in v]), np.stack([m for _, m in v])) for v in by_video.values()]
    return {
        "model": binary_miou(stacked),
        "centre_prior": binary_miou((np.broadcast_to(prior, m.shape), m) for _, m in stacked),
    }


def _standin_model_config(model: MocaConfig, work: Path, steps: int, videos: int) -> MocaConfig:
    """`model` with the STAND-IN pre-trained tiny ImageBind as backbone weights, pre-training it on first use on a
    synthetic corpus disjoint from the evaluation data (another seed), as real ImageBind never saw AVSBench."""
    from moca.data.synth import SynthConfig, synthesize
    from moca.models import MocaConfig, WeightsSpec
    from moca.train.pretrain import pretrain_tiny

    corpus = work / f"pretrain-corpus-{videos}"
    if not (corpus / "Single-source").is_dir():
        synthesize(corpus, SynthConfig(benchmark="s4", videos=videos, seed=1, split_fractions=(1.0, 0.0, 0.0)))
    weights = work / f"imagebind_tiny_standin_{videos}v_{steps}s.pt"
    # reused when present: the pre-training is deterministic for a given corpus and step count
    digest = sha256_file(weights) if weights.is_file() else pretrain_tiny(corpus, weights, steps=steps)
    return MocaConfig(model.backbone, WeightsSpec(weights.resolve().as_uri(), digest), model.adapter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    parser.add_argument("--pretrain-steps", type=int, default=0,
                        help="first run the STAND-IN tiny ImageBind pre-training (moca.train.pretrain) this long")
    parser.add_argument("--pretrain-videos", type=int, default=200,
                        help="size of the separate synthetic corpus (seed 1, all train) the stand-in pre-trains on")
    parser.add_argument("--loss", choices=("margin", "infonce"), default=None, help="override loss.loss")
    parser.add_argument("--lr", type=float, default=None, help="override lr")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from moca.data.synth import SynthConfig, synthesize
    from moca.mining.run import MiningConfig, mine_pairs
    from moca.models import MocaModel
    from moca.train.run import load_train_config, run_training

    root = args.work / "data"
    if not (root / "Single-source").is_dir():
        synthesize(root, SynthConfig(benchmark="s4", videos=args.videos, seed=0))
    mine_pairs(root, "s4", args.work / "pairs", MiningConfig(model="dino_tiny", k=5, negatives=5))
    cfg = load_train_config(args.config)
    cfg.tracking, cfg.max_steps = False, args.steps
    if args.loss:
        cfg.loss.loss = args.loss
    if args.lr:
        cfg.lr = args.lr
    if args.pretrain_steps:
        cfg.model = _standin_model_config(cfg.model, args.work, args.pretrain_steps, args.pretrain_videos)
    torch.manual_seed(cfg.seed)
    before = coarse_miou(MocaModel(cfg.model), root)
    backbone = f"standin{args.pretrain_steps}" if args.pretrain_steps else "random"
    run = args.work / f"run-{cfg.loss.loss}-lr{cfg.lr:g}-{backbone}"
    result = run_training(cfg, args.work / "pairs" / "pairs.parquet", run, resume=True, data_root=root)
    trained = MocaModel(cfg.model)
    trained.load_adapter_state_dict(torch.load(run / "adapters.pt", weights_only=True))
    after = coarse_miou(trained, root)
    report = {"before_miou": before["model"], "after_miou": after["model"], "centre_prior_miou": before["centre_prior"],
              "steps": result.steps, "loss": cfg.loss.loss, "nonzero_loss_steps": sum(x > 0 for x in result.losses),
              "first_10_mean_loss": float(np.mean(result.losses[:10])),
              "last_10_mean_loss": float(np.mean(result.losses[-10:])),
              "seconds_per_step": result.seconds_per_step, "backbone": cfg.model.backbone,
              "backbone_weights": None if cfg.model.backbone_weights is None else cfg.model.backbone_weights.uri}
    write_json(run / "proof.json", report)
    print(report)


if __name__ == "__main__":
    main()
