"""Rule documentation generated from the registry: `campaign rules` and docs/rules.md."""

from __future__ import annotations

from toolkit.rules.base import Rule

DISCLAIMER = ("The linter is an aid to compliance review, not legal advice: it checks what can be "
              "checked in files, and a clean run does not make a campaign lawful.")


def kind(rule: Rule) -> str:
    if rule.scope == "gate":
        return "gate: checked per recipient by plan and send"
    return f"{rule.severity}: checked by lint"


def explain(rule: Rule) -> str:
    """The text `campaign rules ID` prints."""
    lines = [f"{rule.id} ({kind(rule)})", "", rule.summary]
    if rule.details:
        lines += ["", rule.details]
    if rule.reasons:
        lines += ["", "Exclusion reasons: " + ", ".join(rule.reasons)]
    lines += ["", f"Citation: {rule.citation}", "", f"How to fix: {rule.fix}"]
    if not rule.waivable:
        lines += ["", "This rule cannot be waived."]
    return "\n".join(lines) + "\n"


def listing(rules: list[Rule]) -> str:
    width = max(len(r.id) for r in rules)
    return "".join(f"{r.id:<{width}}  {r.severity!s:<7}  {r.summary}\n" for r in rules)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(rules: list[Rule]) -> str:
    """docs/rules.md: regenerate with `campaign rules --markdown > docs/rules.md`."""
    out = [
        "# Rule reference",
        "",
        "<!-- Generated from the rule registry by `campaign rules --markdown`; do not edit. -->",
        "",
        DISCLAIMER,
        "",
        "Static rules run in `campaign lint`; gate rules run per recipient in `campaign plan` "
        "and `campaign send`, and their exclusion reasons appear in plans and the audit log.",
        "",
        "| id | severity | summary |",
        "| --- | --- | --- |",
    ]
    out += [f"| [{r.id}](#{r.id.lower()}) | {r.severity} | {_cell(r.summary)} |" for r in rules]
    for r in rules:
        out += ["", f"## {r.id}", "", f"*{kind(r)}.* {r.summary}"]
        if r.details:
            out += ["", r.details]
        if r.reasons:
            out += ["", "Exclusion reasons: " + ", ".join(f"`{x}`" for x in r.reasons) + "."]
        out += ["", f"**Citation.** {r.citation}", "", f"**How to fix.** {r.fix}"]
        if not r.waivable:
            out += ["", "This rule cannot be waived."]
    return "\n".join(out) + "\n"
