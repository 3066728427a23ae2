"""Rendering core: Jinja (sandboxed, strict, autoescaped) renders MJML, then
mjml-python compiles it to HTML. (Issue 3 adds the rendering fixes of DESIGN.md.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import mjml

from toolkit.jinja_env import make_env, make_string_env
from toolkit.models import Campaign, Repo

PREVIEW_UNSUBSCRIBE_URL = "https://unsubscribe.invalid/preview-token"
PREVIEW_VIEW_ONLINE_URL = "https://view.invalid/preview"


class RenderError(Exception):
    def __init__(self, message: str, file: str, line: int = 1):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line


@dataclass(frozen=True)
class RenderedMessage:
    campaign: str
    persona: str | None
    subject: str
    preheader: str
    html: str
    text: str
    mjml: str


def template_context(repo: Repo, campaign: Campaign, contact: dict[str, Any], *,
                     unsubscribe_url: str, view_online_url: str, now: dt.datetime) -> dict[str, Any]:
    cfg = repo.config
    assert cfg is not None
    sender = cfg.senders[campaign.sender]
    return {
        "contact": contact,
        "sender": {
            "from_name": sender.from_name,
            "from_address": sender.from_address,
            "reply_to": sender.reply_to,
            "ad_label": sender.ad_label,
            "postal_address": sender.postal_address or cfg.organization.postal_address,
        },
        "organization": {"name": cfg.organization.name, "postal_address": cfg.organization.postal_address},
        "campaign": {"id": campaign.id, "title": campaign.title, "purpose": campaign.purpose},
        "unsubscribe_url": unsubscribe_url,
        "view_online_url": view_online_url,
        "now": now,
    }


def render_campaign(repo: Repo, campaign: Campaign, contact: dict[str, Any], *, persona: str | None = None,
                    unsubscribe_url: str = PREVIEW_UNSUBSCRIBE_URL,
                    view_online_url: str = PREVIEW_VIEW_ONLINE_URL,
                    now: dt.datetime | None = None) -> RenderedMessage:
    template = repo.template_for(campaign)
    if template is None:
        raise RenderError(f"template '{campaign.template}' not found", campaign.file)
    ctx = template_context(repo, campaign, contact, unsubscribe_url=unsubscribe_url,
                           view_online_url=view_online_url, now=now or dt.datetime.now(dt.UTC))
    env = make_env(repo.root / "templates")
    source = env.get_template(template.name).render(ctx)
    html = mjml.mjml2html(source)
    senv = make_string_env()
    subject = senv.from_string(campaign.subject).render(ctx)
    preheader = senv.from_string(campaign.preheader).render(ctx)
    return RenderedMessage(campaign.id, persona, subject, preheader, html, "", source)


def render_for_lint(repo: Repo, campaign: Campaign) -> list[RenderedMessage]:
    out = []
    for name, persona in repo.personas.items():
        try:
            out.append(render_campaign(repo, campaign, persona.contact, persona=name))
        except Exception:  # noqa: BLE001 - the analysis reports why a template cannot render
            continue
    return out
