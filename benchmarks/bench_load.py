"""Evaluate and inference at load: a synthetic S4 test split 10x AVSBench's (7,400 videos, 37,000 annotated frames).

Synthesising 7,400 distinct videos takes ~20 minutes on the shared 2 cores, and the memory question does not need
distinct pixels, so the dataset is `--unique` synthesised test videos hard-linked under `--videos` distinct names
(every video still has its own metadata row, frames, masks, wav and prediction files, read one by one).

Each measurement runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own. Reported: wall time, peak RSS,
and the *growth* = peak minus the RSS once imports and the model are loaded, i.e. what the work itself added. A
bounded-memory implementation has the same growth at N and at 10N videos. The naive reference is what an
unbounded implementation would need: every frame's ground truth and prediction held at once (computed, not run).

    .venv/bin/python benchmarks/bench_load.py [--videos 7400] [--unique 200] [--infer-videos 740] [--work DIR]

Numbers from a shared 2-core machine are noisy (other engineers' test suites run at the same time): compare the
growth across sizes, not absolute seconds. tests/reliability/test_load_memory.py reuses these helpers at small N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import add_thread_option, pin_threads, print_load

FRAMES = 5
SIZE = 224


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> float:
    """Reset this process's peak RSS (VmHWM) to its current RSS and return that: the imports' own peak (torch
    alone is ~800 MB) would otherwise hide everything the work adds below it."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def peak_mb() -> float:
    return _status_mb("VmHWM")


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(source, target)


def build_test_split(root: Path, videos: int, unique: int, image_size: int = SIZE, seed: int = 0) -> Path:
    """An S4 dataset whose test split has `videos` videos, cloned by hard links from `unique` synthesised ones."""
    from moca.data.layout import list_videos, metadata_path
    from moca.data.synth import SynthConfig, synthesize

    # Nearly all videos in test (split_plan keeps one train and one val video); the source lives beside `root`.
    source = synthesize(root.with_name(root.name + "-source"),
                        SynthConfig(benchmark="s4", videos=unique + 2, seed=seed, image_size=image_size,
                                    split_fractions=(0.0, 0.0, unique / (unique + 2))))
    originals = list_videos(source, "s4", "test")
    csv = metadata_path(root, "s4")
    csv.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"load{i:06d},0,{originals[i % len(originals)].category},test" for i in range(videos)]
    csv.write_text("name,start,category,split\n" + "\n".join(rows) + "\n", encoding="utf-8")
    for i, clone in enumerate(list_videos(root, "s4", "test")):
        original = originals[i % len(originals)]
        _link(original.audio, clone.audio)
        for mine, theirs in zip(clone.frames, original.frames):
            _link(theirs.image, mine.image)
            _link(theirs.mask, mine.mask)
    return root


def write_predictions(root: Path, pred: Path) -> Path:
    """Perfect PNG probability maps for the test split (hard links to the masks: same bytes, distinct files)."""
    from moca.data.layout import list_videos

    for video in list_videos(root, "s4", "test"):
        for frame in video.frames:
            _link(frame.mask, pred / f"{frame.key}.png")
    return pred


def run_evaluate(data: Path, pred: Path) -> dict:
    from moca.evaluate import evaluate_predictions

    before = reset_peak()
    start = time.perf_counter()
    result = evaluate_predictions(pred, data, "s4", "test")
    return {"seconds": time.perf_counter() - start, "baseline_mb": before, "peak_mb": peak_mb(),
            "frames": result["num_frames"], "miou": result["miou"]}


def run_infer(data: Path, model: Path, out: Path, mpm: str = "points") -> dict:
    from moca.infer import run_inference
    from moca.infer.model import load_model

    load_model(model)  # imports and one model build before the baseline, so growth is the loop's own
    before = reset_peak()
    start = time.perf_counter()
    manifest = run_inference(model, data, "s4", "test", out, {"mpm": mpm, "sam": {"model": "sam_tiny"}})
    return {"seconds": time.perf_counter() - start, "baseline_mb": before, "peak_mb": peak_mb(),
            "frames": manifest["counts"]["predicted"]}


