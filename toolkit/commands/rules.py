"""`campaign rules [RULE]`: list the rule catalogue, or explain one rule."""

from __future__ import annotations

import difflib

import click

from toolkit.errors import UserError


@click.command()
@click.argument("rule_id", metavar="[RULE]", required=False)
@click.option("--markdown", is_flag=True, help="Print the rule reference (docs/rules.md).")
def rules(rule_id: str | None, markdown: bool) -> None:
    """List every rule (id, severity, summary), or explain RULE with its citation and fix."""
    from toolkit.rules import RULES, docs, in_catalogue_order

    ordered = in_catalogue_order()
    if markdown:
        click.echo(docs.markdown(ordered), nl=False)
        return
    if rule_id is None:
        click.echo(docs.listing(ordered), nl=False)
        return
    rule = RULES.get(rule_id.strip().upper())
    if rule is None:
        close = difflib.get_close_matches(rule_id.upper(), list(RULES), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UserError(f"no rule '{rule_id}'", fix=f"{hint}`campaign rules` lists every rule id")
    click.echo(docs.explain(rule), nl=False)
