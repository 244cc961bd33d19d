"""`moca models compare|promote|rollback`: the registered versions side by side, and the `@champion` alias."""

from __future__ import annotations

import typer

from moca.cli.models import models_app

NAME_OPTION = typer.Option("moca", "--name", help="Registered model name.")


@models_app.command("compare")
def compare_command(
    name: str = NAME_OPTION,
    output: str = typer.Option("table", "--format", help="table, csv or json."),
) -> None:
    """Print every registered version side by side: champion marker, its scores (the metrics of its logged model,
    as the MLflow UI shows them), the metric promotion judged it by, data version, git SHA, config hash, and the
    promotion decision."""
    from moca.errors import ConfigError
    from moca.tracking.registry import compare_versions

    if output not in ("table", "csv", "json"):
        raise ConfigError(f"--format {output!r}: choose table, csv or json")
    table = compare_versions(name)
    if table.empty:
        typer.echo(f"no versions of model {name!r} are registered")
    elif output == "csv":
        typer.echo(table.to_csv(index=False), nl=False)
    elif output == "json":
        typer.echo(table.to_json(orient="records", date_format="iso", indent=2))
    else:
        champion = table[table["champion"] == "*"]
        if champion.empty:
            typer.echo(f"model {name!r}: no champion")
        else:
            judged_by = champion["judged_by"].iloc[0].replace("(max)", "(higher is better)")
            typer.echo(f"model {name!r}: champion v{champion['version'].iloc[0]}, judged by "
                       f"{judged_by.replace('(min)', '(lower is better)')}")
        typer.echo(table.drop(columns=["judged_by", "decision"]).to_string(index=False))
        typer.echo("\ndecisions:")
        for version, decision in zip(table["version"], table["decision"]):
            typer.echo(f"  v{version}: {decision or '(none recorded)'}")


@models_app.command("promote")
def promote_command(
    version: int = typer.Argument(..., help="The version to promote."),
    force: bool = typer.Option(False, "--force", help="Promote even if it does not beat the champion."),
    name: str = NAME_OPTION,
) -> None:
    """Give VERSION the @champion alias if it beats the champion on its registered metric (or with --force)."""
    from moca.tracking.registry import promote_version

    result = promote_version(version, force=force, name=name)
    verdict = "promoted" if result.promoted else "not promoted"
    typer.echo(f"v{result.version} {verdict}: {result.reason}")


@models_app.command("rollback")
def rollback_command(name: str = NAME_OPTION) -> None:
    """Give @champion back to the version that held it before the current one."""
    from moca.tracking.registry import rollback_champion

    typer.echo(rollback_champion(name).reason)


def register(app: typer.Typer) -> None:
    """The commands attach to `models_app`, which `moca.cli.models` adds to the root app."""
