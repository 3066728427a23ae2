"""The lint engine: run the registry's rules over a loaded repository.

The engine, not the rules, attaches severities (from the registry) and waivers
(from the campaign). A waived finding is kept and marked, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from toolkit.findings import Finding, Severity
from toolkit.models import Campaign, Repo

if TYPE_CHECKING:
    from toolkit.analysis import CampaignAnalysis
    from toolkit.lint_cache import LintCache
    from toolkit.lint_workers import EarlyWorkers
    from toolkit.render import RenderedMessage


@dataclass
class RepoContext:
    repo: Repo
    load_findings: list[Finding]


@dataclass
class CampaignContext:
    """One campaign, with its analysis and its renders computed once and shared by rules."""

    repo: Repo
    campaign: Campaign
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.campaign.id

    @cached_property
    def analysis(self) -> CampaignAnalysis:
        from toolkit.analysis import analyze_campaign

        return analyze_campaign(self.repo, self.campaign)

    @cached_property
    def renders(self) -> list[RenderedMessage]:
        """The campaign rendered for its personas (empty when it cannot render; the
        reason is a finding of the analysis)."""
        from toolkit.render import render_for_lint

        return render_for_lint(self.repo, self.campaign)

    @property
    def commercial(self) -> bool:
        return self.repo.is_commercial(self.campaign)

    @property
    def base_purpose(self) -> str | None:
        return self.repo.base_purpose(self.campaign.purpose)


@dataclass(frozen=True)
class LintResult:
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR and not f.waived]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING and not f.waived]

    @property
    def waived(self) -> list[Finding]:
        return [f for f in self.findings if f.waived]

    def for_campaign(self, cid: str) -> list[Finding]:
        return [f for f in self.findings if f.campaign == cid]


# Under --strict (CI on main), waivers of these error-severity findings are refused: they
# guard what a patient is owed (HIPAA) or what lets a recipient opt out (CAN-SPAM, RFC 8058).
STRICT_RULE_PREFIXES = ("HIPAA-",)
STRICT_RULE_IDS = frozenset({"CANSPAM-005", "CANSPAM-007", "MBX-UNSUB-001"})


def strict_refuses(f: Finding) -> bool:
    """Whether --strict refuses a waiver of this finding."""
    return f.severity is Severity.ERROR and (
        f.rule.startswith(STRICT_RULE_PREFIXES) or f.rule in STRICT_RULE_IDS
    )


def apply_strict(result: LintResult) -> LintResult:
    """Waived findings whose waiver --strict refuses become unwaived errors again; the
    waiver's reason stays on the finding so the report can say what was refused."""
    out = [f.with_(waived=False) if f.waived and strict_refuses(f) else f for f in result.findings]
    return LintResult(tuple(out))


def _finish(findings: Iterable[Finding], repo: Repo) -> list[Finding]:
    from toolkit.rules import RULES

    out: list[Finding] = []
    for f in findings:
        rule = RULES.get(f.rule)
        if f.severity is None:
            f = f.with_(severity=rule.severity if rule is not None else Severity.ERROR)
        camp = repo.campaigns.get(f.campaign) if f.campaign else None
        if camp is not None and rule is not None and rule.waivable:
            for w in camp.waivers:
                if w.rule == f.rule:
                    f = f.with_(waived=True, waiver_reason=w.reason)
                    break
        out.append(f)
    return out


def campaign_findings(repo: Repo, camp: Campaign) -> list[Finding]:
    """What the campaign-scope rules find in one campaign (before severities and waivers)."""
    from toolkit.rules import RULES

    cid = camp.id
    cctx = CampaignContext(repo, camp)
    out: list[Finding] = []
    for rule in RULES.values():
        if rule.scope == "campaign" and rule.check is not None:
            for f in rule.check(cctx):
                out.append(f if f.campaign else f.with_(campaign=cid))
    return out


def run_lint(
    repo: Repo, load_findings: list[Finding], campaign_ids: Iterable[str] | None = None,
    *, cache: LintCache | None = None, workers: int = 1, early: EarlyWorkers | None = None,
) -> LintResult:
    """Run every static rule. `campaign_ids` limits the campaigns checked; findings of
    other campaigns are dropped, repository-wide ones (no campaign) are kept.

    `cache` (toolkit.lint_cache) supplies the campaign-scope findings of campaigns whose
    inputs are unchanged, and `workers` > 1 lints the others in forked processes
    (toolkit.lint_workers): both for `campaign lint` only. Gates never pass them. `early`:
    worker processes forked before loading (lint_workers.fork_before_load), linting the
    campaigns of their shares; this process lints the rest."""
    from toolkit.rules import RULES

    wanted = list(campaign_ids) if campaign_ids else sorted(repo.campaigns)
    found: list[Finding] = list(load_findings)
    per_campaign: list[list[Finding]] = []
    todo: list[tuple[int, Campaign]] = []  # not cached: (place in per_campaign, campaign)
    for cid in wanted:
        camp = repo.campaigns.get(cid)
        if camp is None:
            continue
        got = cache.get(camp) if cache is not None else None
        if got is None:
            todo.append((len(per_campaign), camp))
        per_campaign.append(got or [])
    share, collect = [camp for _, camp in todo], None
    if early is not None:
        share = [camp for camp in share if camp.id not in early.theirs]
    elif workers > 1:
        from toolkit.lint_workers import start_workers

        # the children start first and lint while this process runs the repository-wide
        # rules, about a tenth of the campaign rules' work on the benchmark's repository
        # (bench/lint.md): this process's share is smaller by half of that
        share, collect = start_workers(repo, share, workers, head_start=len(share) // 20)
    rctx = RepoContext(repo, load_findings)
    for rule in RULES.values():
        if rule.scope == "repo" and rule.check is not None:
            found.extend(rule.check(rctx))
    computed = [campaign_findings(repo, camp) for camp in share]
    if collect is not None:
        computed = collect(computed)
    elif early is not None:  # in todo's order; what no child sent is linted here
        mine = dict(zip((camp.id for camp in share), computed, strict=True))
        mine.update(early.collect())
        computed = [mine[camp.id] if camp.id in mine else campaign_findings(repo, camp)
                    for _, camp in todo]
    for (place, camp), got in zip(todo, computed, strict=True):
        per_campaign[place] = got
        if cache is not None:
            cache.put(camp, got)
    for got in per_campaign:
        found.extend(got)
    if cache is not None:
        cache.save()
    if campaign_ids:
        keep = set(wanted)
        found = [f for f in found if f.campaign is None or f.campaign in keep]
    # A broken shared template is one problem, not one per campaign using it: findings that
    # cannot be waived are reported once per position (the first campaign keeps it).
    unique: dict[tuple[object, ...], Finding] = {}
    for f in _finish(found, repo):
        rule = RULES.get(f.rule)
        owner = f.campaign if rule is None or rule.waivable else None
        unique.setdefault((f.rule, f.pos, f.message, owner), f)
    return LintResult(tuple(sorted(unique.values(), key=Finding.sort_key)))
