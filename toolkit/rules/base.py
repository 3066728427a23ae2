"""What a rule is. Rules are pure: they yield findings and never print or exit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from toolkit.findings import Finding, Pos, Severity

if TYPE_CHECKING:
    from toolkit.lint import CampaignContext, RepoContext

Scope = Literal["repo", "campaign", "gate"]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    summary: str
    citation: str
    fix: str
    scope: Scope
    # repo rules get a RepoContext, campaign rules a CampaignContext; gate rules have no check
    check: Callable[..., Iterator[Finding]] | None = None
    # gate rules: the exclusion reasons they produce in plans and the audit log
    reasons: tuple[str, ...] = ()
    # a longer explanation for `campaign rules ID` and the generated docs
    details: str = ""

    @property
    def waivable(self) -> bool:
        return not self.id.startswith(("CFG-", "SEG-", "CNT-003"))

    @property
    def family(self) -> str:
        return self.id.rsplit("-", 1)[0]


def finding(rule: str, message: str, pos: Pos, campaign: str | None = None) -> Finding:
    """Severity is attached by the engine from the registry."""
    return Finding(rule=rule, message=message, pos=pos, campaign=campaign)


CheckRepo = Callable[["RepoContext"], Iterator[Finding]]
CheckCampaign = Callable[["CampaignContext"], Iterator[Finding]]
