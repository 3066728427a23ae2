"""Mailbox-provider requirements: one-click unsubscribe, DKIM, and Gmail's clipping size."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from toolkit.findings import Finding, Severity
from toolkit.lint import CampaignContext
from toolkit.rules.base import Rule, finding
from toolkit.rules.body import byte_offset_of_link, byte_offset_of_text, unsubscribe_urls

# Gmail clips a message whose HTML exceeds about 102 KB and hides the rest behind a link
GMAIL_CLIP_BYTES = 102_000


def _needs_unsubscribe(ctx: CampaignContext) -> bool:
    return ctx.commercial or ctx.base_purpose == "fundraising"


def check_one_click(ctx: CampaignContext) -> Iterator[Finding]:
    cfg = ctx.repo.config
    if cfg is None or not _needs_unsubscribe(ctx):
        return
    url = cfg.unsubscribe.url
    kind = "commercial" if ctx.commercial else "fundraising"
    lead = f"campaign '{ctx.id}' is {kind}, but"
    if not url:
        yield finding(
            "MBX-UNSUB-001",
            f"{lead} toolkit.yaml has no unsubscribe.url; add an https "
            "endpoint with a {token} placeholder, e.g. https://<your domain>/unsubscribe/{token}",
            cfg.unsubscribe.pos() if "unsubscribe" in _top(ctx) else cfg.pos(),
        )
        return
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        yield finding(
            "MBX-UNSUB-001",
            f"{lead} unsubscribe.url is not an https URL, so "
            "List-Unsubscribe-Post cannot be sent; use https://",
            cfg.unsubscribe.pos("url"),
        )
    elif "{token}" not in url:
        yield finding(
            "MBX-UNSUB-001",
            f"{lead} unsubscribe.url has no {{token}} placeholder, so one "
            "click cannot say who unsubscribes; add {token} to the URL",
            cfg.unsubscribe.pos("url"),
        )


def _top(ctx: CampaignContext) -> dict:
    doc = ctx.repo.documents.get("toolkit.yaml")
    return doc if isinstance(doc, dict) else {}


def _sender_domain(ctx: CampaignContext) -> str | None:
    cfg = ctx.repo.config
    sender = cfg.senders.get(ctx.campaign.sender) if cfg else None
    if sender is None or not sender.from_address or "@" not in sender.from_address:
        return None
    return sender.from_address.rsplit("@", 1)[1].lower()


def check_dkim(ctx: CampaignContext) -> Iterator[Finding]:
    cfg = ctx.repo.config
    domain = _sender_domain(ctx)
    if cfg is None or domain is None:
        return  # CANSPAM-002 / CFG-002 report the sender
    relay = cfg.relays.get(ctx.campaign.delivery.relay)
    if relay is None or relay.dkim_signs:
        return
    if cfg.dkim is not None:
        d = cfg.dkim.domain.lower()
        if domain == d or domain.endswith("." + d):
            return
    yield finding(
        "MBX-AUTH-001",
        f"campaign '{ctx.id}': nothing signs mail from {domain} with DKIM "
        "(Gmail and Yahoo require it of bulk senders); add a `dkim` block for that domain "
        f"to toolkit.yaml, or set dkim_signs: true on relay '{ctx.campaign.delivery.relay}' if "
        "it signs",
        relay.pos("dkim_signs") if "dkim_signs" in _relay_doc(ctx) else relay.pos(),
    )


def _relay_doc(ctx: CampaignContext) -> dict:
    relays = _top(ctx).get("relays")
    doc = relays.get(ctx.campaign.delivery.relay) if isinstance(relays, dict) else None
    return doc if isinstance(doc, dict) else {}


def _address(ctx: CampaignContext) -> str | None:
    cfg = ctx.repo.config
    if cfg is None:
        return None
    sender = cfg.senders.get(ctx.campaign.sender)
    return (
        sender.postal_address if sender and sender.postal_address else None
    ) or cfg.organization.postal_address


def check_size(ctx: CampaignContext) -> Iterator[Finding]:
    address = _address(ctx)
    worst = None
    for r in ctx.renders:
        size = len(r.html.encode("utf-8"))
        if size <= GMAIL_CLIP_BYTES:
            continue
        clipped = []
        link = byte_offset_of_link(r.html, unsubscribe_urls(ctx, r))
        if link is not None and link >= GMAIL_CLIP_BYTES:
            clipped.append("the unsubscribe link")
        if address:
            at = byte_offset_of_text(r.html, address)
            if at is not None and at >= GMAIL_CLIP_BYTES:
                clipped.append("the postal address")
        if (
            worst is None
            or len(clipped) > len(worst[2])
            or (len(clipped) == len(worst[2]) and size > worst[1])
        ):
            worst = (r, size, clipped)
    if worst is None:
        return
    r, size, clipped = worst
    who = f" for persona '{r.persona}'" if r.persona else ""
    pos = ctx.campaign.pos("template")
    if clipped:
        f = finding(
            "MBX-SIZE-001",
            f"the rendered HTML{who} is {size:,} bytes and Gmail clips it at "
            f"{GMAIL_CLIP_BYTES:,}, hiding {' and '.join(clipped)}; shorten the message or move "
            "them nearer the top",
            pos,
        )
        yield f.with_(severity=Severity.ERROR)
    else:
        yield finding(
            "MBX-SIZE-001",
            f"the rendered HTML{who} is {size:,} bytes; Gmail clips messages "
            f"over {GMAIL_CLIP_BYTES:,} bytes: shorten it (fewer sections, smaller inline "
            "styles)",
            pos,
        )


RULES = (
    Rule(
        id="MBX-UNSUB-001",
        severity=Severity.ERROR,
        summary="Commercial or fundraising: no https one-click unsubscribe endpoint configured, so "
        "List-Unsubscribe-Post cannot be sent.",
        citation="RFC 8058; RFC 2369; Gmail and Yahoo bulk-sender requirements (2024)",
        fix="Set unsubscribe.url in toolkit.yaml to an https URL containing {token}, served by "
        "`campaign unsubscribe-server` or your own endpoint that accepts the one-click POST.",
        scope="campaign",
        check=check_one_click,
    ),
    Rule(
        id="MBX-AUTH-001",
        severity=Severity.WARNING,
        summary="Neither the toolkit (DKIM key) nor the relay (`dkim_signs: true`) signs mail for "
        "the sender's domain.",
        citation="Gmail and Yahoo bulk-sender requirements (2024); RFC 6376",
        fix="Add a `dkim: {domain, selector, private_key_env}` block to toolkit.yaml for the "
        "sender's domain, or set `dkim_signs: true` on a relay that signs for it.",
        scope="campaign",
        check=check_dkim,
    ),
    Rule(
        id="MBX-SIZE-001",
        severity=Severity.WARNING,
        summary="Rendered HTML over 102,000 bytes: Gmail clips it. Error when the unsubscribe link "
        "or postal address falls after the cut.",
        citation="Gmail message clipping (102 KB); 15 USC 7704(a)(5) if required content is cut",
        fix="Shorten the message: fewer sections, shorter copy, smaller inline styles; keep the "
        "footer with the unsubscribe link and postal address within the first 102,000 bytes.",
        scope="campaign",
        check=check_size,
    ),
)
