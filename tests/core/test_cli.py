import subprocess
import sys

import typer

import moca.cli as cli


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


def test_moca_error_is_one_line_and_exit_2(monkeypatch, capsys):
    from moca.errors import DataError

    def probe() -> None:
        raise DataError("x.png", "truncated PNG")

    assert run_main(monkeypatch, ["probe"], probe) == 2
    assert "error: x.png: truncated PNG" in capsys.readouterr().err


def test_help_lists_every_command_group():
    out = subprocess.run([sys.executable, "-m", "moca.cli", "--help"], capture_output=True, text=True, check=True)
    for group in ("data", "models", "evaluate", "train"):
        assert group in out.stdout
