"""`campaign render ID --persona NAME [--format html|text|eml]`: one rendered message."""

from __future__ import annotations

import sys

import click

from toolkit.cli import App, pass_app
from toolkit.errors import UserError


@click.command()
@click.argument("campaign_id", metavar="ID")
@click.option("--persona", required=True, help="A synthetic contact from fixtures/personas.yaml.")
@click.option("--format", "fmt", type=click.Choice(["html", "text", "eml"]), default="html",
              show_default=True,
              help="eml: the complete MIME message as it would be sent "
                   "(with a preview unsubscribe token).")
@pass_app
def render(app: App, campaign_id: str, persona: str, fmt: str) -> int:
    """Render campaign ID for one persona and print it."""
    from toolkit.digest import campaign_digest, require_campaign
    from toolkit.message import build_message, preview_token
    from toolkit.mjml_check import check_mjml
    from toolkit.render import RenderError, preview_now, render_preview

    repo, _ = app.load()
    campaign = require_campaign(repo, campaign_id)
    if persona not in repo.personas:
        known = ", ".join(sorted(repo.personas)) or "none defined"
        raise UserError(f"unknown persona '{persona}' (known: {known})",
                        fix="pass a persona name from fixtures/personas.yaml")
    try:
        rendered = render_preview(repo, campaign, persona)
    except RenderError as exc:
        fix = f"correct the template; `campaign lint {campaign_id}` lists every problem"
        raise UserError(exc.message, where=f"{exc.file}:{exc.line}", fix=fix) from None
    for f in check_mjml(repo, campaign):
        click.echo(f"{f.pos}: warning {f.rule} {f.message}", err=True)
    if fmt == "html":
        click.echo(rendered.html, nl=False)
    elif fmt == "text":
        click.echo(rendered.text, nl=False)
    else:
        contact = repo.personas[persona].contact
        msg = build_message(repo, campaign, contact, rendered,
                            digest=campaign_digest(repo, campaign.id),
                            token=preview_token(repo, campaign, contact),
                            now=preview_now(campaign))
        sys.stdout.buffer.write(msg.as_bytes())
        sys.stdout.buffer.flush()
    return 0
