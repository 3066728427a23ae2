"""`campaign demo`: lint, approve, plan, send (to a local TLS relay), build: on a copy."""

from __future__ import annotations

from pathlib import Path

import click

from toolkit.cli import App, pass_app


def _build_site(repo_root: Path, site: Path) -> None:
    from toolkit.cli import cli

    cli.main(["--root", str(repo_root), "build", "--out", str(site)], prog_name="campaign",
             standalone_mode=False)


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="demo-out",
              show_default=True, help="Work directory (a copy of the repository, the mailbox, "
              "the site); the repository itself is never modified.")
@pass_app
def demo(app: App, out: Path) -> int:
    """Run the whole job end to end on the example repository, with a local TLS relay."""
    from toolkit.demo import run_demo

    if (app.root / "toolkit.yaml").is_file():
        click.echo(f"campaign demo: working on a copy of {app.root.resolve()} in {out}/")
    else:
        click.echo(f"campaign demo: no campaign repository in {app.root.resolve()}; working on "
                   f"the built-in example (what `campaign init` writes) in {out}/")
    result = run_demo(app.root, out, echo=click.echo, build_site=_build_site)
    click.echo("")
    click.echo(f"sent {len(result.sent)} campaign(s), {result.messages} message(s) over "
               f"STARTTLS to the local relay; {len(result.refused)} campaign(s) refused by "
               "the gate")
    click.echo(f"mailbox:      {result.mailbox}/  (Maildir: new/ holds one file a message)")
    if result.site is not None:
        click.echo(f"preview site: {result.site / 'index.html'}")
    click.echo(f"audit log:    verified, {result.audit_entries} entries "
               f"({result.work / 'repo' / '.campaign' / 'audit.jsonl'})")
    return 0
