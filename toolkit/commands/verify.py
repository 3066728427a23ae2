"""`campaign verify ID`: are the approvals valid for the current digest (exit 0) or not (exit 1)."""

from __future__ import annotations

import click

from toolkit.cli import App, pass_app
from toolkit.errors import EXIT_CHECK_FAILED


@click.command()
@click.argument("campaign_ids", metavar="ID", nargs=-1, required=True)
@pass_app
def verify(app: App, campaign_ids: tuple[str, ...]) -> int:
    """Check that every required role approved campaign ID's current content."""
    from toolkit.approvals import approval_status
    from toolkit.audit import audit_event

    repo, _ = app.load()
    failed = False
    for cid in campaign_ids:
        status = approval_status(repo, cid)
        for w in status.warnings:
            click.echo(f"warning: {w}", err=True)
        if status.valid:
            who = ", ".join(f"{role} by {name}" for role, name, _ in status.approvals)
            click.echo(f"{cid}: approved ({who}) for {status.digest}")
        else:
            failed = True
            click.echo(f"{cid}: NOT approved", err=True)
            for line in status.reasons:
                click.echo(f"  {line}", err=True)
        audit_event(
            repo,
            "verify",
            campaign=cid,
            digest=status.digest,
            valid=status.valid,
            approved_roles=status.approved_roles,
            missing_roles=status.missing_roles,
        )
    return EXIT_CHECK_FAILED if failed else 0
