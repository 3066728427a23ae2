"""`campaign approve ID --role ROLE --key FILE`: sign the campaign's current digest."""

from __future__ import annotations

from pathlib import Path

import click

from toolkit.cli import App, pass_app


@click.command()
@click.argument("campaign_id", metavar="ID")
@click.option(
    "--role",
    required=True,
    help="The role you approve as (listed with your key in policy/approvers.yaml).",
)
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your private key file (from `campaign keygen`).",
)
@pass_app
def approve(app: App, campaign_id: str, role: str, key_file: Path) -> int:
    """Sign campaign ID's current content digest as ROLE; writes approvals/ID/<role>-<key>.json."""
    from toolkit.approvals import approve as sign
    from toolkit.audit import audit_event
    from toolkit.keys import load_private_key

    repo, _ = app.load()
    key = load_private_key(key_file)
    path, record = sign(repo, campaign_id, role=role, key=key)
    rel = path.relative_to(repo.root).as_posix()
    audit_event(
        repo,
        "approve",
        campaign=campaign_id,
        digest=record["digest"],
        role=role,
        approver=record["approver"],
        public_key=record["public_key"],
        record=rel,
    )
    click.echo(f"{campaign_id}: approved {record['digest']} as {role} ({record['approver']})")
    click.echo(f"wrote {rel}; commit it with the change it approves")
    return 0
