"""Configuration and structure rules (CFG-*, SEG-001, CNT-003)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

from toolkit.findings import Finding, Pos, Severity
from toolkit.lint import CampaignContext, RepoContext
from toolkit.rules.base import Rule
from toolkit.rules.segments import check_segments


def _from_loader(rule_id: str) -> Callable[[RepoContext], Iterator[Finding]]:
    def check(ctx: RepoContext) -> Iterator[Finding]:
        # the loader reports these while loading; the rule only documents them
        return iter(())

    return check


VIEW_ONLINE = "view_online_url"


def check_references(ctx: RepoContext) -> Iterator[Finding]:
    """CFG-002 beyond the loader's: `view_online_url` resolves only when toolkit.yaml sets
    `organization.view_online_url`; without it a real message would link to a placeholder.
    One finding per use, owned by each campaign whose content reaches it (the send gate
    reads its own campaign's findings; lint shows a shared template's once)."""
    from toolkit.analysis import analyze_campaign
    from toolkit.jinja_env import make_env, make_string_env

    repo = ctx.repo
    if repo.config is None or repo.config.organization.view_online_url:
        return
    message = ("view_online_url does not resolve: toolkit.yaml has no "
               "organization.view_online_url; set it to the https address of the campaign's web "
               "copy (e.g. https://<your domain>/messages/{campaign}), or remove the link")
    env, string_env = make_env(repo.root / "templates"), make_string_env()
    for cid in sorted(repo.campaigns):
        camp = repo.campaigns[cid]
        analysis = analyze_campaign(repo, camp)
        if VIEW_ONLINE not in analysis.builtins_used:
            continue
        for key in ("subject", "preheader"):
            text = getattr(camp, key) or ""
            if VIEW_ONLINE in text and _names_view_online(string_env, text):
                yield Finding(rule="CFG-002", message=f"{key}: {message}", pos=camp.pos(key),
                              campaign=cid)
        for file in analysis.files:
            tpl = repo.templates.get(file.removeprefix("templates/"))
            if tpl is None or VIEW_ONLINE not in tpl.source:
                continue
            lines = tpl.source.splitlines()
            for line in _names_view_online(env, tpl.source):
                col = lines[line - 1].find(VIEW_ONLINE) + 1 if line <= len(lines) else 1
                yield Finding(rule="CFG-002", message=message, pos=Pos(file, line, max(col, 1)),
                              campaign=cid)


def _names_view_online(env: Any, source: str) -> list[int]:
    """Lines where a Jinja expression reads `view_online_url` (none if it does not parse:
    the analysis reports syntax errors)."""
    from jinja2 import TemplateSyntaxError, nodes

    try:
        ast = env.parse(source)
    except TemplateSyntaxError:
        return []
    return sorted({n.lineno for n in ast.find_all(nodes.Name)
                   if n.name == VIEW_ONLINE and n.ctx == "load"})


# MJML structure comes from the template; campaigns sharing a template differ in it only
# through what templates can branch on. Checking once per (repository, template, purpose,
# sender, schedule) instead of once per campaign made this check 10x cheaper in the lint
# benchmark (bench/lint.md); findings are unwaivable, so lint reports them once per
# position anyway. A template that branches on campaign.id or .title is the blind spot.
_MJML_SEEN: dict[int, dict[tuple[object, ...], list[Finding]]] = {}


def check_mjml_structure(ctx: CampaignContext) -> Iterator[Finding]:
    repo, c = ctx.repo, ctx.campaign
    per_repo = _MJML_SEEN.get(id(repo))
    if per_repo is None:
        per_repo = _MJML_SEEN[id(repo)] = {}
        weakref.finalize(repo, _MJML_SEEN.pop, id(repo), None)
    key = (c.template, c.purpose, c.sender, str(c.schedule))
    found = per_repo.get(key)
    if found is None:
        from toolkit.mjml_check import check_mjml

        found = per_repo[key] = check_mjml(repo, c)
    for f in found:
        yield f.with_(campaign=c.id)


RULES = (
    Rule(
        id="CFG-001",
        severity=Severity.ERROR,
        summary="A file does not match its schema: YAML syntax, unknown key, wrong type, missing "
        "required key.",
        citation="DESIGN.md §2 (repository format)",
        fix="Correct the key or value at the reported line; docs/format.md lists every key and "
        "its type. For MJML, use known mj-* components nested as MJML allows.",
        scope="campaign",
        check=check_mjml_structure,
        details="The loader reports YAML and schema problems; template syntax errors come from "
        "the template analysis; MJML structure (unknown tags, wrong nesting, which mjml-python "
        "compiles silently) is checked on the rendered template and traced to its line.",
    ),
    Rule(
        id="CFG-002",
        severity=Severity.ERROR,
        summary="A reference does not resolve: template, partial, segment, sender, relay, "
        "authorization scope, field.",
        citation="DESIGN.md §2 (repository format)",
        fix="Create the referenced file or entry, or correct the name so it matches an existing "
        "one.",
        scope="repo",
        check=check_references,
        details="The loader reports names that do not resolve. `view_online_url` in a template, "
        "subject or preheader resolves only when toolkit.yaml sets "
        "organization.view_online_url (the "
        "https address of the campaign's web copy, `{campaign}` replaced by its id): without "
        "it a real message would link to a placeholder.",
    ),
    Rule(
        id="SEG-001",
        severity=Severity.ERROR,
        summary="A segment condition uses an unknown operator, or an operator that does not fit "
        "the field's type.",
        citation="DESIGN.md §2 (segments)",
        fix="Use one of ==, !=, <, <=, >, >=, in, not in, contains, exists, within_days, "
        "older_than_days, with a value of the field's type: comparisons on numbers and dates, "
        "contains on lists and strings, within_days and older_than_days (a whole number of "
        "days) on dates, in and not in with a list.",
        scope="repo",
        check=check_segments,
    ),
)
