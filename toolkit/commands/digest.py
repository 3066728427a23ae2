"""`campaign digest ID`: the content digest that approvals sign."""

from __future__ import annotations

import click

from toolkit.cli import App, pass_app


@click.command()
@click.argument("campaign_id", metavar="ID")
@click.option("--parts", "show_parts", is_flag=True,
              help="Also print each input's own SHA-256, to see what changed.")
@pass_app
def digest(app: App, campaign_id: str, show_parts: bool) -> int:
    """Print the content digest of campaign ID (what `approve` signs)."""
    from toolkit.digest import combine, digest_parts

    repo, _ = app.load()
    parts = digest_parts(repo, campaign_id)
    click.echo(combine(parts))
    if show_parts:
        for name, hexd in parts.items():
            click.echo(f"  {name} sha256:{hexd}")
    return 0