def write_tiny_model(folder: Path, seed: int = 0) -> Path:
    """adapters.pt + config.yaml as `moca train` writes them, for the tiny random-init ImageBind."""
    import torch
    import yaml

    from moca.models import MocaModel, tiny_moca_config

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(MocaModel(tiny_moca_config()).adapter_state_dict(), folder / "adapters.pt")
    config = {"model": {"backbone": "imagebind_tiny", "backbone_weights": None,
                        "adapter": {"positions": [2, 4], "bottleneck": 32, "heads": 4}},
              "audio": {"window": "centered"}, "seed": seed}
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def in_child(kind: str, *args: Path | str) -> dict:
    """Run `kind` (evaluate | infer) in a fresh interpreter; its last stdout line is the JSON result."""
    command = [sys.executable, __file__, "--child", kind, *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def naive_mb(frames: int) -> float:
    """Every frame's boolean truth plus float32 prediction held at once (an unbounded evaluate)."""
    return frames * SIZE * SIZE * (1 + 4) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=7400)
    parser.add_argument("--small", type=int, default=740, help="the 1x size to compare growth against")
    parser.add_argument("--unique", type=int, default=200)
    parser.add_argument("--infer-videos", type=int, nargs="*", default=[74, 740])
    parser.add_argument("--work", type=Path, default=None)
    add_thread_option(parser)
    args = parser.parse_args()
    pin_threads(args.threads)  # exported to the child processes too (OMP_NUM_THREADS, MOCA_NUM_THREADS)
    print_load("before")
    with tempfile.TemporaryDirectory(prefix="moca-bench-load-", dir=args.work) as tmp:
        work = Path(tmp)
        model = write_tiny_model(work / "model")
        rows = []
        for n in sorted({args.small, args.videos, *args.infer_videos}):
            t0 = time.perf_counter()
            data = build_test_split(work / f"data{n}", n, min(args.unique, n))
            pred = write_predictions(data, work / f"pred{n}")
            print(f"built {n} videos in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            if n in (args.small, args.videos):
                rows.append({"kind": "evaluate", "videos": n, **in_child("evaluate", data, pred)})
                print(json.dumps(rows[-1]), file=sys.stderr)
            if n in args.infer_videos:
                rows.append({"kind": "infer", "videos": n, **in_child("infer", data, model, work / f"out{n}")})
                print(json.dumps(rows[-1]), file=sys.stderr)
    print("| step | videos | frames | time (s) | peak RSS (MB) | growth (MB) | naive: all frames held (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['videos']} | {r['frames']} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | "
              f"{r['peak_mb'] - r['baseline_mb']:.0f} | {naive_mb(r['frames']):.0f} |")
    for kind in ("evaluate", "infer"):
        mine = [r for r in rows if r["kind"] == kind]
        if len(mine) >= 2:
            small, big = mine[0], mine[-1]
            growth = big["peak_mb"] - big["baseline_mb"]
            print(f"{kind}: {big['videos'] / small['videos']:.0f}x the videos -> growth "
                  f"{small['peak_mb'] - small['baseline_mb']:.0f} -> {growth:.0f} MB")
            if kind == "evaluate":  # the naive reference models evaluate (all frames held), not inference
                print(f"evaluate: naive/measured growth at {big['videos']} videos: "
                      f"{naive_mb(big['frames']) / max(growth, 1):.0f}x")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *paths = sys.argv[2:]
        if kind == "evaluate":
            result = run_evaluate(Path(paths[0]), Path(paths[1]))
        else:
            result = run_infer(Path(paths[0]), Path(paths[1]), Path(paths[2]), *paths[3:])
        print(json.dumps(result))
    else:
        main()
