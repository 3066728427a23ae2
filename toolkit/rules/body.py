"""What rules look for in a rendered message body: links, visible text, byte offsets.

Rules read the real output of `render_for_lint` (rendered with the preview unsubscribe
URL), so a link that a condition or a partial hides is judged as the recipient sees it.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from toolkit.render import PREVIEW_UNSUBSCRIBE_URL
from toolkit.render_shapes import ShapedHTML

if TYPE_CHECKING:
    from toolkit.lint import CampaignContext
    from toolkit.render import RenderedMessage

_WS = re.compile(r"\s+")


# Regular expressions, not an HTML parser: the input is the compiled MJML we produced, the
# questions are narrow (links, visible text), and a parser cost 30x more per message in the
# lint benchmark (bench/lint.md).
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HIDDEN = re.compile(r"<(head|style|script|title)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>")
_HREF = re.compile(r"""<a\b[^>]*?\shref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


@dataclass(frozen=True)
class _Scan:
    hrefs: tuple[str, ...]
    text: str


def _scan(html: str) -> _Scan:
    """Links and visible text of one rendered body; several rules ask, it is computed once
    (for a shaped render, once per shape: toolkit.render_shapes)."""
    if type(html) is ShapedHTML:
        got = html.memo.get(_scan)
        if got is None:
            got = html.memo[_scan] = _Scan(*html.fact(_scan_parts))
        return got  # type: ignore[no-any-return]
    return _scan_cached(html)


@lru_cache(maxsize=64)
def _scan_cached(html: str) -> _Scan:
    return _Scan(*_scan_parts(html))


def _scan_parts(html: str) -> tuple[tuple[str, ...], str]:
    body = _COMMENT.sub(" ", html)
    links = tuple(htmllib.unescape(next(g for g in m.groups() if g is not None)).strip()
                  for m in _HREF.finditer(body))
    text = htmllib.unescape(_TAG.sub(" ", _HIDDEN.sub(" ", body)))
    return links, normalize_space(text)


def unsubscribe_urls(ctx: CampaignContext, rendered: RenderedMessage) -> tuple[str, ...]:
    """The unsubscribe URLs a lint render may carry: the campaign's real URL with the
    persona's preview token (as render_for_lint renders it), or the generic preview URL."""
    key = f"unsubscribe_urls:{rendered.persona}"
    cached = ctx._cache.get(key)
    if cached is not None:
        return cached  # type: ignore[return-value]
    urls = [PREVIEW_UNSUBSCRIBE_URL]
    persona = ctx.repo.personas.get(rendered.persona or "")
    if persona is not None:
        try:
            from toolkit.render import preview_unsubscribe_url

            urls.insert(0, preview_unsubscribe_url(ctx.repo, ctx.campaign, persona.contact))
        except Exception:
            pass
    ctx._cache[key] = tuple(urls)
    return tuple(urls)


def has_unsubscribe_link(ctx: CampaignContext, rendered: RenderedMessage) -> bool:
    links = _scan(rendered.html).hrefs
    return any(u in links for u in unsubscribe_urls(ctx, rendered))


def normalize_space(text: str) -> str:
    return _WS.sub(" ", text).strip()


def visible_text(html: str) -> str:
    """The text a reader sees (no head, style or script), whitespace collapsed."""
    return _scan(html).text


def contains_text(html: str, needle: str) -> bool:
    """Whether the visible text contains needle, ignoring differences in whitespace."""
    return normalize_space(needle) in visible_text(html)


def byte_offset_of_link(html: str, urls: tuple[str, ...]) -> int | None:
    """Byte offset (UTF-8) of the first href attribute pointing at one of urls, or None."""
    found = []
    for url in urls:
        for quoted in (f'href="{url}"', f"href='{url}'", f'href="{htmllib.escape(url)}"'):
            i = html.find(quoted)
            if i >= 0:
                found.append(i)
    return len(html[: min(found)].encode("utf-8")) if found else None


def byte_offset_of_text(html: str, needle: str) -> int | None:
    """Byte offset of needle in the raw HTML, trying its HTML-escaped form too, or None."""
    for form in (needle, htmllib.escape(needle, quote=False), htmllib.escape(needle)):
        i = html.find(form)
        if i >= 0:
            return len(html[:i].encode("utf-8"))
    # a wrapped address: find it with any whitespace between words
    words = [re.escape(w) for w in needle.split()]
    if words:
        m = re.search(r"\s+".join(words), html)
        if m:
            return len(html[: m.start()].encode("utf-8"))
    return None
