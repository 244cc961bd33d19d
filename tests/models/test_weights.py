from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from moca.errors import WeightsError
from moca.io import sha256_file
from moca.models import WeightsSpec, build_model, cache_path, fetch_weights, load_weights
from moca.models import weights as weights_module

TINY = ["dino_tiny", "imagebind_tiny", "sam_tiny"]


def _save(obj: object, path: Path) -> WeightsSpec:
    torch.save(obj, path)
    return WeightsSpec(path.resolve().as_uri(), sha256_file(path))


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


# How real checkpoints arrive: bare, nested under a key, or saved from a DDP-wrapped model.
WRAPPERS = {
    "bare": lambda sd: sd,
    "nested": lambda sd: {"model": sd, "epoch": 3},
    "ddp": lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
}


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_checkpoint_round_trips_through_a_file_uri(tmp_path, name, wrapper):
    torch.manual_seed(123)
    original = build_model(name)
    spec = _save(WRAPPERS[wrapper](original.state_dict()), tmp_path / "ckpt.pt")
    torch.manual_seed(456)  # a differently initialised model, so equality proves the load happened
    loaded = build_model(name, spec)
    _assert_same_state(original, loaded)


def test_plain_path_is_read_in_place_without_caching(tmp_path):
    spec = _save(build_model("dino_tiny").state_dict(), tmp_path / "dino.pt")
    plain = WeightsSpec(str(tmp_path / "dino.pt"), spec.sha256)
    assert fetch_weights(plain, tmp_path / "cache") == tmp_path / "dino.pt"
    assert not (tmp_path / "cache").exists()


def test_wrong_hash_names_uri_expected_and_actual(tmp_path):
    spec = _save(build_model("dino_tiny").state_dict(), tmp_path / "dino.pt")
    wrong = WeightsSpec(spec.uri, "0" * 64)
    with pytest.raises(WeightsError) as info:
        build_model("dino_tiny", wrong)
    message = str(info.value)
    assert spec.uri in message and "0" * 64 in message and spec.sha256 in message


def test_malformed_hash_is_rejected_up_front():
    with pytest.raises(WeightsError, match="64 hex digits"):
        WeightsSpec("file:///x.pt", "abc")


class _RunsCodeWhenUnpickled:
    """A pickle payload that would create a folder if unpickled: the classic checkpoint exploit."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_payload_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    spec = _save({"weight": torch.zeros(2), "payload": _RunsCodeWhenUnpickled(marker)}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="refused to load.*posix.mkdir"):
        build_model("dino_tiny", spec)
    assert not marker.exists()


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable torch checkpoint"):
        build_model("dino_tiny", WeightsSpec(str(tmp_path / "notes.pt")))
    with pytest.raises(WeightsError, match="not found"):
        build_model("dino_tiny", WeightsSpec(str(tmp_path / "missing.pt")))


def test_key_mismatch_lists_missing_and_unexpected_keys(tmp_path):
    spec = _save(build_model("sam_tiny").state_dict(), tmp_path / "sam.pt")
    with pytest.raises(WeightsError) as info:
        build_model("dino_tiny", spec)
    message = str(info.value)
    assert "missing: blocks.0." in message and "more)" in message  # long lists are cut, with a count
    assert "unexpected" in message and "image_encoder." in message


def test_shape_mismatch_is_reported_with_both_shapes():
    model = build_model("dino_tiny")
    state = model.state_dict()
    state["cls_token"] = torch.zeros(1, 1, 32)
    with pytest.raises(WeightsError, match=r"cls_token: checkpoint \(1, 1, 32\) vs model \(1, 1, 64\)"):
        load_weights(model, state)
    report = load_weights(model, state, strict=False)  # non-strict: loads what fits, reports the rest
    assert report.mismatched and not report.missing and not report.unexpected


def test_remote_uri_is_downloaded_once_into_the_cache(tmp_path, monkeypatch):
    source = tmp_path / "remote.pt"
    spec_local = _save(build_model("dino_tiny").state_dict(), source)
    calls = []

    def fake_download(uri: str, dest: Path) -> Path:  # stands in for moca.storage.download (tested there)
        calls.append(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(source.read_bytes())
        return dest

    monkeypatch.setattr("moca.storage.download", fake_download)
    spec = WeightsSpec("s3://models/dino/remote.pt", spec_local.sha256)
    first = fetch_weights(spec, tmp_path / "cache")
    second = fetch_weights(spec, tmp_path / "cache")
    assert first == second == cache_path(spec, tmp_path / "cache") and calls == [spec.uri]

    bad = WeightsSpec("https://example.org/other.pt", "f" * 64)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        fetch_weights(bad, tmp_path / "cache")
    assert not cache_path(bad, tmp_path / "cache").exists()  # the wrong file is not left for the next run


def test_unwrap_keeps_plain_state_dicts_untouched():
    state = {"a.weight": torch.ones(1), "model.bias": torch.zeros(1)}
    assert weights_module.unwrap_state_dict(state) == state
