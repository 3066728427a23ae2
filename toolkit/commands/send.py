"""`campaign send ID --contacts SOURCE`: the gated, exactly-once send."""

from __future__ import annotations

from pathlib import Path

import click

from toolkit.cli import App, pass_app
from toolkit.errors import EXIT_CHECK_FAILED, EXIT_OK, UserError


@click.command()
@click.argument("campaign_id", metavar="ID")
@click.option("--contacts", "source", required=True, metavar="SOURCE",
              help="Contact source: .jsonl, .csv (optionally .enc) or sqlite:///path.")
@click.option("--dry-run", is_flag=True, help="Do everything but connect to the relay.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="With --dry-run: write each message as DIR/<pseudonym>.eml.")
@click.option("--retry-unconfirmed", is_flag=True,
              help="Also send to recipients whose message was in flight when a send stopped.")
@pass_app
def send(app: App, campaign_id: str, source: str, dry_run: bool, out: Path | None,
         retry_unconfirmed: bool) -> int:
    """Send campaign ID through its relay: gated, exactly once per recipient, resumable."""
    from toolkit.send.run import SendOptions, send_campaign, summary_lines

    if out is not None and not dry_run:
        raise UserError("--out writes .eml files only with --dry-run",
                        fix="add --dry-run, or drop --out")
    repo, findings = app.load()
    report = send_campaign(repo, findings, campaign_id, source,
                           SendOptions(dry_run=dry_run, out=out,
                                       retry_unconfirmed=retry_unconfirmed))
    # invalid records by line, as `plan` lists them: never sent, and worth fixing at the source
    from toolkit.contacts import describe

    where = describe(source)
    for line_no, problem in report.planned.problems:
        click.echo(f"{where}:{line_no}: invalid record: {problem}", err=True)
    more = report.planned.invalid_records - len(report.planned.problems)
    if more > 0:
        click.echo(f"{where}: ... and {more} more invalid records", err=True)
    for line in summary_lines(report):
        click.echo(line)
    if dry_run and out is not None:
        click.echo(f"  messages written to {out}/")
    return EXIT_CHECK_FAILED if report.stopped else EXIT_OK
