"""`campaign audit verify`: check the audit log's hash chain, MACs and head."""

from __future__ import annotations

import click

from toolkit.cli import App, pass_app
from toolkit.errors import EXIT_CHECK_FAILED


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command()
@pass_app
def verify(app: App) -> int:
    """Check each entry's hash, HMAC, sequence and link, and the chain head (exit 1 if tampered)."""
    from toolkit.audit import head_path, key_env, log_path
    from toolkit.audit_check import verify_log
    from toolkit.secrets import secret

    repo, _ = app.load()
    key = secret(key_env(repo), purpose="audit log HMAC key")
    path = log_path(repo)
    report = verify_log(path, head_path(repo), key)
    rel = path.relative_to(repo.root) if path.is_relative_to(repo.root) else path
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if not report.ok:
        click.echo(f"{rel}: audit log FAILED verification", err=True)
        for p in report.problems:
            click.echo(f"  {p}", err=True)
        return EXIT_CHECK_FAILED
    counts = ", ".join(f"{name} {n}" for name, n in sorted(report.events.items()))
    click.echo(
        f"{rel}: {report.entries} entries, chain intact through seq {report.last_seq}"
        + (f" ({counts})" if counts else "")
    )
    return 0


@audit.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@pass_app
def report(app: App, fmt: str) -> int:
    """What was sent: per send, campaign, digest, approvals, relay and TLS, outcomes (counts).

    Verifies the log first; exit 1 if it does not verify (the report is then still
    printed, marked unverified).
    """
    import json

    from toolkit.audit import head_path, key_env, log_path
    from toolkit.audit_check import verify_log
    from toolkit.audit_report import render_text, summarize
    from toolkit.secrets import secret

    repo, _ = app.load()
    key = secret(key_env(repo), purpose="audit log HMAC key")
    path = log_path(repo)
    if not path.is_file():
        click.echo(f"{path}: no audit log yet", err=True)
        return 0
    checked = verify_log(path, head_path(repo), key)
    summary = summarize(path)
    if fmt == "json":
        click.echo(json.dumps({
            "verified": checked.ok, "problems": checked.problems,
            "sends": [s.as_dict() for s in summary.sends],
            "refusals": summary.refusals, "approvals": summary.approvals,
        }, indent=2))
    else:
        if not checked.ok:
            click.echo("UNVERIFIED: the audit log failed verification; run "
                       "`campaign audit verify`", err=True)
        for line in render_text(summary) or ["no sends recorded"]:
            click.echo(line)
    return 0 if checked.ok else EXIT_CHECK_FAILED
