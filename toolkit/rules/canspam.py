"""CAN-SPAM rules for commercial messages (15 USC 7704, 16 CFR Part 316)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache

from toolkit.findings import Finding, Pos, Severity
from toolkit.lint import CampaignContext, RepoContext
from toolkit.models import TRANSACTIONAL_PURPOSES
from toolkit.rules.base import Rule, finding
from toolkit.rules.body import contains_text, has_unsubscribe_link, visible_text

PROMOTIONAL = re.compile(r"%\s*off\b|\b(sales?|free|discounts?|offers?|deals?)\b", re.I)
FORWARDED = re.compile(r"^\s*(re|fwd?)\s*:", re.I)
DECEPTIVE = (
    (
        re.compile(
            r"\b(guarantee[ds]?|miracle|cure[sd]?|100\s*% (effective|results?)|"
            r"lose \d+\s*(pounds|lbs|kg)|instant results?)\b",
            re.I,
        ),
        "promises results",
    ),
    (
        re.compile(
            r"\b(invoice|your (bill|statement)|payment (due|overdue|required)|amount due|"
            r"balance due)\b",
            re.I,
        ),
        "looks like a bill",
    ),
    (
        re.compile(
            r"\b(account (suspended|locked|closed|problem|issue|alert)|verify your account|"
            r"action required|security alert|password (reset|expire[sd]?))\b",
            re.I,
        ),
        "announces an account problem",
    ),
)
AD_WORDS = re.compile(r"\b(advertisement|advertising|promotional|promotion|sponsored)\b", re.I)
PLACEHOLDER = re.compile(
    r"\b(todo|tbd|fixme|xxx+|placeholder|lorem|changeme|n/a|your (street|address)|"
    r"address here)\b|<[^>]*>",
    re.I,
)


def _domain(address: str) -> str | None:
    if address.count("@") != 1:
        return None
    local, domain = address.rsplit("@", 1)
    return domain.strip().lower().rstrip(".") if local.strip() and domain.strip() else None


def _verified(domain: str, verified: tuple[str, ...]) -> bool:
    # a subdomain of a verified domain aligns with it (DMARC relaxed alignment)
    return any(domain == v.lower() or domain.endswith("." + v.lower()) for v in verified)


def check_promotional_subject(ctx: CampaignContext) -> Iterator[Finding]:
    if ctx.base_purpose not in TRANSACTIONAL_PURPOSES or ctx.commercial:
        return
    m = PROMOTIONAL.search(ctx.campaign.subject)
    if m:
        yield finding(
            "CANSPAM-001",
            f"the subject of a '{ctx.campaign.purpose}' message says "
            f"'{m.group(0)}', which reads as promotional; drop the promotion, or set "
            "'commercial: true' and follow the commercial rules",
            ctx.campaign.pos("subject"),
        )


def check_header_accuracy(ctx: RepoContext) -> Iterator[Finding]:
    cfg = ctx.repo.config
    if cfg is None:
        return
    verified = cfg.organization.verified_domains
    for name, s in sorted(cfg.senders.items()):
        if not (s.from_name or "").strip():
            yield finding(
                "CANSPAM-002",
                f"sender '{name}' has no from_name; add the name recipients know you by",
                s.pos(),
            )
        for key in ("from_address", "reply_to"):
            value = getattr(s, key)
            if value is None:
                if key == "from_address":
                    yield finding(
                        "CANSPAM-002",
                        f"sender '{name}' has no from_address; add an address "
                        "at one of organization.verified_domains",
                        s.pos(),
                    )
                continue
            domain = _domain(value)
            if domain is None:
                yield finding(
                    "CANSPAM-002",
                    f"sender '{name}': {key} is not an email address; write it as name@domain",
                    s.pos(key),
                )
            elif not _verified(domain, verified):
                known = ", ".join(verified) or "none declared"
                yield finding(
                    "CANSPAM-002",
                    f"sender '{name}': the {key} domain '{domain}' is not in "
                    f"organization.verified_domains ({known}); use a verified domain or "
                    "verify this one",
                    s.pos(key),
                )


def check_deceptive_subject(ctx: CampaignContext) -> Iterator[Finding]:
    problem = _subject_problem(ctx.campaign.subject, ctx.commercial)
    if problem is not None:
        yield finding("CANSPAM-003", problem, ctx.campaign.pos("subject"))


@lru_cache(maxsize=1024)
def _subject_problem(subject: str, commercial: bool) -> str | None:
    """What CANSPAM-003 says of a subject, or None (campaigns share subjects)."""
    if FORWARDED.match(subject):
        return ("the subject starts like a reply or forward (RE:/FW:) though the "
                "message is neither; remove the prefix")
    if not commercial:
        return None
    for pattern, what in DECEPTIVE:
        m = pattern.search(subject)
        if m:
            return (f"the subject of a commercial message {what} ('{m.group(0)}'); "
                    "describe the message's real content")
    return None


def check_ad_label(ctx: CampaignContext) -> Iterator[Finding]:
    c = ctx.campaign
    if not ctx.commercial or c.consent == "affirmative" or ctx.repo.config is None:
        return
    sender = ctx.repo.config.senders.get(c.sender)
    if sender is None or (sender.ad_label or "").strip():
        return
    renders = ctx.renders
    if renders:
        if all(AD_WORDS.search(f"{r.subject} {visible_text(r.html)}") for r in renders):
            return
    else:  # cannot render (reported elsewhere): judge the template's own text
        template = ctx.repo.template_for(c)
        if template is not None and AD_WORDS.search(template.source):
            return
    yield finding(
        "CANSPAM-004",
        f"this commercial message does not identify itself as an "
        f"advertisement; add an 'ad_label' to sender '{c.sender}' and show it in the template "
        "(or set 'consent: affirmative' if every recipient opted in)",
        c.pos("sender"),
    )


def check_unsubscribe_link(ctx: CampaignContext) -> Iterator[Finding]:
    if not ctx.commercial:
        return
    for r in ctx.renders:
        if not has_unsubscribe_link(ctx, r):
            who = f" (rendered for persona '{r.persona}')" if r.persona else ""
            yield finding(
                "CANSPAM-005",
                f"the body of this commercial message has no unsubscribe "
                f'link{who}; add <a href="{{{{ unsubscribe_url }}}}">Unsubscribe</a> to the '
                f"template '{ctx.campaign.template}' or its footer",
                ctx.campaign.pos("template"),
            )
            return


def postal_address(ctx: CampaignContext) -> tuple[str | None, Callable[[], Pos]]:
    """The address the message must show (the sender's own, else the organization's), and
    where it is configured (a function: looked up only for a finding)."""
    cfg = ctx.repo.config
    assert cfg is not None
    sender = cfg.senders.get(ctx.campaign.sender)
    if sender is not None and sender.postal_address is not None:
        return sender.postal_address, lambda: sender.pos("postal_address")
    org = cfg.organization
    return org.postal_address, (
        (lambda: org.pos("postal_address")) if org.postal_address is not None else org.pos
    )


def is_placeholder(address: str) -> bool:
    return not address.strip() or bool(PLACEHOLDER.search(address)) or not re.search(r"\d", address)


def check_postal_address(ctx: CampaignContext) -> Iterator[Finding]:
    if not ctx.commercial or ctx.repo.config is None:
        return
    address, where = postal_address(ctx)
    if address is None or is_placeholder(address):
        what = "missing" if address is None else "a placeholder"
        yield finding(
            "CANSPAM-007",
            f"the postal address for campaign '{ctx.id}' is {what}; set "
            "organization.postal_address (or the sender's postal_address) in toolkit.yaml to "
            "a real street address or P.O. box",
            where(),
        )
        return
    for r in ctx.renders:
        if not contains_text(r.html, address):
            who = f" (rendered for persona '{r.persona}')" if r.persona else ""
            yield finding(
                "CANSPAM-007",
                f"the body of this commercial message does not show the "
                f"sender's postal address{who}; add {{{{ sender.postal_address }}}} to the "
                f"template '{ctx.campaign.template}' or its footer",
                ctx.campaign.pos("template"),
            )
            return


RULES = (
    Rule(
        id="CANSPAM-001",
        severity=Severity.WARNING,
        summary="A transactional purpose with a promotional subject: the message is probably "
        "commercial.",
        citation="16 CFR 316.3 (primary purpose); 15 USC 7702(2)",
        fix="Keep transactional messages about the transaction: remove words such as '% off', "
        "'sale', 'free', 'discount', 'offer' or 'deal' from the subject, or set "
        "`commercial: true` and meet the commercial rules.",
        scope="campaign",
        check=check_promotional_subject,
    ),
    Rule(
        id="CANSPAM-002",
        severity=Severity.ERROR,
        summary="Header accuracy: a sender profile lacks a from name or address, or its domain (or "
        "the reply-to's) is not in `verified_domains`.",
        citation="15 USC 7704(a)(1)",
        fix="Give every sender in toolkit.yaml a `from_name` and a `from_address`, and use "
        "addresses (From and Reply-To) at a domain listed in organization.verified_domains.",
        scope="repo",
        check=check_header_accuracy,
    ),
    Rule(
        id="CANSPAM-003",
        severity=Severity.WARNING,
        summary="Deceptive subject: starts with RE:/FW:/FWD:, or promises results, a bill or an "
        "account problem on a commercial message.",
        citation="15 USC 7704(a)(2)",
        fix="Write a subject that describes the message honestly; never imply a reply, a "
        "forward, an invoice or an account problem that does not exist.",
        scope="campaign",
        check=check_deceptive_subject,
    ),
    Rule(
        id="CANSPAM-004",
        severity=Severity.WARNING,
        summary="A commercial message does not identify itself as an advertisement, and the "
        "campaign does not record `consent: affirmative`.",
        citation="15 USC 7704(a)(5)(A)(i)",
        fix="Set an `ad_label` on the sender profile and show {{ sender.ad_label }} in the "
        "template, or record `consent: affirmative` when every recipient opted in.",
        scope="campaign",
        check=check_ad_label,
    ),
    Rule(
        id="CANSPAM-005",
        severity=Severity.ERROR,
        summary="A commercial message's body lacks an unsubscribe link (`unsubscribe_url`).",
        citation="15 USC 7704(a)(3), (a)(5)(A)(ii)",
        fix='Add <a href="{{ unsubscribe_url }}">Unsubscribe</a> to the body, usually in the '
        "footer partial that every commercial template includes.",
        scope="campaign",
        check=check_unsubscribe_link,
    ),
    Rule(
        id="CANSPAM-006",
        severity=Severity.GATE,
        summary="The recipient is on the suppression list for this kind of message (kinds: "
        "commercial, fundraising, all).",
        citation="15 USC 7704(a)(4); 45 CFR 164.514(f)(2)(iv) for fundraising",
        fix="Nothing to fix in the campaign: suppressed recipients are excluded. "
        "`campaign suppress list` shows the list.",
        scope="gate",
        reasons=("suppressed",),
    ),
    Rule(
        id="CANSPAM-007",
        severity=Severity.ERROR,
        summary="A commercial message's body lacks the sender's physical postal address, or the "
        "address in toolkit.yaml is missing or a placeholder.",
        citation="15 USC 7704(a)(5)(A)(iii); 16 CFR 316.2(p)",
        fix="Set organization.postal_address (or the sender's `postal_address`) to a real street "
        "address or P.O. box and show {{ sender.postal_address }} in the footer.",
        scope="campaign",
        check=check_postal_address,
    ),
)
