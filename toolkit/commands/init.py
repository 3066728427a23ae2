"""`campaign init DIR`: scaffold a campaign repository that lints clean."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from toolkit.errors import UserError

SCAFFOLD = Path(__file__).resolve().parent.parent / "scaffold"


@click.command()
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Create a new campaign repository in DIR (which must be empty or absent)."""
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} exists and is not a folder", fix="choose another DIR")
    if directory.is_dir() and any(directory.iterdir()):
        raise UserError(f"{directory} is not empty; init never overwrites files",
                        fix="choose a new or empty DIR")
    shutil.copytree(SCAFFOLD, directory, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".campaign"))
    (directory / "policy" / "authorizations").mkdir(parents=True, exist_ok=True)
    click.echo(f"created a campaign repository in {directory}\n"
               f"next: campaign --root {directory} lint")
