"""Report figures (matplotlib, Agg backend): a qualitative grid and a bar plot of the table.

Grid rows are frames (the first annotated frame of a few videos); columns: frame, audio-pixel heatmap over the
frame (with its colour bar), coarse mask, final mask, ground truth. Heatmaps and coarse masks come from the side
files `moca infer` writes (`_maps/`, `_coarse/`), so drawing the figure never reruns a model.

The comparison grid puts several runs side by side on the same frames: the audio-pixel maps of the runs that have
one (e.g. before and after training), then every run's final mask, so a reader sees what training changed.

The bar plot is horizontal so that run names of any length stay readable; bars are coloured by the kind of run
(legend), and carry their value.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from moca.data.layout import FrameRef, list_videos
from moca.infer.outputs import load_frame

COLUMNS = ("frame", "audio-pixel map", "coarse mask", "final mask", "ground truth")
HEATMAP_CMAP = "jet"
KIND_COLOURS = {"moca": "tab:blue", "baseline": "tab:orange", "floor": "tab:grey", "other": "tab:green"}
KIND_LABELS = {"moca": "MoCA", "baseline": "baseline", "floor": "floor (trivial predictor)", "other": "other"}
METRICS = {"miou": "mIoU", "fscore": "F-score"}


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


def _save(fig: Any, out: Path, **options: Any) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, **options)
    _pyplot().close(fig)
    return out


def qualitative_grid(pred_dir: Path, data_root: Path, benchmark: str, split: str, out: Path,
                     videos: int = 4, title: str = "") -> Path | None:
    """Draw the grid for up to `videos` videos of a MoCA prediction folder into `out` (PNG); None if no frame."""
    fig = grid_figure(pred_dir, data_root, benchmark, split, videos, title)
    return None if fig is None else _save(fig, out, bbox_inches="tight")  # "tight" keeps the colour bar in


def grid_figure(pred_dir: Path, data_root: Path, benchmark: str, split: str, videos: int = 4, title: str = ""
                ) -> Any:  # fmt: skip
    """The qualitative grid as a matplotlib Figure, or None when the split has no annotated frame."""
    frames = _annotated_frames(data_root, benchmark, split, videos)
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
                heat = axis.imshow(panel, cmap=HEATMAP_CMAP, alpha=0.5, vmin=0, vmax=1)
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
    _colour_bar(fig, axes[-1, COLUMNS.index("audio-pixel map")], heat)
    return fig


def comparison_grid(map_runs: list[tuple[str, Path]], mask_runs: list[tuple[str, Path]], data_root: Path,
                    benchmark: str, split: str, out: Path, videos: int = 4, title: str = "") -> Path | None:
    """Frame, ground truth, the audio-pixel map of each of `map_runs`, the final mask of each of `mask_runs`
    ((label, prediction folder) pairs), for the same frames, into `out` (PNG); None if no annotated frame."""
    frames = _annotated_frames(data_root, benchmark, split, videos)
    if not frames:
        return None
    plt = _pyplot()
    titles = ["frame", "ground truth"] + [f"{name}:\naudio-pixel map" for name, _ in map_runs] + \
             [f"{name}:\nfinal mask" for name, _ in mask_runs]
    fig, axes = plt.subplots(len(frames), len(titles), figsize=(2.0 * len(titles), 2.0 * len(frames) + 0.6),
                             squeeze=False)  # fmt: skip
    heat = None
    for row, frame in zip(axes, frames):
        rgb = load_frame(frame, benchmark)
        size = rgb.shape[:2]
        row[0].imshow(rgb)
        row[1].imshow(_truth(frame, benchmark, size), cmap="gray", vmin=0, vmax=1)
        for axis, (_, pred_dir) in zip(row[2:], map_runs):
            axis.imshow(rgb)
            heat = axis.imshow(_heatmap(pred_dir, frame, size), cmap=HEATMAP_CMAP, alpha=0.5, vmin=0, vmax=1)
        for axis, (_, pred_dir) in zip(row[2 + len(map_runs):], mask_runs):
            axis.imshow(_grey(pred_dir / f"{frame.key}.png", size), cmap="gray", vmin=0, vmax=1)
        for axis in row:
            axis.set_xticks([])
            axis.set_yticks([])
        row[0].set_ylabel(frame.key.split("/")[-1], fontsize=7)
    for axis, name in zip(axes[0], titles):
        axis.set_title("\n".join(textwrap.fill(line, 24) for line in name.split("\n")), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if heat is not None:
        _colour_bar(fig, axes[-1, 2], heat)
    return _save(fig, out, bbox_inches="tight")


def _annotated_frames(data_root: Path, benchmark: str, split: str, videos: int) -> list[FrameRef]:
    """The first annotated frame of each of the first `videos` videos of the split that have one."""
    return [next(f for f in v.frames if f.mask is not None) for v in list_videos(data_root, benchmark, split)
            if any(f.mask is not None for f in v.frames)][:videos]


def _colour_bar(fig: Any, axis: Any, heat: Any) -> None:
    """A horizontal colour bar under `axis`, as wide as it: maps are min-max normalised per frame."""
    bar = fig.colorbar(heat, cax=axis.inset_axes([0.0, -0.14, 1.0, 0.06]), orientation="horizontal",
                       ticks=[0, 0.5, 1])  # fmt: skip
    bar.solids.set_alpha(1)
    bar.ax.tick_params(labelsize=7)
    bar.set_label("audio-pixel similarity (min-max per frame)", fontsize=7)


def _label(name: str) -> str:
    return "\n".join(textwrap.wrap(name, 26)) or name


def bar_plot(table: dict[str, Any], out: Path) -> Path:
    """mIoU and F-score of every run into `out` (PNG)."""
    return _save(bar_figure(table), out)


def bar_figure(table: dict[str, Any]) -> Any:
    """One panel per benchmark and metric, runs in table order (MoCA first), as a matplotlib Figure."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    benches, rows = table["benchmarks"], table["rows"]
    # Height per panel from the wrapped labels it shows (0.17 in a text line at 8 pt, plus room between bars),
    # so that names never overlap however many runs or lines there are.
    heights = [0.8 + sum(0.17 * (_label(r["name"]).count("\n") + 1) + 0.2 for r in rows if b in r["scores"])
               for b in benches]  # fmt: skip
    fig, axes = plt.subplots(len(benches), len(METRICS), figsize=(11, sum(heights) + 0.5), squeeze=False,
                             gridspec_kw={"height_ratios": heights})  # fmt: skip
    for bench, panel_row in zip(benches, axes):
        scored = [r for r in rows if bench in r["scores"]]
        for axis, (metric, metric_name) in zip(panel_row, METRICS.items()):
            positions = np.arange(len(scored))
            bars = axis.barh(positions, [r["scores"][bench][metric] for r in scored],
                             color=[KIND_COLOURS[r["kind"]] for r in scored])  # fmt: skip
            axis.bar_label(bars, fmt="%.3f", padding=3, fontsize=8)
            axis.set_yticks(positions, [_label(r["name"]) for r in scored], fontsize=8)
            axis.invert_yaxis()  # first row of the table on top
            axis.set_xlim(0, 1.12)  # scores are in [0, 1]; the rest is room for the values
            axis.set_title(f"{bench} {table['split']}: {metric_name}", fontsize=9)
            axis.tick_params(axis="x", labelsize=8)
            axis.grid(axis="x", alpha=0.3)
            axis.set_axisbelow(True)
    kinds = [k for k in KIND_COLOURS if any(r["kind"] == k for r in rows)]
    fig.legend(handles=[Patch(color=KIND_COLOURS[k], label=KIND_LABELS[k]) for k in kinds], loc="lower center",
               ncol=len(kinds), fontsize=8, frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0.4 / (sum(heights) + 0.5), 1, 1))  # the bottom 0.4 in for the legend
    return fig
