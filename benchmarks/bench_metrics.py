"""Speed of the vectorised AVSBench metrics against the official per-threshold loop.

The `reference_*` functions restate the official AVSBench code (avs_scripts utils: mask_iou, _eval_pr /
Eval_Fmeasure, _batch_miou_fscore) as directly as possible; tests use them as an oracle for moca.metrics.

    python benchmarks/bench_metrics.py [--videos 740] [--reference-videos 40] [--repeats 3] [--threads 1]

Scores the whole S4 test split shape (740 videos x 5 frames of 224x224) with moca.metrics and the reference loop
on a subset (it is slow), after a warm-up, in alternating order, with pinned threads; prints milliseconds per
video for both (wall and CPU) and their ratio. Then writes that split to a temporary folder (masks as PNG,
predictions as .npy logits) and times `moca evaluate` end to end, file reading included.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from harness import ab_times, add_thread_option, pin_threads, print_load
from PIL import Image

from moca.evaluate import evaluate_predictions
from moca.metrics import BinaryScorer, SemanticScorer


def reference_iou(scores: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Official mask_iou on (N, H, W), per frame (sigmoid already applied to give `scores`)."""
    num_pixels = scores.size(-1) * scores.size(-2)
    target = gt.float()
    no_obj = target.sum(2).sum(1) == 0
    pred = (scores > 0.5).int()
    inter = (pred * target).sum(2).sum(1)
    union = torch.max(pred, target).sum(2).sum(1)
    inter_no_obj = ((1 - target) * (1 - pred)).sum(2).sum(1)
    inter[no_obj] = inter_no_obj[no_obj]
    union[no_obj] = num_pixels
    return inter / (union + 1e-7)


def reference_fscore(scores: torch.Tensor, gt: torch.Tensor, num: int = 255) -> float:
    """Official Eval_Fmeasure on one video's frames (N, H, W): one pass over the pixels per threshold."""
    beta2, avg_f, img_num, score = 0.3, 0.0, 0, torch.zeros(num)
    thlist = torch.linspace(0, 1 - 1e-10, num)
    for frame in range(scores.size(0)):
        y = gt[frame].float()
        if torch.mean(y) == 0.0:
            continue
        prec, recall = torch.zeros(num), torch.zeros(num)
        for i in range(num):
            y_temp = (scores[frame] >= thlist[i]).float()
            tp = (y_temp * y).sum()
            prec[i], recall[i] = tp / (y_temp.sum() + 1e-20), tp / (y.sum() + 1e-20)
        f_score = (1 + beta2) * prec * recall / (beta2 * prec + recall)
        f_score[f_score != f_score] = 0
        avg_f += f_score
        img_num += 1
        score = avg_f / img_num
    return score.max().item()


def reference_semantic(pred: torch.Tensor, gt: torch.Tensor, nclass: int = 71):
    """Official _batch_miou_fscore sums on class maps (N, H, W): per-class IoU sum, F sum, count."""
    predict, target = pred.float() + 1, gt.float() + 1
    intersection = predict * (predict == target).float()
    ious, fscores, cls_count = torch.zeros(nclass), torch.zeros(nclass), torch.zeros(nclass)
    for i in range(target.shape[0]):
        area_inter = torch.histc(intersection[i], bins=nclass, min=1, max=nclass)
        area_pred = torch.histc(predict[i], bins=nclass, min=1, max=nclass)
        area_lab = torch.histc(target[i], bins=nclass, min=1, max=nclass)
        area_union = area_pred + area_lab - area_inter
        ious += area_inter / (2.220446049250313e-16 + area_union)
        cls_count[torch.nonzero(area_union).squeeze(-1)] += 1
        precision, recall = area_inter / area_pred, area_inter / area_lab
        fscore = 1.3 * precision * recall / (0.3 * precision + recall)
        fscore[fscore != fscore] = 0
        fscores += fscore
    return ious, fscores, cls_count


