"""`campaign suppress import-mbox` and `campaign suppress import-dsn`: mail that came
back, into the suppression list. Counts only: no address is ever printed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from toolkit.cli import App, pass_app
from toolkit.errors import UserError

if TYPE_CHECKING:  # imported when run, so that --help stays fast
    from toolkit.models import Repo
    from toolkit.suppression import SuppressionStore

_MAILBOX = click.Path(exists=False, path_type=Path)


def _repo(app: App) -> Repo:
    repo, _findings = app.load()
    if repo.config is None:
        raise UserError("toolkit.yaml could not be read", where=str(app.root / "toolkit.yaml"),
                        fix="run `campaign lint` and fix the errors it reports")
    return repo


def _store(repo: Repo) -> SuppressionStore:
    """The store plan and send read."""
    from toolkit.state import state_dir
    from toolkit.suppression import SuppressionStore

    return SuppressionStore.for_state(state_dir(repo))


def _messages(n: int) -> str:
    return f"{n} message" if n == 1 else f"{n} messages"


@click.command("import-mbox")
@click.argument("mailbox", type=_MAILBOX)
@pass_app
def import_mbox(app: App, mailbox: Path) -> None:
    """Unsubscribe requests sent to the mailto address (an mbox file or a Maildir).

    Each message is matched by the unsubscribe token in its subject or body; a
    verified token suppresses its recipient (by pseudonym) for the token's kind.
    """
    from toolkit.inbound import scan_requests
    from toolkit.tokens import unsubscribe_secrets

    repo = _repo(app)
    counts, tokens = scan_requests(mailbox, unsubscribe_secrets(repo.config.unsubscribe.secret_env))
    new = 0
    with _store(repo) as store:
        for token in tokens:
            new += store.add(pseudonym=token.pseudonym, kind=token.kind,
                             source=f"unsubscribe-mailto:{token.campaign}")
    click.echo(f"read {_messages(counts.messages)} from {mailbox}")
    click.echo(f"  unsubscribed: {counts.accepted} ({new} new suppressions)")
    click.echo(f"  invalid token: {counts.invalid_token}")
    click.echo(f"  no token: {counts.no_token}")
    if counts.invalid_token or counts.no_token:
        click.echo("  requests without a valid token were not acted on: "
                   "read them in the mailbox and use `campaign suppress add` where needed")


@click.command("import-dsn")
@click.argument("mailbox", type=_MAILBOX)
@pass_app
def import_dsn(app: App, mailbox: Path) -> None:
    """Bounces (RFC 3464) and complaints (RFC 5965) from an mbox file or a Maildir.

    Hard bounces (Action: failed, Status 5.x.x) and abuse complaints suppress the
    address for every campaign (kind `all`); delays and 4.x.x failures are ignored.
    When the unsubscribe secret is set, a report whose recipient is redacted is
    matched through the token in the returned message's List-Unsubscribe.
    """
    from toolkit.inbound import scan_reports
    from toolkit.tokens import unsubscribe_secrets

    repo = _repo(app)
    env = repo.config.unsubscribe.secret_env
    secrets = unsubscribe_secrets(env) if os.environ.get(env) else None
    counts, found = scan_reports(mailbox, secrets)
    new = 0
    with _store(repo) as store:
        for source in ("dsn", "arf"):
            addresses = [a for a, s in found.addresses.items() if s == source]
            if addresses:
                new += store.add_many([(a, None) for a in addresses], kind="all", source=source)
        for token, source in found.tokens:
            new += store.add(pseudonym=token.pseudonym, kind="all",
                             source=f"{source}:{token.campaign}")
    click.echo(f"read {_messages(counts.messages)} from {mailbox}")
    click.echo(f"  hard bounces: {counts.hard_bounces}")
    click.echo(f"  complaints: {counts.complaints}")
    click.echo(f"  suppressed (kind all): {len(found.addresses)} addresses and "
               f"{len(found.tokens)} by token ({new} new suppressions)")
    click.echo(f"  ignored: {counts.soft_bounces} delays or temporary failures, "
               f"{counts.other_feedback} other feedback, {counts.not_reports} not a report")
    if counts.unmatched:
        hint = "" if secrets else f" (set {env} to match them by their unsubscribe token)"
        click.echo(f"  unmatched: {counts.unmatched} reports named no recipient{hint}")
