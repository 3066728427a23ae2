"""Data-driven rule tests: copy the scaffold, edit a few files, lint, look at findings.

Each static rule has a case file tests/rule_cases/<RULE-ID>.yaml:

    rule: HIPAA-MKT-001
    cases:
      - name: unknown purpose is an error at the purpose line
        replace:                       # {path: [[old, new], ...]}: exact text replacements
          campaigns/appointment-reminder/campaign.yaml:
            - ["purpose: appointment-reminder", "purpose: newsletter"]
        files:                         # {path: content}: write (or, with null, delete) files
          templates/extra.mjml: "..."
        expect:                        # findings of this rule that must be present
          - {file: campaigns/appointment-reminder/campaign.yaml, line: 2}
          # optional per entry: rule (defaults to the file's rule), severity, message (substring)
      - name: a known purpose is silent
        expect: []                     # [] means: no finding of this rule at all

`replace` runs before `files`. Edits made in Python instead go through `lint_with`.
The meta-test (tests/test_rule_cases.py) requires every static rule of the registry to
have at least one failing case (non-empty expect) and one passing case (expect: []).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from toolkit.findings import Finding

ROOT = Path(__file__).resolve().parent.parent
SCAFFOLD = ROOT / "toolkit" / "scaffold"
CASES_DIR = Path(__file__).resolve().parent / "rule_cases"

# The scaffold's one campaign, for cases that edit it
CAMPAIGN_FILE = "campaigns/appointment-reminder/campaign.yaml"
TEMPLATE_FILE = "templates/appointment-reminder.mjml"

Edit = str | None | Callable[[str], str]


def make_repo(dest: Path, edits: Mapping[str, Edit] | None = None,
              replace: Mapping[str, Iterable[tuple[str, str]]] | None = None,
              base: Path = SCAFFOLD) -> Path:
    """A copy of `base` (the scaffold) at dest/repo with edits applied; returns its root.

    edits: path -> new content (str), None (delete the file) or a function old text -> new text.
    replace: path -> [(old, new), ...] exact replacements; each `old` must occur in the file.
    """
    root = dest / "repo"
    shutil.copytree(base, root, ignore=shutil.ignore_patterns(".campaign", "__pycache__", "site"))
    for rel, pairs in (replace or {}).items():
        path = root / rel
        text = path.read_text(encoding="utf-8")
        for old, new in pairs:
            assert old in text, f"case edit: {old!r} not found in {rel}"
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    for rel, content in (edits or {}).items():
        path = root / rel
        if content is None:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            continue
        if callable(content):
            content = content(path.read_text(encoding="utf-8"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def lint_root(root: Path, campaign_ids: Iterable[str] | None = None) -> list[Finding]:
    """Load and lint a repository in-process; every finding (load findings included)."""
    from toolkit.lint import run_lint
    from toolkit.loader import load_repo

    repo, load_findings = load_repo(root)
    return list(run_lint(repo, load_findings, campaign_ids).findings)


def lint_with(tmp_path: Path, edits: Mapping[str, Edit] | None = None,
              replace: Mapping[str, Iterable[tuple[str, str]]] | None = None) -> list[Finding]:
    """Copy the scaffold into tmp_path, apply the edits, lint, return the findings."""
    return lint_root(make_repo(tmp_path, edits, replace))


def describe(findings: Iterable[Finding]) -> str:
    lines = [f"  {f.pos}: {f.severity} {f.rule} {f.message}" for f in findings]
    return "\n".join(lines) or "  (none)"


def assert_finding(findings: Iterable[Finding], rule: str, file: str, line: int | None = None, *,
                   severity: str | None = None, message: str | None = None) -> Finding:
    """There is a finding of `rule` at file[:line] (and with that severity / message substring)."""
    findings = list(findings)
    for f in findings:
        if f.rule != rule or f.file != file or (line is not None and f.line != line):
            continue
        if severity is not None and str(f.severity) != severity:
            continue
        if message is not None and message not in f.message:
            continue
        return f
    where = f"{file}:{line}" if line is not None else file
    extra = f" severity={severity}" if severity else ""
    extra += f" message~{message!r}" if message else ""
    pytest.fail(f"expected {rule} at {where}{extra}; findings were:\n{describe(findings)}")


def assert_silent(findings: Iterable[Finding], rule: str) -> None:
    """No finding of `rule` at all."""
    hits = [f for f in findings if f.rule == rule]
    if hits:
        pytest.fail(f"expected no {rule} finding; got:\n{describe(hits)}")


# --- YAML case files -----------------------------------------------------------------


@dataclass(frozen=True)
class RuleCase:
    rule: str
    name: str
    replace: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    files: dict[str, str | None] = field(default_factory=dict)
    expect: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failing(self) -> bool:
        return bool(self.expect)


def case_file(rule_id: str) -> Path:
    return CASES_DIR / f"{rule_id}.yaml"


def load_cases(rule_id: str) -> list[RuleCase]:
    path = case_file(rule_id)
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    assert data.get("rule") == rule_id, f"{path.name}: 'rule' must be {rule_id}"
    out = []
    for c in data.get("cases") or []:
        out.append(RuleCase(
            rule=rule_id,
            name=c["name"],
            replace={k: [tuple(p) for p in v] for k, v in (c.get("replace") or {}).items()},
            files=dict(c.get("files") or {}),
            expect=list(c.get("expect") or []),
        ))
    return out


def case_params(rule_ids: Iterable[str]) -> list[Any]:
    """pytest.param for every case of these rules, with readable ids."""
    return [pytest.param(c, id=f"{c.rule}:{c.name}") for r in rule_ids for c in load_cases(r)]


def run_case(tmp_path: Path, case: RuleCase) -> list[Finding]:
    """Lint the case's repository and check its expectations; returns the findings."""
    findings = lint_with(tmp_path, case.files, case.replace)
    if not case.expect:
        assert_silent(findings, case.rule)
    for e in case.expect:
        assert_finding(findings, e.get("rule", case.rule), e["file"], e.get("line"),
                       severity=e.get("severity"), message=e.get("message"))
    return findings
