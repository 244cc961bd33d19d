"""Every GPU figure the docs estimate, measured in one run (benchmarks/gpu_check.sh wraps this; see its header).

Sections, each timed after a warm-up (medians), each recorded even if a later one fails:
  ceiling    a large bf16 matrix product: the device's achievable bf16 rate, next to its datasheet peak
  imagebind  ImageBind-Huge (random weights): frozen vision forward at batch B (images/s, bf16 autocast); one
             AdaAV adapter training step with the prefix cache at batch B (the trainer's own `micro_step_loss`,
             backward, AdamW step): step time, images/s (3B images per step), FLOPs counted by
             torch.utils.flop_counter, achieved TFLOP/s and its share of the ceiling and of the datasheet peak
  sam        SAM ViT-H (random weights) image encoder per frame and point-prompt MPM per frame (bench_mpm)
  mining     exact pair mining of 1M clustered 768-d descriptors on the GPU (moca.mining.knn, device="cuda")
`--tiny` (or MOCA_GPU_CHECK_TINY=1) swaps in tiny models and sizes so the same code runs on a CPU in a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
# Pure-Python packages the GPU image lacks; `gpu_check.sh --pack` copies them from the project's venv.
PACKED = ("imagebind", "segment_anything", "iopath", "ftfy", "wcwidth")
NEEDED = ("torch", "numpy", "timm", "einops", "PIL", "pandas", "yaml", *PACKED)
DATASHEET_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.1}  # dense, SXM where both


@dataclass(frozen=True)
class Sizes:
    backbone: str
    batch: int
    steps: int
    sam: str
    frames: int
    mining_frames: int
    dim: int
    chunk: int
    matmul: int


FULL = Sizes(backbone="imagebind_huge", batch=32, steps=5, sam="sam_vit_h", frames=5, mining_frames=1_000_000,
             dim=768, chunk=2048, matmul=8192)
TINY = Sizes(backbone="imagebind_tiny", batch=2, steps=2, sam="sam_tiny", frames=1, mining_frames=3000, dim=64,
             chunk=512, matmul=256)


def missing_modules() -> list[str]:
    import importlib.util

    def found(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except ImportError:  # e.g. a broken parent package
            return False

    return [name for name in NEEDED if not found(name)]


def pack(folder: Path) -> None:
    """Copy the pure-Python packages the GPU image lacks from this interpreter into `folder` (to carry along)."""
    import importlib.util
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for name in PACKED:
        spec = importlib.util.find_spec(name)
        if spec is None:
            sys.exit(f"gpu_check --pack: {name} is not installed here (make install first)")
        source = Path(next(iter(spec.submodule_search_locations))) if spec.submodule_search_locations else \
            Path(spec.origin)
        target = folder / source.name
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
        print(f"packed {name}: {source} -> {target}")


def _without_soundfile() -> None:
    """moca.data.readers imports soundfile at module level (every moca.infer import reaches it); the GPU image
    has no soundfile, and nothing here reads a wav, so an empty module stands in for it."""
    try:
        import soundfile  # noqa: F401
    except (ImportError, OSError):
        sys.modules["soundfile"] = types.ModuleType("soundfile")


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _median_seconds(fn: Callable[[], object], device: str, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ceiling(sizes: Sizes, device: str) -> dict:
    import torch

    n = sizes.matmul
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    seconds = _median_seconds(lambda: a @ b, device, repeats=10, warmup=3)
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    datasheet = next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in name), None)
    return {"device_name": name, "matmul_n": n, "bf16_matmul_tflops": 2 * n**3 / seconds / 1e12,
            "datasheet_bf16_tflops": datasheet}


def imagebind(sizes: Sizes, device: str, ceiling_tflops: float | None, datasheet: float | None) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from moca.losses import PairObjective
    from moca.models import MocaConfig, MocaModel, tiny_moca_config
    from moca.models.imagebind import AUDIO_SHAPE, IMAGE_SIZE, VISION, embed
    from moca.train.loop import micro_step_loss

    torch.manual_seed(0)
    config = tiny_moca_config() if sizes.backbone == "imagebind_tiny" else MocaConfig(backbone=sizes.backbone)
    with torch.device(device):  # random init straight on the device (1.2 B parameters: seconds, not minutes)
        model = MocaModel(config).eval()
    b = sizes.batch
    images = torch.randn(3 * b, 3, IMAGE_SIZE, IMAGE_SIZE, device=device)
    audio = torch.randn(b, 3, *AUDIO_SHAPE, device=device)
    bf16 = torch.autocast(device, dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()

    def forward() -> None:
        with torch.no_grad(), bf16:
            embed(model.backbone, VISION, images[:b])

    forward_s = _median_seconds(forward, device, repeats=sizes.steps)
    with torch.no_grad():  # the prefix cache's content: the frozen trunk up to the first adapter, and the audio
        prefix = model.visual_prefix(images)
        tokens, emb = model.encode_audio(audio)
    params = list(model.trainable_parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4)

    objective = PairObjective()  # the default objective, as training runs it
    one_pair = {"positive_keys": [[0]] * b, "negative_keys": [[0]] * b}  # one positive and one negative per anchor

    def step() -> None:
        loss, _ = micro_step_loss(model, objective, lambda _batch: (prefix, tokens, emb), one_pair, bf16)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step_s = _median_seconds(step, device, repeats=sizes.steps)
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    achieved = flops / step_s / 1e12
    result = {
        "backbone": sizes.backbone, "batch": b, "adapter_positions": list(config.adapter.positions),
        "parameters": model.num_parameters(), "trainable_parameters": model.num_parameters(trainable_only=True),
        "forward_s": forward_s, "forward_images_per_s": b / forward_s,
        "train_step_s": step_s, "train_images_per_s": 3 * b / step_s, "train_step_tflop": flops / 1e12,
        "train_step_achieved_tflops": achieved,
        "share_of_measured_bf16_ceiling": achieved / ceiling_tflops if ceiling_tflops else None,
        "share_of_datasheet_bf16_peak": achieved / datasheet if datasheet else None,
    }
    if device == "cuda":
        result["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def sam(sizes: Sizes, device: str) -> dict:
    import torch

    sys.path.insert(0, str(BENCHMARKS))
    from bench_mpm import time_modes

    with torch.no_grad():
        t = time_modes(sizes.sam, sizes.frames, device, modes=("points",))
    return {"model": sizes.sam, "frames": sizes.frames, "image_encoder_s_per_frame": statistics.median(t["embedding"]),
            "points_mpm_s_per_frame": statistics.median(t["points"])}


def mining(sizes: Sizes, device: str) -> dict:
    import torch

    from moca.mining.knn import mine_neighbours
    from moca.mining.synthetic import clustered_descriptor_tensor

    descriptors, videos = clustered_descriptor_tensor(sizes.mining_frames, sizes.dim, device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    start = time.perf_counter()
    found = mine_neighbours(descriptors, videos, k=10, negatives=10, seed=0, chunk_size=sizes.chunk, device=device)
    _sync(device)
    result = {"frames": sizes.mining_frames, "dim": sizes.dim, "chunk": sizes.chunk,
              "seconds": time.perf_counter() - start, "negatives_found": float((found.negatives >= 0).mean())}
    if device == "cuda":
        result["extra_peak_gpu_memory_gb"] = (torch.cuda.max_memory_allocated() - before) / 2**30
    return result


def run(tiny: bool, out: Path) -> dict:
    import torch

    from moca.threads import configure_threads

    _without_soundfile()
    threads = configure_threads()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not tiny:
        raise SystemExit("gpu_check: no CUDA device visible to torch (use --tiny to try the script on a CPU)")
    sizes = TINY if tiny else FULL
    report: dict = {"tiny": tiny, "device": device, "cpu_threads": threads, "sizes": asdict(sizes),
                    "torch": torch.__version__,
                    "cuda": torch.version.cuda, "python": platform.python_version(), "sections": {}, "errors": {}}
    started = time.perf_counter()

    def section(name: str, fn: Callable[[], dict]) -> dict:
        print(f"[{time.perf_counter() - started:6.1f} s] {name} ...", flush=True)
        try:
            report["sections"][name] = fn()
        except Exception:  # record and go on: one call on a lent device should bring back every figure it can
            report["errors"][name] = traceback.format_exc(limit=8)
            print(report["errors"][name], file=sys.stderr, flush=True)
        finally:
            if device == "cuda":
                torch.cuda.empty_cache()
        _write(out, {**report, "seconds": time.perf_counter() - started})  # partial results survive a timeout
        return report["sections"].get(name, {})

    peak = section("ceiling", lambda: ceiling(sizes, device))
    section("imagebind", lambda: imagebind(sizes, device, peak.get("bf16_matmul_tflops"),
                                           peak.get("datasheet_bf16_tflops")))
    section("sam", lambda: sam(sizes, device))
    section("mining", lambda: mining(sizes, device))
    report["seconds"] = time.perf_counter() - started
    _write(out, report)
    return report


def _write(out: Path, report: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".tmp")
    partial.write_text(json.dumps(report, indent=2, default=float))
    partial.replace(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="the JSON result file")
    parser.add_argument("--tiny", action="store_true", default=os.environ.get("MOCA_GPU_CHECK_TINY") == "1",
                        help="tiny models and sizes (CPU test); also MOCA_GPU_CHECK_TINY=1")
    parser.add_argument("--pack", type=Path, help="copy the packages the GPU image lacks into this folder, then stop")
    args = parser.parse_args()
    if args.pack:
        pack(args.pack)
        return
    if args.out is None:
        parser.error("--out is required")
    missing = missing_modules()
    if missing:
        raise SystemExit(f"gpu_check: missing Python packages {missing}; torch, numpy, timm, einops, pandas, PIL and "
                         f"yaml come with the GPU image; the rest: run `benchmarks/gpu_check.sh --pack` where the "
                         f"project's venv is installed and carry .gpu_deps/ along")
    report = run(args.tiny, args.out)
    print(json.dumps({name: value for name, value in report["sections"].items()}, indent=1, default=float))
    if report["errors"]:
        raise SystemExit(f"gpu_check: sections failed: {sorted(report['errors'])} (details in {args.out})")
    print(f"gpu_check: all sections done in {report['seconds']:.0f} s; result in {args.out}")


if __name__ == "__main__":
    main()
