"""The `moca` command.

Each module in this package contributes its commands through `register(app)`, so features land as new files
without touching a shared one. Heavy libraries (torch, mlflow, kfp, great_expectations) are imported inside the
command functions so that `moca --help` stays instant. Every failure a user can cause ends as one line on stderr
and a documented exit code (moca.errors: 1 invalid data or failed step, 2 usage or config error, 130 interrupted).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import typer

from moca.errors import EXIT_INTERRUPTED, EXIT_USAGE, MocaError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])


def _register_all() -> None:
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
        importlib.import_module(f"{__name__}.{module}").register(app)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _usage_line(exc: Any) -> str:
    """A click/typer usage error as one line naming the command, e.g. `moca train: Missing option '--pairs'.`"""
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None else ""
    hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return f"{where}{_one_line(exc.format_message())}{hint}"


def _is_click_error(exc: BaseException) -> bool:
    """typer 0.29 raises its bundled `typer._click` exceptions, which are not click's: recognise either."""
    return hasattr(exc, "exit_code") and hasattr(exc, "format_message") and hasattr(exc, "show")


def run(args: list[str]) -> int:
    """Run the CLI on `args`; returns the exit code (what `main` exits with, and what tests check)."""
    try:
        # In non-standalone mode click returns a command's exit code instead of exiting with it.
        code = app(args=args, prog_name="moca", standalone_mode=False)
    except MocaError as exc:
        typer.secho(f"error: {_one_line(str(exc))}", fg=typer.colors.RED, err=True)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):  # before Exit: typer's Abort is one
        typer.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:
        if not _is_click_error(exc):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # `moca data` alone: the help is the answer
            exc.show()
            return int(exc.exit_code)
        typer.secho(f"error: {_usage_line(exc)}", fg=typer.colors.RED, err=True)
        return int(getattr(exc, "exit_code", EXIT_USAGE))
    if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C inside a command into this return value
        typer.echo("interrupted", err=True)
    return code if isinstance(code, int) else 0


def main() -> None:
    from moca.runtime import setup_process

    setup_process()
    _register_all()
    sys.exit(run(sys.argv[1:]))
