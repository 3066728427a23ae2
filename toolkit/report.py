"""Renderers of lint findings: text, JSON, SARIF 2.1.0 and GitHub workflow commands.

One Finding type, several views of it (yamllint's `Format`). Every renderer shows
waived findings, marked as such; none hides one. docs/lint.md describes the formats.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from toolkit import __version__
from toolkit.findings import Finding, Severity

JSON_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/valleyhealth-example/campaign-toolkit"


@dataclass(frozen=True)
class Report:
    """What a renderer needs: the findings, how many campaigns were linted, and the
    path of the repository root inside its git checkout ("" when they are the same)."""

    findings: Sequence[Finding]
    campaigns: int
    path_prefix: str = ""

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.ERROR and not f.waived)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.WARNING and not f.waived)

    @property
    def waived(self) -> int:
        return sum(1 for f in self.findings if f.waived)

    def uri(self, f: Finding) -> str:
        return f"{self.path_prefix}{f.file}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(report: Report) -> str:
    return (f"{_plural(report.errors, 'error')}, {_plural(report.warnings, 'warning')}, "
            f"{report.waived} waived in {_plural(report.campaigns, 'campaign')}")


# --- text ---------------------------------------------------------------------------


def _waiver_note(f: Finding) -> str:
    if f.waived:
        return f" [waived: {f.waiver_reason}]"
    if f.waiver_reason is not None:  # a waiver that --strict refused
        return f" [waiver refused by --strict: {f.waiver_reason}]"
    return ""


def render_text(report: Report) -> str:
    lines = [f"{report.uri(f)}:{f.line}:{f.column}: {f.severity} {f.rule} {f.message}"
             f"{_waiver_note(f)}" for f in report.findings]
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


# --- JSON ---------------------------------------------------------------------------


def finding_dict(f: Finding, report: Report) -> dict[str, object]:
    return {
        "rule": f.rule,
        "severity": str(f.severity),
        "message": f.message,
        "file": report.uri(f),
        "line": f.line,
        "column": f.column,
        "campaign": f.campaign,
        "waived": f.waived,
        "waiver_reason": f.waiver_reason,
    }


def render_json(report: Report) -> str:
    doc = {
        "version": JSON_VERSION,
        "findings": [finding_dict(f, report) for f in report.findings],
        "summary": {"errors": report.errors, "warnings": report.warnings, "waived": report.waived,
                    "campaigns": report.campaigns},
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# --- SARIF 2.1.0 --------------------------------------------------------------------

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.GATE: "note"}


def _tags(rule_id: str) -> list[str]:
    family = rule_id.split("-", 1)[0].lower()
    tags = [family, "compliance"]
    if family in ("hipaa", "trk"):
        tags.append("privacy")
    if family in ("hipaa", "trk", "cnt"):
        tags.append("security")
    return tags


def sarif_rule(rule: object) -> dict[str, object]:
    from toolkit.rules.base import Rule

    assert isinstance(rule, Rule)
    full = f"{rule.summary} {rule.details}".strip()
    reasons = f"\n\nExclusion reasons in plans: {', '.join(rule.reasons)}." if rule.reasons else ""
    help_text = f"{rule.fix}\n\nCitation: {rule.citation}.{reasons}"
    help_md = (f"**How to fix.** {rule.fix}\n\n**Citation.** {rule.citation}.{reasons}\n\n"
               "_An aid to compliance review, not legal advice._")
    return {
        "id": rule.id,
        "name": "".join(p.capitalize() for p in rule.id.split("-")),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": full},
        "help": {"text": help_text, "markdown": help_md},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {"tags": _tags(rule.id), "scope": rule.scope},
    }


def render_sarif(report: Report) -> str:
    from toolkit.rules import in_catalogue_order

    rules = in_catalogue_order()
    index = {r.id: i for i, r in enumerate(rules)}
    results = []
    for f in report.findings:
        result: dict[str, object] = {
            "ruleId": f.rule,
            "level": _LEVEL.get(f.severity or Severity.ERROR, "error"),
            "message": {"text": f.message},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": report.uri(f)},
                    "region": {"startLine": f.line, "startColumn": f.column},
                },
            }],
        }
        if f.rule in index:
            result["ruleIndex"] = index[f.rule]
        if f.campaign:
            result["properties"] = {"campaign": f.campaign}
        if f.waived:
            result["suppressions"] = [{"kind": "external", "justification": f.waiver_reason or ""}]
        results.append(result)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "campaign",
                "semanticVersion": __version__,
                "version": __version__,
                "informationUri": INFO_URI,
                "rules": [sarif_rule(r) for r in rules],
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# --- GitHub workflow commands ---------------------------------------------------------


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report) -> str:
    lines = []
    for f in report.findings:
        if f.waived:
            kind, title = "notice", f"{f.rule} (waived)"
        else:
            kind, title = ("error" if f.severity is Severity.ERROR else "warning"), f.rule
        props = (f"file={_escape_property(report.uri(f))},line={f.line},col={f.column},"
                 f"title={_escape_property(title)}")
        lines.append(f"::{kind} {props}::{_escape_data(f.message + _waiver_note(f))}")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "github": render_github,
}
