"""Fake Secrets and a scanner that finds them in files and text (shared by the credential-leak tests)."""

from __future__ import annotations

from pathlib import Path

# Values a pod would get from Secrets; distinctive so a hit cannot be a coincidence.
FAKE_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAMOCARELIABILITY7",
    "AWS_SECRET_ACCESS_KEY": "moca-reliability-secret-key-do-not-log",
    "MLFLOW_TRACKING_PASSWORD": "moca-reliability-mlflow-password",
    "MINIO_ROOT_PASSWORD": "moca-reliability-minio-root-password",
}


def scan_for_secrets(folders: list[Path], texts: dict[str, str]) -> tuple[int, list[str]]:
    """(files scanned, "secret in where" for every hit) over all files under `folders` and the given texts."""
    leaks, scanned = [], 0
    for folder in folders:
        for file in (p for p in folder.rglob("*") if p.is_file()):
            scanned += 1
            data = file.read_bytes()
            leaks += [f"{name} in {file}" for name, value in FAKE_SECRETS.items() if value.encode() in data]
    for where, text in texts.items():
        leaks += [f"{name} in {where}" for name, value in FAKE_SECRETS.items() if value in text]
    return scanned, leaks
