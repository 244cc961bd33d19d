"""The comparison table: every run scored with `moca.evaluate.evaluate_predictions`, gains over the best baseline.

Each run is a prediction folder; its kind comes from the manifest `moca infer` or `moca baseline` wrote there:
MoCA runs (infer_manifest.json), baselines (OWOD-BIND, AT-GDINO-SAM) and floors (centre prior, all-foreground).
The headline number is the paper's: relative mIoU gain of MoCA over the best *baseline* (floors excluded),
(moca - best) / best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moca.io import read_json

FLOORS = ("centre-prior", "all-foreground")
KINDS = ("moca", "baseline", "floor", "other")


@dataclass(frozen=True)
class RunSpec:
    name: str  # the row label
    benchmark: str
    pred_dir: Path


def run_kind(pred_dir: Path) -> tuple[str, str]:
    """(kind, method) of a prediction folder, from the manifest its producer wrote; ("other", "") if none."""
    if (pred_dir / "infer_manifest.json").is_file():
        return "moca", read_json(pred_dir / "infer_manifest.json").get("method", "moca")
    if (pred_dir / "baseline_manifest.json").is_file():
        method = read_json(pred_dir / "baseline_manifest.json").get("method", "")
        return ("floor" if method in FLOORS else "baseline"), method
    return "other", ""


def relative_gain(value: float, reference: float) -> float | None:
    """(value - reference) / reference; None when the reference is 0 (no meaningful ratio)."""
    if reference <= 0 or not math.isfinite(reference):
        return None
    return (value - reference) / reference


def build_table(runs: list[RunSpec], data: dict[str, Path], split: str, protocol: str = "binary") -> dict[str, Any]:
    """Score each run and assemble the table (JSON-ready). `data` maps benchmark -> AVSBench root."""
    from moca.evaluate import evaluate_predictions

    benchmarks = list(dict.fromkeys(r.benchmark for r in runs))
    rows: dict[str, dict[str, Any]] = {}
    per_category: dict[str, dict[str, Any]] = {}
    for run in runs:
        kind, method = run_kind(run.pred_dir)
        row = rows.setdefault(run.name, {"name": run.name, "kind": kind, "method": method, "scores": {},
                                         "pred_dirs": {}})
        result = evaluate_predictions(run.pred_dir, data[run.benchmark], run.benchmark, split, protocol)
        row["scores"][run.benchmark] = {"miou": result["miou"], "fscore": result["fscore"],
                                        "num_videos": result["num_videos"]}
        row["pred_dirs"][run.benchmark] = str(run.pred_dir)
        if "per_category" in result:
            per_category[run.name] = result["per_category"]
    best: dict[str, dict[str, Any] | None] = {}
    for bench in benchmarks:
        scored = [r for r in rows.values() if r["kind"] == "baseline" and bench in r["scores"]]
        top = max(scored, key=lambda r: r["scores"][bench]["miou"], default=None)
        best[bench] = None if top is None else {"name": top["name"], "miou": top["scores"][bench]["miou"]}
    for row in rows.values():
        row["gain_over_best_baseline"] = {
            bench: (relative_gain(s["miou"], best[bench]["miou"]) if best.get(bench) else None)
            for bench, s in row["scores"].items()
        }
    ordered = sorted(rows.values(), key=lambda r: KINDS.index(r["kind"]))
    return {"split": split, "protocol": protocol, "benchmarks": benchmarks, "rows": ordered,
            "best_baseline": best, "per_category_s4": per_category}


def _num(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.2f} %" if percent else f"{value:.4f}"


def render_markdown(table: dict[str, Any]) -> str:
    """The table as Markdown: one row per run, mIoU / F-score per benchmark, gain over the best baseline."""
    benches = table["benchmarks"]
    head = ["method", "kind"] + [f"{b} {m}" for b in benches for m in ("mIoU", "F-score", "gain vs best baseline")]
    lines = [f"# Evaluation report ({table['split']} split, {table['protocol']} protocol)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        cells = [row["name"], row["kind"]]
        for bench in benches:
            score = row["scores"].get(bench)
            cells += ([_num(score["miou"]), _num(score["fscore"]),
                       _num(row["gain_over_best_baseline"].get(bench), percent=True)] if score else ["", "", ""])
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for bench in benches:
        best = table["best_baseline"].get(bench)
        lines.append(f"- {bench}: best baseline " + (f"**{best['name']}** (mIoU {best['miou']:.4f}); gain = "
                                                    "(mIoU - best) / best" if best else "none in this report"))
    categories = table["per_category_s4"]
    if categories:
        names = list(categories)
        cats = sorted({c for per in categories.values() for c in per})
        lines += ["", "## S4 per category (mIoU)", "", "| category | " + " | ".join(names) + " |",
                  "|" + "---|" * (len(names) + 1)]
        for cat in cats:
            lines.append(f"| {cat} | " + " | ".join(_num(categories[n].get(cat, {}).get("miou")) for n in names) + " |")
    return "\n".join(lines) + "\n"
