"""`campaign keygen --out FILE`: an Ed25519 approver key pair."""

from __future__ import annotations

from pathlib import Path

import click

from toolkit.keys import write_keypair


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key file to create (mode 0600); the public line goes to FILE.pub.",
)
def keygen(out: Path) -> int:
    """Create an approver key pair and print the public key line for policy/approvers.yaml."""
    line = write_keypair(out)
    click.echo(line)
    click.echo(
        f"private key: {out} (keep it secret; never commit it)\n"
        f"public key:  {out}.pub (add the line above to policy/approvers.yaml with your role)",
        err=True,
    )
    return 0
