"""`moca standins build|gates|list`: the STAND-IN foundation models (synthetic-data DINO, SAM and ImageBind
stand-ins, NOT the released weights); the same commands as `python -m moca.standins` (`moca.standins.commands`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

standins_app = typer.Typer(no_args_is_help=True, help="Stand-in DINO, SAM and ImageBind weights (NOT the real "
                                                      "ones): build, gate, list.")
WeightsOption = Annotated[Path | None, typer.Option("--weights", help="Stand-in weights folder (default: the "
                                                                         "shipped one, moca/standins/weights).")]


def _folder(weights: Path | None) -> Path:
    from moca.standins.registry import WEIGHTS_DIR

    return weights if weights is not None else WEIGHTS_DIR


@standins_app.command("build")
def build(
    out: Annotated[Path | None, typer.Option("--out", help="Weights folder to write (default: the shipped one).")]
    = None,
    check: Annotated[bool, typer.Option("--check", help="Rebuild in a temporary folder and compare with --out "
                                                        "(exit 1 on any difference).")] = False,
) -> None:
    """Train every stand-in from scratch on its synthetic corpus (~15 min of one CPU core)."""
    from moca.standins import commands

    raise typer.Exit(commands.build(_folder(out), check))


@standins_app.command("gates")
def gates(
    weights: WeightsOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the report to this JSON file.")] = None,
    work: Annotated[Path | None, typer.Option("--work", help="Keep the gate data here (default: a temp folder).")]
    = None,
    videos: Annotated[int, typer.Option("--videos", help="Gate-set videos (5 frames each).")] = 200,
) -> None:
    """Measure what each stand-in carries on a held-out synthetic set, next to its random init."""
    from moca.standins import commands

    raise typer.Exit(commands.gates(_folder(weights), out, work, videos))


@standins_app.command("list")
def list_standins(weights: WeightsOption = None) -> None:
    """The stand-ins, their registry models and files, and whether each file matches its sha256 (exit 1 if not)."""
    from moca.standins import commands

    raise typer.Exit(commands.list_(_folder(weights)))


def register(app: typer.Typer) -> None:
    app.add_typer(standins_app, name="standins")
