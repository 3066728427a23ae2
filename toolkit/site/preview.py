"""A message's HTML made safe to show in the preview site: nothing loads from the network.

The message itself keeps its images and links; only the preview copy changes.
Remote images become a grey placeholder (their address stays in `data-src`), and
remote stylesheets, @import rules and CSS url() values are dropped, so the site
works from file:// with the network off and tells nobody that a reviewer looked.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_PLACEHOLDER = "data:image/svg+xml," + quote(
    '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="200" viewBox="0 0 600 200">'
    '<rect width="600" height="200" fill="#e5e7eb"/>'
    '<text x="300" y="108" font-family="sans-serif" font-size="18" fill="#6b7280" '
    'text-anchor="middle">image (not loaded in previews)</text></svg>', safe="")

_REMOTE = r"""(?:https?:)?//[^"'\s>]*"""
_SRC = re.compile(rf"""\bsrc=(["']){_REMOTE}\1""", re.IGNORECASE)
_SRCSET = re.compile(r"""\ssrcset=(["'])[^"']*\1""", re.IGNORECASE)
_LINK_TAG = re.compile(rf"""<link\b[^>]*\bhref=(["']){_REMOTE}\1[^>]*>""", re.IGNORECASE)
_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*["']?(?:https?:)?//[^;]*;?""", re.IGNORECASE)
_QUOTE = r"(?:&quot;|&#34;|&#39;|[\"'])?"
_CSS_URL = re.compile(rf"url\(\s*{_QUOTE}(?:https?:)?//[^\"'\s>)&]*{_QUOTE}\s*\)", re.IGNORECASE)
_BACKGROUND = re.compile(rf"""\sbackground=(["']){_REMOTE}\1""", re.IGNORECASE)


def _src(m: re.Match[str]) -> str:
    url = m.group(0).split("=", 1)[1][1:-1]
    return f'src="{_PLACEHOLDER}" data-src="{url}"'


def offline(html: str) -> str:
    """The HTML with every network resource removed or replaced."""
    html = _LINK_TAG.sub("", html)
    html = _IMPORT.sub("", html)
    html = _CSS_URL.sub("none", html)
    html = _BACKGROUND.sub("", html)
    html = _SRCSET.sub("", html)
    return _SRC.sub(_src, html)