def synthetic_split(videos: int, frames: int = 5, size: int = 224, seed: int = 0):
    """Scores (sigmoid of noisy logits around a disc) and disc-shaped masks; every 7th frame empty."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for v in range(videos):
        centres = torch.randint(size // 5, size - size // 5, (frames, 2), generator=gen)
        radius = torch.randint(size // 20, size // 5, (frames, 1, 1), generator=gen)
        dist = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
        gt = dist < radius**2
        gt[(torch.arange(frames) + v * frames) % 7 == 0] = False
        logits = torch.where(gt, 1.5, -1.5) + torch.randn(frames, size, size, generator=gen) * 2
        yield f"v{v}", torch.sigmoid(logits), gt


def write_s4_split(root: Path, data: list) -> Path:
    """The videos as an S4 test split under `root` (one category), with .npy logit predictions; returns PRED."""
    meta = root / "Single-source/s4_meta_data.csv"
    meta.parent.mkdir(parents=True)
    meta.write_text("name,start,category,split\n" + "".join(f"{name},0,cat,test\n" for name, _, _ in data))
    pred, masks = root / "pred", root / "Single-source/s4_data/gt_masks/test"
    for name, scores, gt in data:
        (masks / "cat" / name).mkdir(parents=True)
        (pred / "cat" / name).mkdir(parents=True)
        logits = torch.logit(scores.clamp(1e-6, 1 - 1e-6)).numpy()
        for k in range(gt.shape[0]):
            key = f"cat/{name}/{name}_{k + 1}"
            Image.fromarray(gt[k].numpy().astype(np.uint8) * 255).save(masks / f"{key}.png")
            np.save(pred / f"{key}.npy", logits[k])
    return pred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=740)
    parser.add_argument("--reference-videos", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    add_thread_option(parser)
    args = parser.parse_args()
    pin_threads(args.threads)  # moca.metrics runs in numpy, single-threaded; the official loop in torch
    print_load("before")
    data = list(synthetic_split(args.videos))
    subset = data[: args.reference_videos]
    scorers: list[BinaryScorer] = []

    def ours() -> None:
        scorers.append(BinaryScorer())
        for name, scores, gt in data:
            scorers[-1].add(name, scores, gt)

    def official() -> None:
        for _, scores, gt in subset:
            reference_fscore(scores, gt)
            reference_iou(scores, gt)

    times = ab_times({"ours": ours, "official": official}, repeats=args.repeats)
    scorer = scorers[-1]
    summary = scorer.summary()
    worst = max(
        max(abs(reference_fscore(scores, gt) - scorer.per_video[name]["fscore"]),
            abs(float(reference_iou(scores, gt).double().mean()) - scorer.per_video[name]["miou"]))
        for name, scores, gt in subset
    )
    per_video = {side: {clock: times.median(side, clock) / count for clock in ("wall", "cpu")}
                 for side, count in (("ours", len(data)), ("official", len(subset)))}
    print(f"binary metrics, {len(data)} videos x 5 frames of 224x224 (S4 test split shape); warm-up 1, "
          f"{args.repeats} alternating rounds, medians")
    print(f"  moca.metrics : {per_video['ours']['wall'] * 1e3:8.2f} ms/video wall, "
          f"{per_video['ours']['cpu'] * 1e3:8.2f} CPU  (mIoU {summary['miou']:.4f}, F {summary['fscore']:.4f})")
    print(f"  official loop: {per_video['official']['wall'] * 1e3:8.2f} ms/video wall, "
          f"{per_video['official']['cpu'] * 1e3:8.2f} CPU  ({len(subset)} videos per round; whole split "
          f"extrapolated {per_video['official']['wall'] * len(data):.0f} s)")
    rounds = [r * len(data) / len(subset) for r in times.round_ratios("official", "ours")]
    print(f"  ratio        : {per_video['official']['wall'] / per_video['ours']['wall']:8.1f}x wall, "
          f"{per_video['official']['cpu'] / per_video['ours']['cpu']:.1f}x CPU; per round "
          f"{', '.join(f'{r:.1f}x' for r in rounds)}; max |difference| on the subset {worst:.2e}")

    semantic = SemanticScorer()
    start = time.perf_counter()
    for name, scores, gt in data:
        semantic.add(name, (scores > 0.5).long() * 7, gt.long() * 7, pad_to=10)
    print(f"AVSS semantic sums, same {len(data)} videos padded to 10 frames: {time.perf_counter() - start:.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        pred = write_s4_split(Path(tmp), data)
        start = time.perf_counter()
        result = evaluate_predictions(pred, tmp, "s4", "test")
        end_to_end_s = time.perf_counter() - start
    print(f"moca evaluate end to end (reads {result['num_frames']} PNG masks + .npy logits): {end_to_end_s:.2f} s, "
          f"mIoU {result['miou']:.4f}, F {result['fscore']:.4f}")
    print_load("after")


if __name__ == "__main__":
    main()
