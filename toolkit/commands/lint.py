"""`campaign lint [ID...]`: run the rule catalogue and report the findings."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING

import click

from toolkit.cli import App, pass_app
from toolkit.errors import EXIT_CHECK_FAILED, EXIT_OK, UserError

if TYPE_CHECKING:
    from toolkit.findings import Finding
    from toolkit.models import Repo


def git_prefix(root: Path) -> str:
    """The repository root's path inside its git checkout ("" at the top), so that SARIF
    and GitHub annotations point at files as GitHub sees them."""
    root = root.resolve()
    for parent in (root, *root.parents):
        if (parent / ".git").exists():
            rel = root.relative_to(parent).as_posix()
            return "" if rel == "." else rel + "/"
    return ""


@click.command()
@click.argument("campaign_ids", metavar="[ID]...", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "github"]),
              default="text", show_default=True, help="Output format.")
@click.option("--strict", is_flag=True,
              help="Refuse waivers of error-severity HIPAA-*, CANSPAM-005, CANSPAM-007 and "
                   "MBX-UNSUB-001 findings (CI on main).")
@click.option("--no-cache", "no_cache", is_flag=True,
              help="Lint every campaign afresh: neither read nor write the lint cache in the "
                   "state folder (docs/lint.md). The send gate never uses the cache.")
@pass_app
def lint(app: App, campaign_ids: tuple[str, ...], fmt: str, strict: bool,
         no_cache: bool) -> int:
    """Check campaigns against the rule catalogue (all campaigns, or the IDs given).

    Exits 1 when an unwaived error remains, 0 otherwise. An aid to compliance review,
    not legal advice.
    """
    repo, load_findings = app.load()
    # The loaded repository (and the modules) stay alive to the end of the command: leave
    # them out of the cyclic collector's passes, which otherwise scan every loaded node
    # and model again and again while the rules run (a fifth of a warm lint at 1,000
    # campaigns, bench/lint.md). Garbage the rules make is still collected.
    gc.freeze()
    try:
        return _lint(repo, load_findings, campaign_ids, fmt, strict, no_cache)
    finally:
        gc.unfreeze()


def _lint(repo: Repo, load_findings: list[Finding], campaign_ids: tuple[str, ...], fmt: str,
          strict: bool, no_cache: bool) -> int:
    from toolkit.lint import apply_strict, run_lint
    from toolkit.report import RENDERERS, Report

    for cid in campaign_ids:
        if cid not in repo.campaigns and not (repo.root / "campaigns" / cid).is_dir():
            known = ", ".join(sorted(repo.campaigns)) or "none"
            raise UserError(f"no campaign '{cid}' under campaigns/ (known: {known})",
                            fix="pass the name of a folder under campaigns/")
    cache = None
    if not no_cache:
        from toolkit.lint_cache import LintCache

        cache = LintCache.for_repo(repo)
    from toolkit.lint_workers import available_workers

    result = run_lint(repo, load_findings, campaign_ids or None, cache=cache,
                      workers=available_workers())
    if strict:
        result = apply_strict(result)
    linted = len(campaign_ids) if campaign_ids else len(repo.campaigns)
    prefix = git_prefix(repo.root) if fmt in ("sarif", "github") else ""
    report = Report(result.findings, linted, prefix)
    click.echo(RENDERERS[fmt](report), nl=False)
    from toolkit.audit import audit_event

    audit_event(repo, "lint", campaigns=sorted(campaign_ids or repo.campaigns),
                errors=len(result.errors), findings=len(result.findings), strict=strict)
    return EXIT_CHECK_FAILED if result.errors else EXIT_OK
