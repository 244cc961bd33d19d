"""The project's own wheel, for a logged model's requirements (`moca` on the public index is an unrelated package).

Where the running code comes from decides how the wheel is made, so a model always names the code that logged it:
- a source checkout (`src/moca` beside a `pyproject.toml`: a clone, an editable install): built with
  `pip wheel --no-deps` from a copy of the package folders pyproject.toml lists (the checkout is never written to);
- an installed wheel (the images, a plain `pip install`): packed again from the installed files the
  distribution's RECORD lists, byte for byte, with a fresh RECORD (pip's own INSTALLER/REQUESTED/direct_url.json
  and compiled `__pycache__` files are left out, as in any wheel).
Either way it is made once per process.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from moca.errors import MocaError

DISTRIBUTION = "moca"
INSTALLER_FILES = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}  # written by pip, not in a wheel


def source_root() -> Path | None:
    """The checkout the imported `moca` comes from, or None for an installed package."""
    import moca

    root = Path(moca.__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    return root if project.get("name") == DISTRIBUTION else None


def build_from_source(root: Path, into: Path) -> Path:
    """`pip wheel --no-deps` of a copy of the checkout's package folders (pyproject.toml's package-dir)."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    folders = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    readme = pyproject["project"].get("readme")
    with tempfile.TemporaryDirectory(prefix="moca-wheel-src-") as staging:
        for name in ("pyproject.toml", *([readme] if isinstance(readme, str) else [])):
            shutil.copy2(root / name, Path(staging) / name)
        for folder in folders:
            shutil.copytree(root / folder, Path(staging) / folder,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                                 "--quiet", "--wheel-dir", str(into), staging], capture_output=True, text=True)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise MocaError(f"could not build the {DISTRIBUTION} wheel from {root}: {tail}")
    return _the_wheel(into)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def repack_installed(into: Path) -> Path:
    """The installed distribution packed again as a wheel (pure Python: its WHEEL file names the tag)."""
    dist = importlib.metadata.distribution(DISTRIBUTION)
    info_dir = next(f.parts[0] for f in dist.files if f.parts[0].endswith(".dist-info"))
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]  # fmt: skip
    if not tags:
        raise MocaError(f"{info_dir}/WHEEL: no Tag line; cannot pack the installed {DISTRIBUTION} again")
    wheel = into / f"{DISTRIBUTION}-{dist.version}-{tags[0]}.whl"
    records = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(dist.files, key=str):
            skip = (file.parts[0] == ".." or "__pycache__" in file.parts  # scripts outside site-packages, .pyc
                    or (file.parts[0] == info_dir and file.name in INSTALLER_FILES))
            if skip:
                continue
            data = Path(file.locate()).read_bytes()
            archive.writestr(file.as_posix(), data)
            records.append(_record_line(file.as_posix(), data))
        archive.writestr(f"{info_dir}/RECORD", "\n".join([*records, f"{info_dir}/RECORD,,"]) + "\n")
    return wheel


def _the_wheel(folder: Path) -> Path:
    found = sorted(folder.glob(f"{DISTRIBUTION}-*.whl"))
    if len(found) != 1:
        raise MocaError(f"{folder}: expected one {DISTRIBUTION} wheel, found {[p.name for p in found]}")
    return found[0]


@functools.lru_cache(maxsize=1)
def project_wheel() -> Path:
    """The wheel of the running code (made once per process, in a folder removed at exit)."""
    into = Path(tempfile.mkdtemp(prefix="moca-wheel-"))
    atexit.register(shutil.rmtree, into, ignore_errors=True)
    root = source_root()
    return build_from_source(root, into) if root is not None else repack_installed(into)
