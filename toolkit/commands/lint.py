"""`campaign lint [ID...]`: run the rule catalogue and report the findings."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING

import click

from toolkit.cli import App, pass_app
from toolkit.errors import EXIT_CHECK_FAILED, EXIT_OK, UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    from toolkit.findings import Finding
    from toolkit.lint import LintResult
    from toolkit.lint_workers import EarlyWorkers
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
    repo, result = lint_repository(app.root, campaign_ids, no_cache=no_cache, load=app.load)
    return _report(repo, result, campaign_ids, fmt, strict)


def lint_repository(root: Path, campaign_ids: tuple[str, ...] = (), *, no_cache: bool = False,
                    load: Callable[[], tuple[Repo, list[Finding]]] | None = None,
                    ) -> tuple[Repo, LintResult]:
    """What `campaign lint` does before it reports (bench/lint_bench.py measures this):
    fork the workers of a cold lint, load, check the IDs, lint with the cache."""
    from toolkit.lint import run_lint
    from toolkit.lint_workers import available_workers
    from toolkit.loader import load_repo

    early = _fork_early(root, campaign_ids, no_cache)
    try:
        repo, load_findings = load() if load is not None else load_repo(root)
        # The loaded repository (and the modules) stay alive to the end of the command:
        # leave them out of the cyclic collector's passes, which otherwise scan every
        # loaded node and model again and again while the rules run (a fifth of a warm lint
        # at 1,000 campaigns, bench/lint.md). Garbage the rules make is still collected.
        gc.freeze()
        try:
            for cid in campaign_ids:
                if cid not in repo.campaigns and not (repo.root / "campaigns" / cid).is_dir():
                    known = ", ".join(sorted(repo.campaigns)) or "none"
                    raise UserError(f"no campaign '{cid}' under campaigns/ (known: {known})",
                                    fix="pass the name of a folder under campaigns/")
            cache = None
            if not no_cache:
                from toolkit.lint_cache import LintCache

                cache = LintCache.for_repo(repo)
            result = run_lint(repo, load_findings, campaign_ids or None, cache=cache,
                              workers=available_workers(), early=early)
        finally:
            gc.unfreeze()
    finally:
        if early is not None:
            early.close()
    return repo, result


def _fork_early(root: Path, campaign_ids: tuple[str, ...], no_cache: bool
                ) -> EarlyWorkers | None:
    """For a cold lint of every campaign, worker processes forked before loading: each loads
    and lints its own share meanwhile (toolkit.lint_workers). Not when a lint cache exists
    (most campaigns are then cached: the workers would lint them for nothing)."""
    from toolkit.lint_workers import available_workers, fork_before_load

    workers = available_workers()
    if campaign_ids or workers < 2 or (not no_cache and _cache_exists(root)):
        return None
    return fork_before_load(root, workers)


def _cache_exists(root: Path) -> bool:
    """Whether the lint cache file exists, the state folder read off toolkit.yaml's
    top-level `state:` line without loading anything (a guess for speed only: when in
    doubt, "exists", and the workers fork after loading as before)."""
    import re

    from toolkit.lint_cache import CACHE_FILE

    try:
        with (root / "toolkit.yaml").open("rb") as f:
            head = f.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return True
    m = re.search(r"""(?m)^state:[ \t]*(.*?)[ \t]*(?:#.*)?$""", head)
    state = m.group(1).strip("'\"") if m else ".campaign/"
    return not state or (root / state / CACHE_FILE).exists()


def _report(repo: Repo, result: LintResult, campaign_ids: tuple[str, ...], fmt: str,
            strict: bool) -> int:
    from toolkit.lint import apply_strict
    from toolkit.report import RENDERERS, Report

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
