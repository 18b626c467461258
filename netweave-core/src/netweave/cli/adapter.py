"""``netweave adapter …``: tools for adapter authors."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group(name="adapter")
def adapter_group() -> None:
    """Tools for adapter authors (third-party adapter distributions)."""


@adapter_group.command(name="new")
@click.argument("name")
@click.option(
    "--directory",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create netweave-NAME/.",
)
def new_adapter(name: str, directory: Path) -> None:
    """Write a ready-to-build adapter distribution netweave-NAME (entry point NAME)."""
    from netweave.scaffold import ScaffoldError, render_adapter

    try:
        root = render_adapter(name, directory)
    except ScaffoldError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"wrote {root}")
    click.echo(f"next: cd {root} && pip install -e '.[testing]' && pytest")
    click.echo("the conformance kit's first run lists the hooks still to write")
