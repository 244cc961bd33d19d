"""Forward time of the MoCA model against frozen ImageBind alone (the naive reference: no adapters).

    python benchmarks/bench_models.py [--backbone imagebind_huge] [--repeats 2]

Random weights, CPU unless CUDA is present. Prints seconds per forward (one 224 image + three audio clips) and
the ratio MoCA / ImageBind: the adapters' overhead. Also the time of `visual_suffix` alone on a cached prefix,
which is what training pays per step when the prefix is cached.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from harness import add_thread_option, pin_threads

from moca.models import MocaConfig, MocaModel, tiny_moca_config


def _best_times(repeats: int, actions: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best-of-`repeats` seconds per action, interleaved so load from other processes hits all of them alike."""
    best = dict.fromkeys(actions, float("inf"))
    for _ in range(repeats):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="imagebind_huge", choices=["imagebind_huge", "imagebind_tiny"])
    parser.add_argument("--repeats", type=int, default=2)
    add_thread_option(parser)
    args = parser.parse_args()
    pin_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = MocaConfig() if args.backbone == "imagebind_huge" else tiny_moca_config()

    start = time.perf_counter()
    model = MocaModel(config).to(device).eval()
    build_s = time.perf_counter() - start
    image = torch.randn(1, 3, 224, 224, device=device)
    audio = torch.randn(1, 3, 1, 128, 204, device=device)
    backbone = model.backbone

    with torch.no_grad():
        model(image, audio)  # warm-up: first-call allocations and kernel selection
        tokens, _ = model.encode_audio(audio)
        prefix = model.visual_prefix(image)
        best = _best_times(args.repeats, {
            "frozen": lambda: backbone({"vision": image, "audio": audio}),
            "moca": lambda: model(image, audio),
            "suffix": lambda: model.visual_suffix(prefix, tokens),
        })
    frozen_s, moca_s, suffix_s = best["frozen"], best["moca"], best["suffix"]

    print(f"backbone={args.backbone} device={device} threads={torch.get_num_threads()} "
          f"params={model.num_parameters():,} trainable={model.num_parameters(trainable_only=True):,} "
          f"build={build_s:.1f}s")
    print(f"frozen ImageBind forward (vision + 3 audio clips): {frozen_s:.3f} s")
    print(f"MoCA forward (adapters after {list(config.adapter.positions)}): {moca_s:.3f} s  "
          f"ratio vs frozen: {moca_s / frozen_s:.2f}x")
    print(f"visual_suffix on a cached prefix: {suffix_s:.3f} s  ratio vs MoCA forward: {suffix_s / moca_s:.2f}x")


if __name__ == "__main__":
    main()
