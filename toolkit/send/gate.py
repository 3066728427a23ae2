"""The send gate: lint clean, approvals valid for the current digest, schedule reached.

Any failure refuses the whole send (exit 1) before the contact source is read or
the relay contacted, with every reason listed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from toolkit.approvals import ApprovalStatus, approval_status
from toolkit.findings import Finding
from toolkit.lint import run_lint
from toolkit.models import Campaign, Repo

MAX_FINDINGS_SHOWN = 10


@dataclass(frozen=True)
class GateResult:
    digest: str
    approvals: ApprovalStatus
    reasons: tuple[str, ...]

    @property
    def open(self) -> bool:
        return not self.reasons


def schedule_time(campaign: Campaign) -> dt.datetime | None:
    """A date schedule means that day's start, UTC; a naive time is UTC too."""
    when = campaign.schedule
    if when is None:
        return None
    if not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def check_gate(repo: Repo, load_findings: list[Finding], campaign: Campaign, *,
               now: dt.datetime) -> GateResult:
    reasons: list[str] = []
    errors = run_lint(repo, load_findings, [campaign.id]).errors
    if errors:
        reasons.append(f"lint: {len(errors)} error(s); fix them "
                       f"(run `campaign lint {campaign.id}`):")
        reasons.extend(f"  {f.pos}: error {f.rule} {f.message}"
                       for f in errors[:MAX_FINDINGS_SHOWN])
        if len(errors) > MAX_FINDINGS_SHOWN:
            reasons.append(f"  ... and {len(errors) - MAX_FINDINGS_SHOWN} more")
    status = approval_status(repo, campaign.id)
    if not status.valid:
        reasons.append(f"approvals: not valid for the current digest {status.digest}:")
        reasons.extend(f"  {r}" for r in status.reasons)
    when = schedule_time(campaign)
    if when is not None and when > now:
        reasons.append(f"schedule: {campaign.pos('schedule')}: not before "
                       f"{when.isoformat()}; it is now {now.replace(microsecond=0).isoformat()}")
    return GateResult(status.digest, status, tuple(reasons))
