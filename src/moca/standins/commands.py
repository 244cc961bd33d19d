"""The stand-in commands, shared by `python -m moca.standins` and `moca standins`: each prints its result and
returns the exit code (0 done; 1 a check found a difference or a file that does not match its sha256). Bad input
raises `moca.errors.MocaError` (exit 2 for config errors), which both front ends print as one line."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from moca.errors import EXIT_FAILED, EXIT_OK
from moca.standins.registry import WEIGHTS_DIR


def build(out: Path = WEIGHTS_DIR, check: bool = False) -> int:
    """Train every stand-in into `out`; with `check`, rebuild in a temporary folder and compare with `out`."""
    from moca.standins.build import build_standins, rebuild_differences

    if not check:
        manifest = build_standins(out)
        for entry in manifest["standins"]:
            print(f"{entry['name']}: {out / entry['file']} sha256 {entry['sha256']}")
        print(f"build cost: {manifest['build_cost']}")
        return EXIT_OK
    hashes = rebuild_differences(out)
    differ = [name for name, (shipped, rebuilt) in hashes.items() if shipped != rebuilt]
    for name, (shipped, rebuilt) in hashes.items():
        print(f"{name}: {'DIFFERS' if name in differ else 'identical'} (shipped {shipped}, rebuilt {rebuilt or '-'})")
    if out == WEIGHTS_DIR and differ:
        print("a different platform or torch build can change float rounding; see docs/models.md", file=sys.stderr)
    return EXIT_FAILED if differ else EXIT_OK


def gates(weights: Path = WEIGHTS_DIR, out: Path | None = None, work: Path | None = None, videos: int = 200) -> int:
    """Measure every gate of the stand-ins in `weights` on the held-out set; print the report (and write `out`)."""
    from moca.io import write_json
    from moca.standins.measure import measure_gates

    if work is not None:
        report = measure_gates(work, weights, videos)
    else:
        with tempfile.TemporaryDirectory(prefix="moca-standins-gates-") as tmp:
            report = measure_gates(Path(tmp), weights, videos)
    if out is not None:
        write_json(out, report)
    print(json.dumps(report, indent=2))
    return EXIT_OK


def list_(folder: Path = WEIGHTS_DIR) -> int:
    """Each stand-in of `folder`: registry model, file, size and whether the file matches its sha256."""
    from moca.io import sha256_file
    from moca.standins.registry import read_manifest

    bad = 0
    for name, standin in sorted(read_manifest(folder).items()):
        path = standin.path(folder)
        state = "missing" if not path.is_file() else "ok" if sha256_file(path) == standin.sha256 else "SHA256 MISMATCH"
        bad += state != "ok"
        size = f"{path.stat().st_size / 2**20:.1f} MB" if path.is_file() else "-"
        print(f"{name}  model={standin.model}  file={path}  {size}  sha256={standin.sha256}  {state}")
    print("STAND-INS trained on synthetic data (python -m moca.standins build); NOT the released weights")
    return EXIT_FAILED if bad else EXIT_OK
