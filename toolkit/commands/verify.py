"""`campaign verify ID`: are the approvals valid for the current digest (exit 0) or not (exit 1)."""

from __future__ import annotations

import json

import click

from toolkit.cli import App, pass_app
from toolkit.errors import EXIT_CHECK_FAILED, UserError


@click.command()
@click.argument("campaign_ids", metavar="[ID]...", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every campaign in the repository.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one object per campaign (for CI).")
@pass_app
def verify(app: App, campaign_ids: tuple[str, ...], all_: bool, fmt: str) -> int:
    """Check that every required role approved the current content of each campaign ID.

    Exit 0 when all are approved, 1 when any is not (the reasons name the
    missing role and, for a stale approval, what changed since).
    """
    from toolkit.approvals import approval_status
    from toolkit.audit import audit_event

    repo, _ = app.load()
    if all_:
        campaign_ids = tuple(sorted(repo.campaigns))
    elif not campaign_ids:
        raise UserError("name the campaigns to verify, or pass --all")
    results = []
    for cid in campaign_ids:
        status = approval_status(repo, cid)
        results.append({
            "campaign": cid, "valid": status.valid, "digest": status.digest,
            "approved_roles": status.approved_roles, "missing_roles": status.missing_roles,
            "approvals": [{"role": r, "approver": who, "record": rel}
                          for r, who, rel in status.approvals],
            "reasons": status.reasons, "warnings": status.warnings,
        })
        audit_event(repo, "verify", campaign=cid, digest=status.digest, valid=status.valid,
                    approved_roles=status.approved_roles, missing_roles=status.missing_roles)
        if fmt == "json":
            continue
        for w in status.warnings:
            click.echo(f"warning: {w}", err=True)
        if status.valid:
            who = ", ".join(f"{role} by {name}" for role, name, _ in status.approvals)
            click.echo(f"{cid}: approved ({who}) for {status.digest}")
        else:
            click.echo(f"{cid}: NOT approved", err=True)
            for line in status.reasons:
                click.echo(f"  {line}", err=True)
    if fmt == "json":
        click.echo(json.dumps(results, indent=2))
    return 0 if all(r["valid"] for r in results) else EXIT_CHECK_FAILED
