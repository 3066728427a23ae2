"""Who gets a campaign, who is excluded and why: the plan (DESIGN.md §3 "Plan JSON").

Records are taken in source order: a record that cannot be read or does not fit the
schema is invalid; a valid record that satisfies the segment is matched; a matched
record goes through the gates (toolkit/gates.py) and is excluded under the first
reason that applies, or becomes a recipient.

`iter_decisions` is the one loop: `plan` counts it, and `send` re-checks with it.

Pseudonyms (HMAC under the audit key) are needed only to match suppressions that hold
no address (from unsubscribe tokens) and recipients the ledger says were sent; the
key (toolkit.yaml audit.key_env) is then required, and its absence is an exit-2 error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from toolkit.contacts import open_source
from toolkit.errors import UserError
from toolkit.gates import REASONS, GateConfig, Gates
from toolkit.models import Campaign, Repo
from toolkit.secrets import secret
from toolkit.segment_eval import compile_segment
from toolkit.state import state_dir
from toolkit.suppression import FILE_NAME, Matcher, SuppressionStore, kinds_for

INVALID = "invalid-record"
UNMATCHED = "not-matched"
MAX_PROBLEMS = 20  # invalid records listed by line; the count covers the rest

_USE_LEDGER: Any = object()


class Decision(NamedTuple):
    line: int
    record: dict[str, Any] | None  # the normalized contact; None when invalid
    reason: str | None  # None: a recipient; else INVALID, UNMATCHED or a gate reason
    problem: str | None = None  # for INVALID: keys and expected types, never values


@dataclass
class PlanResult:
    campaign: str
    digest: str
    at: dt.datetime
    contacts_read: int = 0
    invalid_records: int = 0
    matched: int = 0
    recipients: int = 0
    excluded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    problems: list[tuple[int, str]] = field(
        default_factory=list
    )  # first MAX_PROBLEMS invalid lines

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "digest": self.digest,
            "contacts_read": self.contacts_read,
            "invalid_records": self.invalid_records,
            "matched": self.matched,
            "recipients": self.recipients,
            "excluded": {r: self.excluded[r] for r in REASONS},
        }


def parse_at(text: str | None) -> dt.datetime:
    """`--at`: an ISO-8601 date or date-time (UTC when no offset), or now."""
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"--at '{text}' is not an ISO-8601 date or date-time",
            fix="use e.g. 2026-12-01 or 2026-12-01T09:00:00+00:00",
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def find_campaign(repo: Repo, campaign_id: str) -> Campaign:
    campaign = repo.campaigns.get(campaign_id)
    if campaign is None:
        known = ", ".join(sorted(repo.campaigns)) or "none"
        raise UserError(
            f"no campaign '{campaign_id}' (known: {known})",
            fix="check the id, or run `campaign lint` for configuration errors",
        )
    if campaign.segment not in repo.segments:
        raise UserError(
            f"segment '{campaign.segment}' not found",
            where=str(campaign.pos("segment")),
            fix="create segments/<id>.yaml or fix the name (campaign lint shows CFG-002)",
        )
    return campaign


def gate_config(
    repo: Repo,
    campaign: Campaign,
    *,
    at: dt.datetime,
    suppression: Matcher | None = None,
    already_sent: Callable[[str], bool] | None = _USE_LEDGER,
    pseudonym_key: bytes | None = None,
) -> GateConfig:
    """The gates for `campaign` at `at`, reading the suppression list and ledger from the state
    folder unless given. Asks for the audit key only when pseudonyms are needed."""
    state = state_dir(repo, create=False)
    if suppression is None:
        kinds = kinds_for(
            commercial=repo.is_commercial(campaign),
            fundraising=repo.base_purpose(campaign.purpose) == "fundraising",
        )
        if (state / FILE_NAME).is_file():
            with SuppressionStore(state / FILE_NAME) as store:
                suppression = store.matcher(kinds)
        else:
            suppression = Matcher(frozenset(), frozenset())
    if already_sent is _USE_LEDGER:
        already_sent = _ledger_sent(state, campaign.id)
    if pseudonym_key is None and (suppression.needs_pseudonym or already_sent is not None):
        env = repo.config.audit.key_env if repo.config else "AUDIT_KEY"
        pseudonym_key = secret(
            env,
            purpose="audit key; the plan needs it to match unsubscribes "
            "(kept as pseudonyms) and recipients already sent",
        )
    return GateConfig(
        at=at,
        suppression=suppression,
        authorization_scope=campaign.authorization.scope if campaign.authorization else None,
        encryption=campaign.delivery.encryption,
        require_unencrypted_consent=campaign.delivery.require_unencrypted_consent,
        pseudonym_key=pseudonym_key,
        already_sent=already_sent,
    )


def _ledger_sent(state: Any, campaign_id: str) -> Callable[[str], bool] | None:
    """An indexed ledger lookup per candidate, or None when nothing was sent yet.

    Not a set of every sent pseudonym: a ledger can hold millions, and the plan's
    memory must not grow with them. The ledger stays open until the process ends."""
    try:
        from toolkit.ledger import Ledger
    except ImportError:  # the send stage is optional for planning
        return None
    if not (state / Ledger.FILE).is_file():
        return None
    ledger = Ledger(state)
    counts = ledger.counts(campaign_id)
    if not any(counts[s] for s in ("sent", "sending", "unconfirmed", "failed")):
        ledger.close()
        return None
    return lambda recipient: ledger.already_sent(campaign_id, recipient)


def _prepare(
    repo: Repo, campaign_id: str, at: dt.datetime, config: GateConfig | None
) -> tuple[Callable[[Any], bool], Gates]:
    campaign = find_campaign(repo, campaign_id)
    matches = compile_segment(repo.segments[campaign.segment], repo.fields, at)
    return matches, Gates(config or gate_config(repo, campaign, at=at))


def iter_decisions(
    repo: Repo,
    campaign_id: str,
    source_spec: str,
    *,
    at: dt.datetime,
    config: GateConfig | None = None,
) -> Iterator[Decision]:
    """Every record of the source, in order, with what happens to it (for `send`)."""
    matches, gates = _prepare(repo, campaign_id, at, config)
    check = gates.check
    for line, record, problem in open_source(source_spec, repo.fields):
        if record is None:
            yield Decision(line, None, INVALID, problem)
        elif not matches(record):
            yield Decision(line, record, UNMATCHED)
        else:
            yield Decision(line, record, check(record))


def plan(
    repo: Repo,
    campaign_id: str,
    source_spec: str,
    *,
    at: dt.datetime,
    config: GateConfig | None = None,
) -> PlanResult:
    """The plan's numbers. The same decisions as iter_decisions, counted in a tighter loop."""
    from toolkit.digest import campaign_digest

    matches, gates = _prepare(repo, campaign_id, at, config)
    result = PlanResult(campaign=campaign_id, digest=campaign_digest(repo, campaign_id), at=at)
    check = gates.check
    counts: dict[str | None, int] = dict.fromkeys((None, *REASONS), 0)
    problems = result.problems
    read = unmatched = 0
    for line, record, problem in open_source(source_spec, repo.fields):
        read += 1
        if record is None:
            result.invalid_records += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append((line, problem or "invalid"))
        elif matches(record):
            counts[check(record)] += 1
        else:
            unmatched += 1
    result.contacts_read = read
    result.recipients = counts.pop(None)
    result.excluded.update(counts)  # type: ignore[arg-type]
    result.matched = result.recipients + sum(result.excluded.values())
    return result
