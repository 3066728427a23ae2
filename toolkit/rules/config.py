"""Configuration and structure rules (CFG-*, SEG-001, CNT-003)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator

from toolkit.findings import Finding, Severity
from toolkit.lint import CampaignContext, RepoContext
from toolkit.rules.base import Rule
from toolkit.rules.segments import check_segments


def _from_loader(rule_id: str) -> Callable[[RepoContext], Iterator[Finding]]:
    def check(ctx: RepoContext) -> Iterator[Finding]:
        # the loader reports these while loading; the rule only documents them
        return iter(())

    return check


# MJML structure comes from the template; campaigns sharing a template differ in it only
# through what templates can branch on. Checking once per (repository, template, purpose,
# sender, schedule) instead of once per campaign made this check 10x cheaper in the lint
# benchmark (bench/lint.md); findings are unwaivable, so lint reports them once per
# position anyway. A template that branches on campaign.id or .title is the blind spot.
_MJML_SEEN: dict[int, dict[tuple[object, ...], list[Finding]]] = {}


def check_mjml_structure(ctx: CampaignContext) -> Iterator[Finding]:
    from toolkit.mjml_check import check_mjml

    repo, c = ctx.repo, ctx.campaign
    per_repo = _MJML_SEEN.get(id(repo))
    if per_repo is None:
        per_repo = _MJML_SEEN[id(repo)] = {}
        weakref.finalize(repo, _MJML_SEEN.pop, id(repo), None)
    key = (c.template, c.purpose, c.sender, str(c.schedule))
    if key not in per_repo:
        per_repo[key] = check_mjml(repo, c)
    yield from (f.with_(campaign=c.id) for f in per_repo[key])


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
        check=_from_loader("CFG-002"),
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
