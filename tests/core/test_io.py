import os

import pytest

from moca.errors import DataError
from moca.io import atomic_open, atomic_write_text, read_json, sha256_file, sha256_tree, write_json


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "good")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as handle:
            handle.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "good"
    assert os.listdir(tmp_path) == ["out.txt"]  # no temporary left behind


def test_json_round_trip_and_errors(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    assert read_json(tmp_path / "a.json") == {"a": [1, 2], "b": 1}
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(DataError, match="bad.json: not valid JSON"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(DataError, match="missing.json: file not found"):
        read_json(tmp_path / "missing.json")


def test_hashes_are_content_based(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_bytes(b"abc")
    assert sha256_file(tmp_path / "d" / "x") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    first = sha256_tree(tmp_path / "d")
    (tmp_path / "d" / "x").write_bytes(b"abd")
    assert sha256_tree(tmp_path / "d") != first


def test_atomic_outputs_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "f", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644
