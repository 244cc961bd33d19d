"""`python -m moca.standins build|gates|list`: rebuild the stand-in weights, measure their gates, or list them
(the same commands as `moca standins ...`; one implementation, `moca.standins.commands`).

    python -m moca.standins build [--out DIR] [--check]   # --check: build into a temporary folder and compare
    python -m moca.standins gates [--weights DIR] [--out FILE] [--work DIR] [--videos N]
    python -m moca.standins list [--weights DIR]

Exit codes: 0 done (with --check: every file identical to the shipped one; list: every sha256 matches); 1 a
difference or a mismatch; 2 bad input (`moca.errors.ConfigError`, one line on stderr).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from moca.errors import MocaError


def main(argv: list[str] | None = None) -> int:
    from moca.standins import commands
    from moca.standins.registry import WEIGHTS_DIR

    parser = argparse.ArgumentParser(prog="python -m moca.standins", description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(dest="command", required=True)
    build = subcommands.add_parser("build", help="train all stand-ins from scratch (~15 min of one CPU core)")
    build.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="weights folder (default: the shipped one)")
    build.add_argument("--check", action="store_true", help="rebuild in a temporary folder; compare with --out")
    gates = subcommands.add_parser("gates", help="measure every gate on the held-out synthetic set")
    gates.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="stand-in weights folder")
    gates.add_argument("--out", type=Path, default=None, help="also write the report to this JSON file")
    gates.add_argument("--work", type=Path, default=None, help="keep the gate data here (default: a temp folder)")
    gates.add_argument("--videos", type=int, default=200, help="gate-set videos (5 frames each)")
    listing = subcommands.add_parser("list", help="the stand-ins, their files and whether each matches its sha256")
    listing.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="stand-in weights folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        if args.command == "build":
            return commands.build(args.out, args.check)
        if args.command == "gates":
            return commands.gates(args.weights, args.out, args.work, args.videos)
        return commands.list_(args.weights)
    except MocaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
