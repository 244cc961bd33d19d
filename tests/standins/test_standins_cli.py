"""`moca standins` and `python -m moca.standins` are one implementation: same output, same exit codes
(0 every file matches its sha256, 1 a mismatch, 2 no manifest)."""

from __future__ import annotations

import pytest

from moca.cli import _register_all, run
from moca.standins.__main__ import main as module_main


@pytest.fixture(scope="module", autouse=True)
def _commands():
    _register_all()


def _both(capsys, *args: str) -> tuple[int, str]:
    code = run(["standins", *args])
    cli_out = capsys.readouterr()
    assert module_main(list(args)) == code
    module_out = capsys.readouterr()
    assert module_out.out == cli_out.out
    return code, cli_out.out + cli_out.err


def test_list_shows_every_shipped_standin_as_matching(capsys):
    code, output = _both(capsys, "list")
    assert code == 0
    for name in ("dino_tiny_standin", "sam_tiny_standin", "imagebind_tiny_standin"):
        assert f"{name}  model=" in output and "MISMATCH" not in output
    assert "NOT the released weights" in output


def test_list_flags_a_changed_byte(capsys, tampered_weights):
    code, output = _both(capsys, "list", "--weights", str(tampered_weights))
    assert code == 1
    assert "dino_tiny_standin" in output and "SHA256 MISMATCH" in output


def test_a_folder_without_manifest_is_a_usage_error_in_one_line(capsys, tmp_path):
    assert run(["standins", "list", "--weights", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no stand-in manifest" in err
    assert module_main(["list", "--weights", str(tmp_path)]) == 2
