"""`moca models ...`: what the backbone registry holds and what a config will load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(no_args_is_help=True, help="Backbones, weights and the MoCA model.")


@models_app.command("info")
def info(
    config: Annotated[Path | None, typer.Option("--config", help="YAML config: report its models instead "
                                                                     "of the whole registry.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Weights cache (default: $MOCA_WEIGHTS_CACHE or "
                                                           ".moca/cache/weights).")] = None,
) -> None:
    """Parameter counts (total / trainable) and configured weights (URI, sha256, cached or not)."""
    from rich.console import Console
    from rich.table import Table

    from moca.models.info import config_info, registry_info

    rows = config_info(config, cache_dir) if config else registry_info()
    table = Table(title=f"models in {config}" if config else "registered models")
    for column in ("where", "model", "family", "parameters", "trainable", "weights URI", "sha256", "weights"):
        table.add_column(column, justify="right" if column in ("parameters", "trainable") else "left")
    for row in rows:
        spec = row.weights
        table.add_row(row.where, row.name, row.family, f"{row.total:,}", f"{row.trainable:,}",
                      spec.uri if spec else "-", (spec.sha256 or "(none)")[:12] if spec else "-",
                      row.weights_state)
    Console(width=200).print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
