"""The plain-text alternative of a message, from its compiled HTML (inscriptis).

inscriptis lays out tables and honours `display:none` (so the hidden preheader
stays out). MJML lays out with tables, which inscriptis pads to column width; we
strip that padding, keep blank lines to at most one, and write links as
"label (https://...)" so that every link survives in the text part.
"""

from __future__ import annotations

import re

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=True, display_images=False)
# inscriptis writes links as [label](url)
_LINK = re.compile(r"\[([^\[\]]*)\]\(([^()\s]+)\)")
_HEAD = re.compile(r"<head\b.*?</head>", re.DOTALL | re.IGNORECASE)
_BLANKS = re.compile(r"\n{3,}")


def _link(m: re.Match[str]) -> str:
    label, url = " ".join(m.group(1).split()), m.group(2)
    if not label or label == url or url.startswith("#"):
        return url if not url.startswith("#") else label
    if url.startswith("mailto:") and label == url[len("mailto:"):]:
        return label
    return f"{label} ({url})"


def html_to_text(html: str) -> str:
    # the head holds only styles and metadata: skipping it saves a third of the parse
    body = _HEAD.sub("", html, count=1)
    raw = get_text(body, _CONFIG)
    lines = [line.strip() for line in raw.splitlines()]
    text = _LINK.sub(_link, "\n".join(lines))
    return _BLANKS.sub("\n\n", text).strip() + "\n"
