"""Tracking and links: remote content only from allowed domains, no trackers near PHI,
no contact data in URLs.

TRK-001 looks twice: at the template source (every URL attribute the analysis found,
reported at its line) and at the rendered HTML, for URLs that only exist after
rendering (a host built from a variable, a URL passed into a macro, MJML's own
additions such as web-font links).
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from toolkit.analysis import HOLE, TagUse, is_url_attr
from toolkit.findings import Finding, Pos, Severity
from toolkit.lint import CampaignContext
from toolkit.render import PREVIEW_UNSUBSCRIBE_URL, PREVIEW_VIEW_ONLINE_URL
from toolkit.render_shapes import fact
from toolkit.rules.base import Rule, finding
from toolkit.rules.phi import clinical_uses

# Known ad and analytics trackers (host suffix, path prefix): the HHS OCR bulletin on
# tracking technologies names this kind of third party.
TRACKERS: tuple[tuple[str, str], ...] = (
    ("google-analytics.com", ""),
    ("googletagmanager.com", ""),
    ("doubleclick.net", ""),
    ("googleadservices.com", ""),
    ("googlesyndication.com", ""),
    ("facebook.com", "/tr"),
    ("connect.facebook.net", ""),
    ("analytics.tiktok.com", ""),
    ("bat.bing.com", ""),
    ("px.ads.linkedin.com", ""),
    ("snap.licdn.com", ""),
    ("hotjar.com", ""),
    ("segment.io", ""),
    ("segment.com", ""),
    ("mixpanel.com", ""),
    ("amplitude.com", ""),
    ("heap.io", ""),
    ("heapanalytics.com", ""),
    ("fullstory.com", ""),
    ("quantserve.com", ""),
    ("scorecardresearch.com", ""),
    ("ads-twitter.com", ""),
    ("t.co", ""),
    ("pinterest.com", "/ct"),
    ("ct.pinterest.com", ""),
    ("adnxs.com", ""),
    ("criteo.com", ""),
    ("taboola.com", ""),
    ("outbrain.com", ""),
)

_CSS_URL = re.compile(r"[uU][rR][lL]\(\s*['\"]?([^'\")\s]+)")


def host_in(host: str, domains: tuple[str, ...] | list[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in domains)


_TRACKER_PREFIXES: dict[str, list[str]] = {}
for _suffix, _prefix in TRACKERS:
    _TRACKER_PREFIXES.setdefault(_suffix, []).append(_prefix)


@lru_cache(maxsize=4096)
def _allowed(host: str, domains: tuple[str, ...]) -> bool:
    """host_in, kept per host and domains: campaigns repeat their template's hosts."""
    return host_in(host, domains)


@lru_cache(maxsize=4096)
def tracker(host: str, path: str) -> str | None:
    """The tracker a URL belongs to (host suffix and path prefix), or None."""
    labels = host.lower().rstrip(".").split(".")
    for i in range(len(labels) - 1):
        suffix = ".".join(labels[i:])
        for prefix in _TRACKER_PREFIXES.get(suffix, ()):
            if path.startswith(prefix):
                return suffix + prefix
    return None


def urls_in(attr: str, value: str) -> list[str]:
    value = value.strip()
    if attr == "srcset":
        return [part.split()[0] for part in value.split(",") if part.split()]
    if attr == "style":
        return _CSS_URL.findall(value)
    return [value] if value else []


@lru_cache(maxsize=4096)
def _remote(url: str) -> tuple[str, str] | None:
    """(host, path) of an absolute http(s) URL, or None for anything else (mailto:,
    anchors, relative) or a host that is not known until rendering."""
    low = url.lower()
    if not low.startswith(("http://", "https://", "//")):
        return None
    try:
        parts = urlsplit(url if not url.startswith("//") else "https:" + url)
    except ValueError:
        return None
    if HOLE in parts.netloc or not parts.hostname:
        return None
    return parts.hostname, parts.path or "/"


def _kind(tag: str, attr: str, attrs: dict[str, str]) -> str:
    if tag == "script":
        return "script"
    if tag == "link":
        return "stylesheet"
    if tag == "mj-font":
        return "web font"
    if attr in ("href", "action", "formaction", "cite"):
        return "link"
    width = attrs.get("width", "").strip().removesuffix("px")
    height = attrs.get("height", "").strip().removesuffix("px")
    return "tracking pixel" if width == height == "1" else "image"


@dataclass(frozen=True)
class _Url:
    url: str
    host: str
    path: str
    kind: str
    attr: str
    pos: Pos | None


# id(tags) -> (tags, urls): campaigns that share a template share its analysed tags tuple
_STATIC: dict[int, tuple[tuple[TagUse, ...], list[_Url]]] = {}


