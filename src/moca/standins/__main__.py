"""`python -m moca.standins build|gates`: rebuild the stand-in weights, or measure their gates.

    python -m moca.standins build [--out DIR] [--check]   # --check: build into a temporary folder and compare
    python -m moca.standins gates [--weights DIR] [--out FILE] [--work DIR]

Exit codes: 0 done (and, with --check, every file identical to the shipped one); 1 --check found a difference;
2 bad input (`moca.errors.MocaError`, one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from moca.errors import MocaError


def _build(args: argparse.Namespace) -> int:
    from moca.standins.build import build_standins, rebuild_differences
    from moca.standins.registry import WEIGHTS_DIR

    if not args.check:
        manifest = build_standins(args.out)
        for entry in manifest["standins"]:
            print(f"{entry['name']}: {args.out / entry['file']} sha256 {entry['sha256']}")
        print(f"build cost: {manifest['build_cost']}")
        return 0
    hashes = rebuild_differences(args.out)
    differ = [name for name, (shipped, rebuilt) in hashes.items() if shipped != rebuilt]
    for name, (shipped, rebuilt) in hashes.items():
        print(f"{name}: {'DIFFERS' if name in differ else 'identical'} (shipped {shipped}, rebuilt {rebuilt or '-'})")
    if args.out == WEIGHTS_DIR and differ:
        print("a different platform or torch build can change float rounding; see docs/models.md", file=sys.stderr)
    return 1 if differ else 0


def _gates(args: argparse.Namespace) -> int:
    from moca.io import write_json
    from moca.standins.measure import measure_gates

    if args.work is not None:
        report = measure_gates(args.work, args.weights, args.videos)
    else:
        with tempfile.TemporaryDirectory(prefix="moca-standins-gates-") as tmp:
            report = measure_gates(Path(tmp), args.weights, args.videos)
    if args.out is not None:
        write_json(args.out, report)
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    from moca.standins.registry import WEIGHTS_DIR

    parser = argparse.ArgumentParser(prog="python -m moca.standins", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="train all stand-ins from scratch (about 7 min of one CPU core)")
    build.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="weights folder (default: the shipped one)")
    build.add_argument("--check", action="store_true", help="rebuild in a temporary folder; compare with --out")
    gates = commands.add_parser("gates", help="measure every gate on the held-out synthetic set")
    gates.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="stand-in weights folder")
    gates.add_argument("--out", type=Path, default=None, help="also write the report to this JSON file")
    gates.add_argument("--work", type=Path, default=None, help="keep the gate data here (default: a temp folder)")
    gates.add_argument("--videos", type=int, default=200, help="gate-set videos (5 frames each)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        return _build(args) if args.command == "build" else _gates(args)
    except MocaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
