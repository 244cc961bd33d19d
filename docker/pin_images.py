"""Pin every image of a deployment by digest, and refuse a deployment that is not (`make images`, `make
check-images`; docker/README.md).

    pin_images.py build --registry REGISTRY --tag TAG --git-sha SHA
        build moca-cpu and moca-gpu, push them to REGISTRY, resolve the digest of every image (the pushed ones, and
        the third-party tags k8s/images/kustomization.yaml names), then write the digests into that kustomize
        component, the cluster pipeline config (kfp.cpu_image, kfp.gpu_image) and the Prefect deployment (image).
    pin_images.py check OVERLAY [FILE ...]
        render OVERLAY with kustomize and refuse (exit 1, one line each) any image not pinned by a real digest, in
        it or in the given pipeline configs / prefect.yaml; run before every `kubectl apply`.

Digests come from the registry (`docker buildx imagetools inspect`), never from a local image ID, so what is written
is what a node pulls. Needs a Docker engine with buildx for `build`; `check` needs only kubectl.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPONENT = Path("k8s/images/kustomization.yaml")
PIPELINE_CONFIG = Path("configs/pipeline_avsbench_s4.yaml")
PREFECT = Path("pipelines/prefect.yaml")
BUILT = {"moca-cpu": "docker/Dockerfile.cpu", "moca-gpu": "docker/Dockerfile.gpu"}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
PLACEHOLDER = re.compile(r"@sha256:0{64}$")


def run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"`{' '.join(command)}` failed: {(result.stderr or result.stdout).strip()[-500:]}")
    return result.stdout


def registry_digest(reference: str) -> str:
    """The digest the registry serves for `reference` (NAME:TAG): the multi-arch index digest when there is one."""
    digest = json.loads(run("docker", "buildx", "imagetools", "inspect", reference, "--format",
                            "{{json .Manifest.Digest}}"))  # fmt: skip
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        sys.exit(f"{reference}: the registry answered {digest!r}, not a sha256 digest")
    return digest


def build(root: Path, registry: str, tag: str, git_sha: str) -> dict[str, str]:
    """Build and push the moca images, resolve every digest, rewrite the files; returns name -> pinned image."""
    component = yaml.safe_load((root / COMPONENT).read_text())
    pinned = {}
    for entry in component["images"]:
        if entry["name"] in BUILT:
            entry["newName"] = f"{registry.rstrip('/')}/{entry['name']}"
            entry["newTag"] = tag
            reference = f"{entry['newName']}:{tag}"
            run("docker", "build", "-f", str(root / BUILT[entry["name"]]), "--build-arg", f"GIT_SHA={git_sha}",
                "-t", reference, str(root))  # fmt: skip
            run("docker", "push", reference)
        entry["digest"] = registry_digest(f"{entry['newName']}:{entry['newTag']}")
        pinned[entry["name"]] = f"{entry['newName']}@{entry['digest']}"
    header = "".join(line + "\n" for line in (root / COMPONENT).read_text().splitlines() if line.startswith("#"))
    (root / COMPONENT).write_text(header + yaml.safe_dump(component, sort_keys=False))
    _replace(root / PIPELINE_CONFIG, {"cpu_image": pinned["moca-cpu"], "gpu_image": pinned["moca-gpu"]})
    _replace(root / PREFECT, {"image": pinned["moca-cpu"]})
    return pinned


def _replace(path: Path, values: dict[str, str]) -> None:
    """Set `key: value` lines in a YAML file in place, keeping its comments."""
    text = path.read_text()
    for key, value in values.items():
        text, count = re.subn(rf"^(\s*{key}:\s*)\S+", lambda m, pin=value: m[1] + pin, text, count=1, flags=re.M)
        if count != 1:
            sys.exit(f"{path}: no `{key}:` line to pin")
    path.write_text(text)


def images_in(node: Any, where: str = "") -> list[tuple[str, str]]:
    """(where, image) of every `image` field in a rendered object, wherever it sits (pods, CRDs, Argo templates)."""
    if isinstance(node, dict):
        found = [(f"{where}.image", node["image"]) for key in ("image",) if isinstance(node.get(key), str)]
        return found + [hit for key, value in node.items() for hit in images_in(value, f"{where}.{key}")]
    if isinstance(node, list):
        return [hit for i, value in enumerate(node) for hit in images_in(value, f"{where}[{i}]")]
    return []


def problems(root: Path, overlay: Path, files: list[Path], kubectl: str) -> list[str]:
    rendered = run(kubectl, "kustomize", str(root / overlay))
    found = []
    for doc in (d for d in yaml.safe_load_all(rendered) if d):
        name = f"{doc['kind']}/{doc['metadata'].get('namespace', '-')}/{doc['metadata']['name']}"
        found += [(f"{overlay} {name}{where}", image) for where, image in images_in(doc)]
    for path in files:
        data = yaml.safe_load((root / path).read_text())
        found += [(f"{path}{where}", image) for where, image in images_in(data)]
        kfp = (data or {}).get("kfp", {})
        found += [(f"{path} kfp.{key}", kfp[key]) for key in ("cpu_image", "gpu_image") if key in kfp]
        found += [(f"{path} kfp.images.{name}", image) for name, image in kfp.get("images", {}).items()]
    return [f"{where}: {image} is a placeholder digest; run `make images REGISTRY=...`" if PLACEHOLDER.search(image)
            else f"{where}: {image} is not pinned by a sha256 digest" for where, image in found
            if PLACEHOLDER.search(image) or not DIGEST.search(image)]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build")
    build_parser.add_argument("--registry", required=True)
    build_parser.add_argument("--tag", required=True)
    build_parser.add_argument("--git-sha", required=True)
    check_parser = commands.add_parser("check")
    check_parser.add_argument("overlay", type=Path)
    check_parser.add_argument("files", type=Path, nargs="*")
    default_kubectl = Path(sys.executable).with_name("kubectl")
    check_parser.add_argument("--kubectl", default=str(default_kubectl) if default_kubectl.exists()
                              else shutil.which("kubectl") or "kubectl")  # fmt: skip
    args = parser.parse_args(argv)
    if args.command == "build":
        for name, image in build(args.root, args.registry, args.tag, args.git_sha).items():
            print(f"{name}: {image}")
        return 0
    found = problems(args.root, args.overlay, args.files, args.kubectl)
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print(f"{args.overlay}: every image pinned by digest")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
