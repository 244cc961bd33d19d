"""Report figures (matplotlib, Agg backend): a qualitative grid and a bar plot of the table.

Grid rows are frames (the first annotated frame of a few videos); columns: frame, audio-pixel heatmap over the
frame, coarse mask, final mask, ground truth. Heatmaps and coarse masks come from the side files `moca infer`
writes (`_maps/`, `_coarse/`), so drawing the figure never reruns a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from moca.data.layout import FrameRef, list_videos
from moca.infer.outputs import load_frame

COLUMNS = ("frame", "audio-pixel map", "coarse mask", "final mask", "ground truth")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def _grey(path: Path, size: tuple[int, int]) -> np.ndarray:
    if not path.is_file():
        return np.zeros(size, dtype=np.float32)
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def _heatmap(pred_dir: Path, frame: FrameRef, size: tuple[int, int]) -> np.ndarray:
    import torch

    from moca.infer.maps import upsample

    path = pred_dir / "_maps" / f"{frame.key}.npy"
    if not path.is_file():
        return np.zeros(size, dtype=np.float32)
    return upsample(torch.from_numpy(np.load(path))[None], size)[0].numpy()


def _truth(frame: FrameRef, benchmark: str, size: tuple[int, int]) -> np.ndarray:
    from moca.evaluate import ground_truth

    truth = (ground_truth(frame, benchmark) != 0).astype(np.float32)
    return truth if truth.shape == size else np.asarray(Image.fromarray(truth).resize(size[::-1]))


def qualitative_grid(pred_dir: Path, data_root: Path, benchmark: str, split: str, out: Path,
                     videos: int = 4, title: str = "") -> Path | None:
    """Draw the grid for up to `videos` videos of a MoCA prediction folder into `out` (PNG); None if no frame."""
    frames = [next(f for f in v.frames if f.mask is not None) for v in list_videos(data_root, benchmark, split)
              if any(f.mask is not None for f in v.frames)][:videos]
    if not frames:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(frames), len(COLUMNS), figsize=(2.2 * len(COLUMNS), 2.2 * len(frames)),
                             squeeze=False)
    for row, frame in zip(axes, frames):
        rgb = load_frame(frame, benchmark)
        size = rgb.shape[:2]
        panels = [rgb, _heatmap(pred_dir, frame, size), _grey(pred_dir / "_coarse" / f"{frame.key}.png", size),
                  _grey(pred_dir / f"{frame.key}.png", size), _truth(frame, benchmark, size)]
        for axis, panel, name in zip(row, panels, COLUMNS):
            if name == "audio-pixel map":
                axis.imshow(rgb)
                axis.imshow(panel, cmap="jet", alpha=0.5, vmin=0, vmax=1)
            else:
                axis.imshow(panel, cmap=None if panel.ndim == 3 else "gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
        row[0].set_ylabel(frame.key.split("/")[-1], fontsize=7)
    for axis, name in zip(axes[0], COLUMNS):
        axis.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def bar_plot(table: dict[str, Any], out: Path) -> Path:
    """mIoU and F-score of every run, grouped by benchmark."""
    plt = _pyplot()
    benches, rows = table["benchmarks"], table["rows"]
    fig, axes = plt.subplots(1, 2 * len(benches), figsize=(max(6, 1.2 * len(rows)) * len(benches), 3.5),
                             squeeze=False)
    colours = {"moca": "tab:blue", "baseline": "tab:orange", "floor": "tab:grey", "other": "tab:green"}
    for i, bench in enumerate(benches):
        for j, metric in enumerate(("miou", "fscore")):
            axis = axes[0, 2 * i + j]
            scored = [r for r in rows if bench in r["scores"]]
            axis.bar([r["name"] for r in scored], [r["scores"][bench][metric] for r in scored],
                     color=[colours[r["kind"]] for r in scored])
            axis.set_title(f"{bench} {'mIoU' if metric == 'miou' else 'F-score'}", fontsize=9)
            axis.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