def _static_urls(tags: tuple[TagUse, ...]) -> list[_Url]:
    hit = _STATIC.get(id(tags))
    if hit is not None and hit[0] is tags:
        return hit[1]
    if len(_STATIC) > 1024:
        _STATIC.clear()
    urls = list(_scan_static(tags))
    _STATIC[id(tags)] = (tags, urls)
    return urls


def _scan_static(tags: tuple[TagUse, ...]) -> Iterator[_Url]:
    for tag in tags:
        attrs = dict(tag.attrs)
        for attr, value in tag.attrs:
            if not (is_url_attr(attr) or attr == "style"):
                continue
            for url in urls_in(attr, value):
                remote = _remote(url)
                if remote is not None:
                    yield _Url(url, *remote, _kind(tag.name, attr, attrs), attr, tag.pos)


# Rendered HTML comes from the MJML compiler (well-formed, attributes quoted): regexes
# for the few URL attributes are exact enough and many times faster than html.parser.
# (the MJML attributes such as background-url are compiled away by then)
# a literal space before the name: MJML separates attributes with one space
_RENDERED_URL_ATTR = re.compile(
    r""" (href|src|srcset|background|action|formaction|poster)=(["'])""")
_TAG_NAME = re.compile(r"<([a-zA-Z][\w:-]*)")
_SIZE = re.compile(r"""\s(width|height)\s*=\s*["']?([^"'\s>]*)""", re.I)
_IMG = re.compile(r"<img\b([^>]*)>", re.I)
_ALT = re.compile(r"\salt\s*=", re.I)


def images_without_alt(html: str) -> int:
    return fact(_images_without_alt, html)


def _images_without_alt(html: str) -> int:
    return sum(1 for m in _IMG.finditer(html) if not _ALT.search(m.group(1)))


def _attr_values(html: str) -> Iterator[tuple[int, str, str]]:
    """(offset, attribute, value) of every URL attribute in rendered HTML."""
    for m in _RENDERED_URL_ATTR.finditer(html):
        start = m.end()
        end = html.find(m.group(2), start)
        if end >= 0:
            yield m.start(), m.group(1), html[start:end]


_Found = tuple[str, str, str, tuple[tuple[str, str], ...]]  # tag, attribute, url, size


def _found_urls(html: str) -> tuple[_Found, ...]:
    """(tag, attribute, url, the tag's width/height as sorted pairs) of every URL in rendered
    HTML (for a shaped render, found once per shape: toolkit.render_shapes)."""
    return fact(_found_urls_list, html)


def _found_urls_list(html: str) -> tuple[_Found, ...]:
    return tuple(_find_urls(html))


def _find_urls(html: str) -> Iterator[_Found]:
    for offset, attr, value in _attr_values(html):
        start = html.rfind("<", 0, offset)
        tag = _TAG_NAME.match(html, start) if start >= 0 else None
        name = tag.group(1).lower() if tag else ""
        size: tuple[tuple[str, str], ...] = ()
        if name == "img":
            end = html.find(">", offset)
            size = tuple(sorted({k.lower(): v for k, v in _SIZE.findall(html, start, end)}
                                .items()))
        value = htmllib.unescape(value) if "&" in value else value
        for url in urls_in(attr, value):
            yield name, attr, url, size
    if "rl(" in html or "RL(" in html:  # style attributes and <style> blocks
        for url in _CSS_URL.findall(html):
            yield "", "style", htmllib.unescape(url), ()


def _rendered_urls(ctx: CampaignContext) -> Iterator[_Url]:
    cfg = ctx.repo.config
    exempt = (PREVIEW_UNSUBSCRIBE_URL, PREVIEW_VIEW_ONLINE_URL)
    if cfg is not None and cfg.unsubscribe.url:
        exempt += (cfg.unsubscribe.url.split("{", 1)[0],)
    seen: set[_Found] = set()
    for message in ctx.renders:  # personas mostly share their URLs: judge each once
        for found in _found_urls(message.html):
            if found in seen or found[2].startswith(exempt):
                continue
            seen.add(found)
            judged = _judge(found)
            if judged is not None:
                yield judged


@lru_cache(maxsize=4096)
def _judge(found: _Found) -> _Url | None:
    """A URL found in a rendered message as TRK-001 judges it (None: not remote). Kept per
    URL: the campaigns of a template show the same ones."""
    tag, attr, url, size = found
    remote = _remote(url)
    return None if remote is None else _Url(url, *remote, _kind(tag, attr, dict(size)), attr,
                                            None)


