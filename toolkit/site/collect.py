"""Everything a reviewer sees about one campaign, gathered from the stage modules.

Only personas (fixtures/personas.yaml) are rendered; no contact source is read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from toolkit.findings import Finding, Severity
from toolkit.models import PURPOSES, Campaign, Repo
from toolkit.render import RenderError, preview_now, render_preview, segment_personas
from toolkit.site.preview import offline
from toolkit.site.words import describe


@dataclass(frozen=True)
class PersonaView:
    name: str
    subject: str = ""
    preheader: str = ""
    html: str = ""  # the message with network resources replaced (toolkit.site.preview)
    text: str = ""
    headers: str = ""
    eml: bytes = b""
    error: str | None = None


@dataclass(frozen=True)
class FieldUseView:
    field: str
    cls: str
    allowed: bool  # listed in the campaign's phi_fields
    places: tuple[str, ...]


@dataclass(frozen=True)
class Approval:
    valid: bool
    approved_roles: tuple[str, ...] = ()
    missing_roles: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class CampaignView:
    campaign: Campaign
    purpose: str
    hipaa_category: str
    commercial: bool
    segment_words: str
    segment_description: str
    digest: str
    approval: Approval
    findings: tuple[Finding, ...]
    field_uses: tuple[FieldUseView, ...]
    authorization_title: str | None
    personas: tuple[PersonaView, ...]
    persona_note: str
    sender: dict[str, str | None] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.campaign.id

    def count(self, severity: str) -> int:
        if severity == "waived":
            return sum(1 for f in self.findings if f.waived)
        return sum(1 for f in self.findings if not f.waived and f.severity is Severity(severity))


def choose_personas(repo: Repo, campaign: Campaign, at: dt.datetime) -> tuple[list[str], str]:
    """The personas the segment matches, or the first persona (DESIGN.md: fixtures)."""
    names = list(repo.personas)
    if not names:
        return [], "fixtures/personas.yaml defines no persona, so nothing is rendered."
    # the same selection as lint's renders (toolkit.render.preview_personas), so they are shared
    matched = segment_personas(repo, campaign, at)  # a bad segment is a lint finding
    when = at.isoformat(timespec="minutes")
    if matched:
        return matched, f"Rendered for every persona the segment matches at {when}."
    return names[:1], f"No persona matches the segment at {when}; shown for the first persona."


def render_persona(repo: Repo, campaign: Campaign, name: str, digest: str,
                   at: dt.datetime) -> PersonaView:
    from toolkit.message import build_message, preview_token

    contact = repo.personas[name].contact
    try:
        rendered = render_preview(repo, campaign, name, at=at)
    except RenderError as exc:
        return PersonaView(name, error=f"{exc.file}:{exc.line}: {exc.message}")
    try:
        eml = build_message(repo, campaign, contact, rendered, digest=digest,
                            token=preview_token(repo, campaign, contact), now=at).as_bytes()
        headers = eml.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace").replace("\r\n", "\n")
    except ValueError as exc:  # e.g. a sender without from_address: lint says so too
        eml, headers = b"", f"(no message could be built: {exc})"
    return PersonaView(name, rendered.subject, rendered.preheader, offline(rendered.html),
                       rendered.text, headers, eml)


def _field_uses(repo: Repo, campaign: Campaign) -> tuple[FieldUseView, ...]:
    try:
        from toolkit.analysis import analyze_campaign

        uses = analyze_campaign(repo, campaign).field_uses
    except Exception:  # analysis problems are lint findings; the page just shows less
        return ()
    places: dict[str, set[str]] = {}
    for u in uses:
        where = f"{u.pos.file}:{u.pos.line}"
        places.setdefault(u.field, set()).add(f"{u.part} ({where})")
    allowed = set(campaign.phi_fields)
    return tuple(
        FieldUseView(f, repo.fields[f].cls if f in repo.fields else "unknown", f in allowed,
                     tuple(sorted(p)))
        for f, p in sorted(places.items())
    )


def _approval(repo: Repo, campaign: Campaign) -> Approval:
    try:
        from toolkit.approvals import approval_status

        st = approval_status(repo, campaign.id)
    except Exception as exc:  # an unreadable approval is "not approved", with the reason
        return Approval(False, reasons=(f"approvals could not be checked ({type(exc).__name__})",))
    return Approval(bool(st.valid), tuple(st.approved_roles), tuple(st.missing_roles),
                    tuple(st.reasons))


def campaign_view(repo: Repo, campaign: Campaign, findings: list[Finding],
                  at: dt.datetime | None = None) -> CampaignView:
    from toolkit.digest import campaign_digest

    when = at or preview_now(campaign)
    digest = campaign_digest(repo, campaign.id)
    base = repo.base_purpose(campaign.purpose)
    names, note = choose_personas(repo, campaign, when)
    segment = repo.segments.get(campaign.segment)
    cfg = repo.config
    sender = cfg.senders.get(campaign.sender) if cfg is not None else None
    auth = campaign.authorization
    form = repo.authorizations.get(auth.scope) if auth is not None else None
    return CampaignView(
        campaign=campaign,
        purpose=campaign.purpose or "(none)",
        hipaa_category=PURPOSES[base][0] if base else "unknown purpose",
        commercial=repo.is_commercial(campaign),
        segment_words=describe(segment.where) if segment else "(segment not found)",
        segment_description=(segment.description or "") if segment else "",
        digest=digest,
        approval=_approval(repo, campaign),
        findings=tuple(findings),
        field_uses=_field_uses(repo, campaign),
        authorization_title=(form.title or auth.scope) if form is not None and auth else None,
        personas=tuple(render_persona(repo, campaign, n, digest, when) for n in names),
        persona_note=note,
        sender={
            "profile": campaign.sender,
            "from_name": sender.from_name if sender else None,
            "from_address": sender.from_address if sender else None,
            "reply_to": sender.reply_to if sender else None,
        },
    )
