"""Frozen-prefix cache: step time with the cache against recomputing the frozen trunk every step.

Measured: one training micro-step (anchor/positive/negative through the suffix, margin loss, backward) of the tiny
ImageBind (4 vision blocks) with the trunk cut after block 1 (the default 8/16/24/32 positions scaled to 4 blocks)
and after block 2 (adapters in the last 2 of 4 blocks).
Estimated: the same step for ImageBind-Huge (32 vision blocks of width 1280, 12 audio blocks of width 768), from
the measured forward and backward time of ONE real block of each trunk on a few samples, multiplied out:
    uncached = n * (32 f + (32 - p) b) + a        cached = n * (32 - p) (f + b)
with n = 3 images per triplet, p = blocks in the cached prefix, f / b = forward / input-gradient backward time of
one vision block, a = 12 audio blocks forward (also cached). Adapter and head costs are left out (small).
Run: .venv/bin/python benchmarks/bench_cache.py [--threads 1] [--repeats 7]
(CPU; threads pinned; each comparison warms up both sides, then alternates their order round by round and
reports the ratio of medians and the per-round ratios.)
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from harness import ab_times, add_thread_option, pin_threads, print_load

from moca.losses import LossConfig, contrastive_loss
from moca.models import MocaConfig, MocaModel
from moca.models.adaav import AdaAVConfig
from moca.models.imagebind import import_imagebind_model

BATCH = 4  # triplets per micro-step in the tiny measurement


def _best_time(fn, repeats: int = 2) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)  # the least disturbed run on a shared machine


def _tiny_step_times(positions: tuple[int, ...], repeats: int):
    torch.manual_seed(0)
    model = MocaModel(MocaConfig("imagebind_tiny", None, AdaAVConfig(positions=positions, bottleneck=32, heads=4)))
    images = torch.randn(3 * BATCH, 3, 224, 224)
    audio = torch.randn(BATCH, 1, 1, 128, 204)
    with torch.no_grad():
        cached_prefix = model.visual_prefix(images)
        cached_audio = model.encode_audio(audio)

    def step(cached: bool) -> None:
        if cached:
            prefix, (tokens, emb) = cached_prefix, cached_audio
        else:
            prefix, (tokens, emb) = model.visual_prefix(images), model.encode_audio(audio)
        dense = model.visual_suffix(prefix, torch.cat([tokens] * 3))
        a, p, n = dense.chunk(3)
        # gradient through all three images (match_grad), as the cost model above counts them
        contrastive_loss(a, p.unsqueeze(1), n.unsqueeze(1), emb, LossConfig(match_grad=True)).backward()

    def frozen_part() -> None:  # what the cache saves: the most any caching can take off a step (Amdahl)
        model.visual_prefix(images)
        model.encode_audio(audio)

    return ab_times({"uncached": lambda: step(False), "cached": lambda: step(True), "frozen part": frozen_part},
                    repeats=repeats)


def _huge_block_times(samples: int = 2) -> tuple[float, float, float]:
    """Forward f and input-gradient backward b of one ImageBind-Huge vision block, and forward of one audio block."""
    module = import_imagebind_model()
    small = {f"{m}_{k}": v for m in ("text", "depth", "thermal", "imu")
             for k, v in (("embed_dim", 16), ("num_blocks", 1), ("num_heads", 2))}
    model = module.ImageBindModel(out_embed_dim=1024, vision_embed_dim=1280, vision_num_blocks=1,
                                  vision_num_heads=16, audio_embed_dim=768, audio_num_blocks=1,
                                  audio_num_heads=12, **small).eval().requires_grad_(False)
    vision_block = model.modality_trunks["vision"].blocks[0]
    audio_block = model.modality_trunks["audio"].blocks[0]
    x = torch.randn(257, samples, 1280)  # ImageBind blocks are sequence-first
    xa = torch.randn(229, samples, 768)
    with torch.no_grad():
        forward = _best_time(lambda: vision_block(x, attn_mask=None))
        audio = _best_time(lambda: audio_block(xa, attn_mask=None))
    xg = x.clone().requires_grad_(True)

    def forward_backward() -> None:
        vision_block(xg, attn_mask=None).sum().backward()

    backward = _best_time(forward_backward) - forward
    return forward / samples, max(backward, 0.0) / samples, audio / samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-huge", action="store_true", help="only the tiny model's measured comparison")
    add_thread_option(parser)
    args = parser.parse_args()
    pin_threads(args.threads)
    print_load("before")
    print(f"tiny ImageBind, micro-step of {BATCH} triplets (measured; warm-up, then {args.repeats} alternating "
          f"rounds, medians):")
    for label, positions in (("default positions scaled (cut after block 1 of 4)", (1, 2, 3, 4)),
                             ("adapters in the last 2 of 4 blocks (cut after block 2)", (3, 4))):
        times = _tiny_step_times(positions, args.repeats)
        rounds = times.round_ratios("uncached", "cached")
        print(f"  {label}: uncached {times.median('uncached') * 1e3:.0f} ms, cached "
              f"{times.median('cached') * 1e3:.0f} ms, speed-up x{times.ratio('uncached', 'cached'):.2f} "
              f"(CPU time x{times.ratio('uncached', 'cached', 'cpu'):.2f}; per round "
              f"{min(rounds):.2f}-{max(rounds):.2f})")
        frozen = times.median("frozen part")
        print(f"    the frozen part (prefix + audio, no grad) alone {frozen * 1e3:.0f} ms: a cache can save at most "
              f"that, a bound of x{times.median('uncached') / (times.median('uncached') - frozen):.2f}")
    print_load("after the tiny model")
    if args.skip_huge:
        return
    f, b, a = _huge_block_times()
    print(f"ImageBind-Huge, one block per sample (measured): vision forward {f * 1e3:.0f} ms, "
          f"input-grad backward {b * 1e3:.0f} ms, audio forward {a * 1e3:.0f} ms")
    print("ImageBind-Huge, per training triplet (ESTIMATE from those block times):")
    for label, p in (("default positions 8/16/24/32 (cut after 8)", 8), ("last 4 blocks 29..32 (cut after 28)", 28)):
        uncached = 3 * (32 * f + (32 - p) * b) + 12 * a
        cached = 3 * (32 - p) * (f + b)
        print(f"  {label}: uncached {uncached:.2f} s, cached {cached:.2f} s, speed-up x{uncached / cached:.2f}")
    print_load("after")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
