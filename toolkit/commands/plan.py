"""`campaign plan ID --contacts SOURCE`: recipients and exclusions by reason, counts only."""

from __future__ import annotations

import json

import click

from toolkit.cli import App, pass_app
from toolkit.contacts import describe


@click.command()
@click.argument("campaign_id", metavar="ID")
@click.option(
    "--contacts",
    "source",
    required=True,
    metavar="SOURCE",
    help="A .jsonl or .csv file (optionally .enc), or a sqlite:/// URL.",
)
@click.option(
    "--at",
    "at_text",
    metavar="TIME",
    help="Evaluate dates as of this ISO-8601 time instead of now.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@pass_app
def plan(app: App, campaign_id: str, source: str, at_text: str | None, fmt: str) -> None:
    """Who would receive campaign ID, and who is excluded and why (counts only)."""
    from toolkit import plan as planning
    from toolkit import plan_report

    at = planning.parse_at(at_text)
    repo, _ = app.load()
    result = planning.plan(repo, campaign_id, source, at=at)
    where = describe(source)
    for line, problem in result.problems:
        click.echo(f"{where}:{line}: invalid record: {problem}", err=True)
    more = result.invalid_records - len(result.problems)
    if more > 0:
        click.echo(f"{where}: ... and {more} more invalid records", err=True)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    elif fmt == "markdown":
        click.echo(plan_report.markdown(result), nl=False)
    else:
        click.echo(plan_report.text(result), nl=False)
