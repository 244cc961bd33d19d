"""The `moca` command.

Each module in this package contributes its commands through `register(app)`, so features land as new files
without touching a shared one. Heavy libraries (torch, mlflow, kfp, great_expectations) are imported inside the
command functions so that `moca --help` stays instant.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import typer

from moca.errors import MocaError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])


def _register_all() -> None:
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
        importlib.import_module(f"{__name__}.{module}").register(app)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _register_all()
    try:
        # In non-standalone mode click returns a command's exit code instead of exiting with it.
        code = app(standalone_mode=False)
    except MocaError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