def _dynamic_pos(ctx: CampaignContext, attr: str) -> Pos | None:
    """Where a URL only the rendered message shows probably comes from: the first
    attribute of that name whose host the template leaves to an expression."""
    for use in ctx.analysis.url_uses:
        if use.attr != attr or use.static:
            continue
        if use.builtins & {"unsubscribe_url", "view_online_url"} and use.value == HOLE:
            continue
        first = urls_in(attr, use.value)
        if not first or HOLE in first[0].split("/")[2 if "//" in first[0] else 0]:
            return use.pos
    return None


def _literal_pos(ctx: CampaignContext, host: str) -> Pos | None:
    """The first line, in the template or a partial it reaches, that spells out host: where
    a URL passed to a macro or built from literals was written."""
    for file in ctx.analysis.files:
        tpl = ctx.repo.templates.get(file.removeprefix("templates/"))
        if tpl is None:
            continue
        i = tpl.source.find(host)
        if i >= 0:
            return Pos(file, tpl.source.count("\n", 0, i) + 1, i - tpl.source.rfind("\n", 0, i))
    return None


def check_remote_content(ctx: CampaignContext) -> Iterator[Finding]:
    cfg = ctx.repo.config
    if cfg is None:
        return
    allowed = cfg.organization.allowed_domains
    leaves, uses = clinical_uses(ctx)
    clinical = sorted({leaf.field for leaf in leaves} | {u.field for u in uses})
    analysis = ctx.analysis
    template = ctx.repo.template_for(ctx.campaign)
    fallback = Pos(template.file if template else ctx.campaign.file, 1)
    seen: set[tuple[str, str]] = set()
    static = _static_urls(analysis.tags)
    for u in [*static, *_rendered_urls(ctx)]:
        key = (u.host.lower(), u.kind)
        if u.pos is None and key in seen:
            continue
        seen.add(key)
        known = tracker(u.host, u.path)
        if not (known and clinical) and _allowed(u.host, tuple(allowed)):
            continue
        pos = u.pos or _literal_pos(ctx, u.host) or _dynamic_pos(ctx, u.attr) or fallback
        where = "" if u.pos else " (in the rendered message)"
        if known and clinical:
            yield finding("TRK-001",
                          f"{u.kind} from known tracker {known}{where} in a campaign whose "
                          f"segment or content uses clinical fields ({', '.join(clinical)}); "
                          "remove it: trackers must never see who receives health messages", pos)
        else:
            yield finding("TRK-001", f"{u.kind} points at {u.host}{where}, which is not in "
                          "organization.allowed_domains; host it on an allowed domain, or add "
                          f"{u.host} to allowed_domains in toolkit.yaml after review", pos)


def check_contact_in_urls(ctx: CampaignContext) -> Iterator[Finding]:
    for use in ctx.analysis.url_uses:
        if not use.fields:
            continue
        names = ", ".join(f"contact.{f}" for f in sorted(use.fields))
        place = {"": "a tag's attributes", "text": "a URL written as text (mail clients link it)"
                 }.get(use.attr, f"the {use.attr} URL")
        yield finding("TRK-002", f"{names} flows into {place}; PHI in URLs leaks into server "
                      "logs, browser history and third parties: link to a page that identifies "
                      "the patient after sign-in, and put no contact data in the URL", use.pos)


RULES = (
    Rule(
        id="TRK-001",
        severity=Severity.ERROR,
        summary="A remote image, script, pixel (1x1 image) or link domain that is not in "
        "`allowed_domains`; known ad and analytics trackers are always an error when the "
        "segment or content uses a clinical field.",
        citation="HHS OCR, Use of Online Tracking Technologies by HIPAA Covered Entities and "
        "Business Associates (2022, revised 2024); 45 CFR 164.502(a)",
        fix="Host images on a domain in `organization.allowed_domains` and link only there; "
        "remove tracking pixels and analytics scripts. Trackers are refused near clinical data "
        "even when allowed_domains lists them. Known trackers: "
        + ", ".join(s + p for s, p in TRACKERS) + ".",
        scope="campaign",
        check=check_remote_content,
    ),
    Rule(
        id="TRK-002",
        severity=Severity.ERROR,
        summary="A contact field is interpolated into a URL (href, src, srcset, background, utm "
        "parameters). Built-in token URLs are exempt.",
        citation="HHS OCR tracking technologies bulletin; 45 CFR 164.502(b) (minimum necessary)",
        fix="Remove contact.<field> from the URL. Use the built-in `unsubscribe_url` and "
        "`view_online_url` (opaque tokens), and link to pages that identify the patient after "
        "sign-in. Campaign-level utm parameters are fine; per-person ones are not.",
        scope="campaign",
        check=check_contact_in_urls,
    ),
)
