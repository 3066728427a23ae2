"""Configuration and structure rules (CFG-*, SEG-001, CNT-003)."""

from __future__ import annotations

from collections.abc import Iterator

from toolkit.findings import Finding, Severity
from toolkit.lint import RepoContext
from toolkit.rules.base import Rule


def _from_loader(rule_id: str):  # noqa: ANN202
    def check(ctx: RepoContext) -> Iterator[Finding]:
        # the loader reports these while loading; the rule only documents them
        return iter(())

    return check


RULES = (
    Rule(
        id="CFG-001",
        severity=Severity.ERROR,
        summary="A file does not match its schema: YAML syntax, unknown key, wrong type, missing required key.",
        citation="DESIGN.md §2 (repository format)",
        fix="Correct the key or value at the reported line; `campaign rules` and docs/format.md list every key.",
        scope="repo",
        check=_from_loader("CFG-001"),
    ),
    Rule(
        id="CFG-002",
        severity=Severity.ERROR,
        summary="A reference does not resolve: template, partial, segment, sender, relay, authorization scope, field.",
        citation="DESIGN.md §2 (repository format)",
        fix="Create the referenced file or entry, or correct the name so it matches an existing one.",
        scope="repo",
        check=_from_loader("CFG-002"),
    ),
)
