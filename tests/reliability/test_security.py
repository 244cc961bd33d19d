"""Untrusted files and URIs: a pickle that would run code is refused wherever a checkpoint is loaded, weights are
used only after their sha256 matches, and with allowed roots configured no URI outside them is read.

(tests/models/test_weights.py covers `load_checkpoint` on a crafted file and a wrong hash on a local file; these
cover the other doors: training's resume, inference's model loader, S3 weights and the allowed roots.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from moca import storage
from moca.errors import MocaError, StorageError, WeightsError
from moca.io import sha256_file, write_json
from moca.models.weights import WeightsSpec, fetch_weights
from moca.train.checkpoint import load_latest_checkpoint, save_checkpoint


class _Payload:
    """Unpickling this creates `marker`: the proof that a loader executed code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant(path: Path, marker: Path, extra: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**(extra or {}), "weight": torch.zeros(2), "payload": _Payload(marker)}, path)
    return path


def test_pickle_payload_in_a_training_checkpoint_is_skipped_never_run(tmp_path: Path) -> None:
    folder, marker = tmp_path / "checkpoints", tmp_path / "pwned"
    save_checkpoint(folder, 1, {"config_hash": "cfg", "adapters": {"w": torch.ones(2)}}, keep_last=5)
    # The attacker also writes a matching sidecar, so size and hash checks pass and only weights_only stands guard.
    evil = _plant(folder / "step-00000002.pt", marker, {"format": 1, "step": 2, "config_hash": "cfg"})
    write_json(evil.with_name(evil.name + ".sha256"), {"sha256": sha256_file(evil), "size": evil.stat().st_size})

    state = load_latest_checkpoint(folder, "cfg")
    assert not marker.exists()
    assert state is not None and state["step"] == 1  # fell back to the last good checkpoint
    assert torch.equal(state["adapters"]["w"], torch.ones(2))


def test_pickle_payload_as_model_adapters_is_refused_by_inference(tmp_path: Path) -> None:
    from moca.infer.model import load_model

    marker = tmp_path / "pwned"
    model = tmp_path / "model"
    _plant(model / "adapters.pt", marker)
    (model / "config.yaml").write_text(yaml.safe_dump(
        {"model": {"backbone": "imagebind_tiny", "adapter": {"positions": [2], "bottleneck": 8, "heads": 2}},
         "seed": 0}))
    with pytest.raises(WeightsError, match="refused to load"):
        load_model(model)
    assert not marker.exists()


def test_weights_outside_the_allowed_roots_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    for folder in (allowed, outside):
        folder.mkdir()
        torch.save({"w": torch.ones(1)}, folder / "w.pt")
    monkeypatch.setenv(storage.ALLOWED_ROOTS_ENV, str(allowed))
    assert fetch_weights(WeightsSpec((allowed / "w.pt").as_uri())) == allowed / "w.pt"
    for uri in [(outside / "w.pt").as_uri(), str(outside / "w.pt"), str(allowed / ".." / "outside" / "w.pt")]:
        with pytest.raises(MocaError, match="outside the allowed roots"):
            fetch_weights(WeightsSpec(uri))


def test_downloaded_weights_are_checked_before_use(s3_env, tmp_path: Path) -> None:
    bucket = s3_env.create_bucket()
    good = tmp_path / "w.pt"
    torch.save({"w": torch.arange(4.0)}, good)
    uri = f"s3://{bucket}/weights/w.pt"
    storage.upload(good, uri)
    spec, cache = WeightsSpec(uri, sha256_file(good)), tmp_path / "cache"

    cached = fetch_weights(spec, cache)
    assert sha256_file(cached) == spec.sha256
    cached.write_bytes(b"bit rot")  # a damaged cache entry is fetched again, not used
    assert sha256_file(fetch_weights(spec, cache)) == spec.sha256

    tampered = tmp_path / "tampered.pt"
    torch.save({"w": torch.zeros(4)}, tampered)
    storage.upload(tampered, uri)  # the object in the store is replaced behind the config's back
    cached.unlink()
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        fetch_weights(spec, cache)
    assert list(cache.iterdir()) == []  # the wrong bytes are not left where the next run would find them


def test_storage_refuses_uris_outside_allowed_roots_before_any_io(s3_env, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_env.create_bucket()
    monkeypatch.setenv(storage.ALLOWED_ROOTS_ENV, f"s3://{bucket}/allowed,{tmp_path / 'in'}")
    src = tmp_path / "in" / "f.bin"
    src.parent.mkdir()
    src.write_bytes(b"x")
    storage.upload(src, f"s3://{bucket}/allowed/f.bin")
    with pytest.raises(StorageError, match="outside the allowed roots"):
        storage.upload(src, f"s3://{bucket}/elsewhere/f.bin")
    with pytest.raises(StorageError, match="outside the allowed roots"):
        storage.download(f"s3://{bucket}/allowed/../elsewhere/f.bin", tmp_path / "in" / "g.bin")
    listing = storage.s3_client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [o["Key"] for o in listing] == ["allowed/f.bin"]
