"""The `moca` entry point: every failure a user can cause is one line on stderr with a documented exit code
(0 ok, 1 invalid data / failed step, 2 usage or config error, 130 interrupted), never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest
import typer

import moca.cli as cli
from moca.errors import ConfigError, DataError, ValidationFailed, WeightsError

REPO = Path(__file__).resolve().parents[2]


def run_main(monkeypatch, argv, command):
    """Run moca's main() with one extra command registered; return its exit code."""
    monkeypatch.setattr(sys, "argv", ["moca", *argv])
    app = typer.Typer()
    app.command("probe")(command)
    app.command("other")(lambda: None)  # two commands, so typer keeps the sub-command form
    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(cli, "_register_all", lambda: None)
    try:
        cli.main()
    except SystemExit as exc:
        return exc.code
    return 0


def test_typer_exit_code_is_propagated(monkeypatch):
    def probe() -> None:
        raise typer.Exit(1)

    assert run_main(monkeypatch, ["probe"], probe) == 1


@pytest.mark.parametrize(("error", "code"), [
    (DataError("x.png", "truncated PNG"), 1), (ValidationFailed("data failed validation"), 1),
    (WeightsError("w.pt: sha256 mismatch"), 1), (ConfigError("train.lr: expected a number"), 2),
    (KeyboardInterrupt(), 130),
])  # fmt: skip
def test_each_error_is_one_line_with_its_exit_code(monkeypatch, capsys, error, code):
    def probe() -> None:
        raise error

    assert run_main(monkeypatch, ["probe"], probe) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and (err[0] == "interrupted" if code == 130 else err[0] == f"error: {error}")


@pytest.fixture(scope="module")
def registered():
    cli._register_all()


def moca(capsys, *args: str) -> tuple[int, list[str]]:
    code = cli.run(list(args))
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(("args", "message"), [
    (["mine-pairs", "--benchmark", "s4", "--out", "o"], "moca mine-pairs: Missing option '--data'."),
    (["evaluate", "--pred", "p", "--data", "d", "--benchmark", "s4", "--out", "o", "--bogus"],
     "moca evaluate: No such option: --bogus"),
    (["mine-pairs", "--data", "d", "--benchmark", "s4", "--out", "o", "--k", "abc"],
     "moca mine-pairs: No such option: --k"),
    (["train", "--pairs", "p", "--out", "o", "--max-steps", "0"], "moca train: No such option: --max-steps"),
    (["report", "--runs", "a=x", "b=y", "--data", "d", "--out", "o"],
     "moca report: Got unexpected extra argument(s) (b=y)"),
    (["mine-pairs", "--data", "d", "--benchmark", "s4", "--out", "o", "--set", "mining.k=abc"],
     "mining.k: expected an integer, got 'abc'"),
    (["mine-pairs", "--data", "d", "--benchmark", "s4", "--out", "o", "--set", "mining.k"],
     "--set 'mining.k': expected KEY=VALUE"),
    (["mine-pairs", "--data", "d", "--benchmark", "s4", "--out", "o", "--set", "minig.k=3"],
     "unknown key(s) ['minig']"),
])  # fmt: skip
def test_usage_and_config_errors_are_one_line_and_exit_2(registered, capsys, args, message):
    code, err = moca(capsys, *args)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


@pytest.mark.parametrize(("key", "message"), [
    ("train.batch_size=eight", "train.batch_size: expected an integer, got 'eight'"),
    ("train.model.adapter.positions='2,4'", "train.model.adapter.positions: expected a list of integers, got '2,4'"),
    ("train.epochs=1.5", "train.epochs: expected an integer, got 1.5"),
    ("train.cache_prefix='no'", "train.cache_prefix: expected true or false, got 'no'"),
])  # fmt: skip
def test_config_type_errors_name_the_key(registered, capsys, tmp_path, key, message):
    code, err = moca(capsys, "train", "--config", str(REPO / "configs" / "demo.yaml"), "--pairs", str(tmp_path),
                     "--out", str(tmp_path / "out"), "--set", key)
    assert code == 2 and len(err) == 1 and err[0].endswith(f"demo.yaml: {message}")  # file, key, problem
    assert not (tmp_path / "out").exists()


def test_the_same_errors_name_the_file_in_a_yaml_config(registered, capsys, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text((REPO / "configs" / "demo.yaml").read_text() + "batch_size: eight\n")
    code, err = moca(capsys, "train", "--config", str(config), "--pairs", str(tmp_path), "--out", str(tmp_path / "o"))
    assert code == 2 and err == [f"error: {config}: train.batch_size: expected an integer, got 'eight'"]


def test_an_output_folder_that_is_a_file_is_refused(registered, capsys, tmp_path):
    scores = tmp_path / "scores.json"
    scores.write_text("{}")
    code, err = moca(capsys, "evaluate", "--pred", str(tmp_path), "--data", str(tmp_path), "--benchmark", "s4",
                     "--out", str(scores))
    assert code == 2 and err == [f"error: {scores}: exists and is not a folder; a step writes a folder"]


def test_help_lists_every_command_group():
    out = subprocess.run([sys.executable, "-m", "moca.cli", "--help"], capture_output=True, text=True, check=True)
    for group in ("data", "models", "evaluate", "train"):
        assert group in out.stdout


def test_a_real_usage_error_prints_no_traceback(tmp_path):
    moca_bin = Path(sys.executable).parent / "moca"
    result = subprocess.run([str(moca_bin), "mine-pairs", "--benchmark", "s4"], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: moca mine-pairs: Missing option '--data'. (see moca mine-pairs --help)"]
