"""What a run names as its data, resolved to a content address; ingest by reference; each reader fetching only the
split it reads; data pointers published in the store (a local remote and a file:// pointer here, moto in
tests/dvc and tests/pipeline/test_pod_fidelity.py)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from moca.data.layout import list_videos, metadata_path
from moca.errors import ConfigError, DataError
from moca.io import read_json, sha256_tree
from moca.steps.ingest import IngestConfig, materialised, resolve_version, run
from moca.steps.runner import Inputs
from moca.versioning import add_and_push, data_version, publish


@pytest.fixture(scope="module")
def versioned(s4_source: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The data pushed to a local DVC remote: (version, remote folder)."""
    repo = tmp_path_factory.mktemp("producer")
    (repo / ".dvc").mkdir()
    remote = repo / "remote"
    (repo / ".dvc" / "config").write_text(f"[core]\n    no_scm = true\n    remote = local\n"
                                          f"['remote \"local\"']\n    url = {remote}\n")  # fmt: skip
    shutil.copytree(s4_source, repo / "data")
    return add_and_push(repo / "data"), remote


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def test_every_kind_of_rev_resolves_to_a_content_address(s4_source, versioned, tmp_path, monkeypatch):
    version, remote = versioned
    folder = IngestConfig(path=str(s4_source))
    assert resolve_version(folder) == sha256_tree(s4_source)  # "" = the folder as it is now
    assert resolve_version(dataclasses.replace(folder, rev=version)) == version
    pointer = tmp_path / "pointers" / "s4.dvc"
    dvc_file = remote.parent / "data.dvc"
    assert publish(dvc_file, pointer.as_uri(), remote=remote.as_uri()) == version
    assert resolve_version(dataclasses.replace(folder, rev=pointer.as_uri())) == version == data_version(
        pointer.as_uri())  # fmt: skip
    monkeypatch.chdir(tmp_path)  # no git, no .dvc: where a pod is
    with pytest.raises(DataError, match="main: a git revision, which cannot be resolved here"):
        resolve_version(dataclasses.replace(folder, rev="main"))
    with pytest.raises(DataError, match="data pointer unreadable"):
        data_version((tmp_path / "missing.dvc").as_uri())


def test_publish_refuses_a_version_that_is_not_in_the_remote(versioned, tmp_path):
    _, remote = versioned
    unpushed = tmp_path / "data.dvc"
    unpushed.write_text("outs:\n- md5: " + "1" * 32 + ".dir\n  path: data\n")
    with pytest.raises(DataError, match="is not in the remote .*: `dvc push` it first"):
        publish(unpushed, (tmp_path / "p.dvc").as_uri(), remote=remote.as_uri())
    with pytest.raises(DataError, match="a data pointer is a .dvc file named by URI"):
        publish(remote.parent / "data.dvc", str(tmp_path / "p.json"), remote=remote.as_uri())
    assert not (tmp_path / "p.dvc").exists()


def test_ingest_by_reference_moves_no_data_and_readers_fetch_their_split(s4_source, versioned, tmp_path):
    version, remote = versioned
    config = IngestConfig(path="nowhere", rev=version, remote=remote.as_uri(), by_reference=True)
    result = run(config, Inputs(), tmp_path / "ingest")
    assert result.info["data_version"] == version and result.info["fetched_with"] == "reference"
    assert _files(tmp_path / "ingest") == {"reference.json", "manifest.json"}
    assert read_json(tmp_path / "ingest" / "reference.json")["remote"] == remote.as_uri()
    with materialised(tmp_path / "ingest") as everything:
        assert _files(everything) == _files(s4_source) and sha256_tree(everything) == sha256_tree(s4_source)
    for split in ("train", "test"):
        with materialised(tmp_path / "ingest", split) as root:
            others = {p.relative_to(s4_source).as_posix() for v in list_videos(s4_source, "s4") if v.split != split
                      for p in (v.audio, *(f.image for f in v.frames))}  # fmt: skip
            mine = {p.relative_to(s4_source).as_posix() for v in list_videos(s4_source, "s4", split)
                    for p in (v.audio, *(f.image for f in v.frames), *(f.mask for f in v.frames if f.mask))}
            assert mine <= _files(root) and not others & _files(root)
            assert metadata_path(root, "s4").is_file()
        assert not root.exists()  # scratch space goes when the task is done


def test_ingest_checks_what_it_references_and_copies(s4_source, versioned, tmp_path):
    version, remote = versioned
    with pytest.raises(DataError, match="not a ms3 dataset: Multi-sources/ms3_meta_data.csv missing"):
        run(IngestConfig(rev=version, remote=remote.as_uri(), by_reference=True, benchmark="ms3"), Inputs(),
            tmp_path / "a")
    with pytest.raises(ConfigError, match="data.by_reference needs a DVC folder version"):
        run(IngestConfig(path=str(s4_source), rev="", by_reference=True), Inputs(), tmp_path / "b")
    stale = "f" * 64  # a content hash the folder no longer has: it changed after the run named it
    with pytest.raises(DataError, match="content changed since the run named it"):
        run(IngestConfig(path=str(s4_source), rev=stale), Inputs(), tmp_path / "c")
    with pytest.raises(DataError, match="holds neither data/ nor reference.json"):
        with materialised(tmp_path):
            pass
