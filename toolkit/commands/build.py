"""`campaign build [--out DIR]`: lint, render every campaign for its personas, write the site."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from toolkit.cli import App, pass_app
from toolkit.errors import EXIT_CHECK_FAILED, UserError


def _at(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"--at: '{value}' is not an ISO-8601 time",
                        fix="write it like 2026-11-25T09:00:00+00:00") from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the site (default: site/ in the repository).")
@click.option("--at", "at", default=None, metavar="TIME",
              help="Render previews and match personas as of this ISO-8601 time "
                   "(default: each campaign's schedule, else a fixed date; see docs/rendering.md).")
@pass_app
def build(app: App, out: Path | None, at: str | None) -> int:
    """Lint, render every campaign for its personas and write the static preview site.

    The site is written even when lint finds errors, so that reviewers see them;
    the exit code is then 1.
    """
    from toolkit.site import build_site

    when = _at(at)
    repo, load_findings = app.load()
    target = (out if out is not None else repo.root / "site").resolve()
    result = build_site(repo, load_findings, target, at=when)
    errors = result.errors
    warnings = [f for f in result.findings if not f.waived and f.severity is not None
                and f.severity.value == "warning"]
    click.echo(f"wrote {result.pages} pages to {target}; open {target / 'index.html'}")
    click.echo(f"{len(repo.campaigns)} campaigns, {len(errors)} errors, {len(warnings)} warnings")
    from toolkit.audit import audit_event

    audit_event(repo, "build", campaigns=sorted(repo.campaigns), pages=result.pages,
                errors=len(errors), warnings=len(warnings))
    if errors:
        click.echo("lint found errors: see the site or run `campaign lint`", err=True)
        return EXIT_CHECK_FAILED
    return 0
