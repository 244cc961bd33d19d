"""How much data each pipeline task moves on a cluster: the dataset copied into every task (before) against a
reference to the version in the store, each task fetching only the split it reads (after).

    python benchmarks/bench_data_movement.py [--videos 24]

Counts bytes, not seconds (so no thread pinning or warm-up is needed): synthetic S4 data is pushed to a local DVC
remote, ingested by reference, and each reading step's split is materialised exactly as its pod does
(`moca.steps.ingest.materialised` with the step's `data_split`). Before: ingest fetched the version and its
launcher uploaded the whole `dataset` artifact; KFP's launcher then downloaded it into every task that takes it.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

READERS = ("validate", "mine_pairs", "train", "infer", "evaluate")  # the tasks that take the `dataset` artifact


def _size(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.name.startswith("."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from moca.data.synth import SynthConfig, synthesize
    from moca.steps import step_spec
    from moca.steps.config import load_config
    from moca.steps.ingest import IngestConfig, materialised, run
    from moca.steps.runner import Inputs
    from moca.versioning import add_and_push

    config = load_config(Path(__file__).resolve().parent.parent / "configs" / "pipeline_demo.yaml")
    with tempfile.TemporaryDirectory(prefix="moca-bench-") as scratch:
        repo = Path(scratch) / "repo"
        (repo / ".dvc").mkdir(parents=True)
        remote = Path(scratch) / "remote"
        (repo / ".dvc" / "config").write_text(f"[core]\n    no_scm = true\n    remote = r\n"
                                              f"['remote \"r\"']\n    url = {remote}\n")  # fmt: skip
        data = synthesize(repo / "data", SynthConfig(benchmark="s4", videos=args.videos, seed=0))
        whole = _size(data)
        version = add_and_push(data)
        source = IngestConfig(rev=version, remote=remote.as_uri(), by_reference=True)
        ingested = run(source, Inputs(), Path(scratch) / "ingest")
        reference = _size(ingested.out)
        rows = {"ingest": {"before": 2 * whole, "after": reference}}  # fetch + artifact upload, vs the reference
        for name in READERS:
            spec = step_spec(name)
            split = spec.data_split(getattr(config, spec.section)) if spec.data_split else None
            with materialised(ingested.out, split) as root:
                rows[name] = {"split": split or "all", "before": whole, "after": _size(root) + reference}
    total = {key: sum(row[key] for row in rows.values()) for key in ("before", "after")}
    print(json.dumps({"videos": args.videos, "dataset_bytes": whole, "tasks": rows, "total": total,
                      "ratio": round(total["before"] / total["after"], 2)}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
