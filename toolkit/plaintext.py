"""The plain-text alternative of a message, from its compiled HTML (inscriptis).

MJML lays a message out with presentation tables, which inscriptis would render
as padded text columns. Before converting, each layout table (`role="presentation"`)
becomes blocks: the table and its own rows become divisions and its cells
paragraphs, so each MJML component is a paragraph; tables of content (mj-table)
stay tables. inscriptis honours `display:none` (the hidden preheader stays out).
Afterwards lines are stripped, blank lines kept to one, and links written
"label (https://...)", so every link survives in the text part.
"""

from __future__ import annotations

import re

from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from lxml import html as lxml_html

_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=True, display_images=False)
# inscriptis writes links as [label](url)
_LINK = re.compile(r"\[([^\[\]]*)\]\(([^()\s]+)\)")
_BLANKS = re.compile(r"\n{3,}")
_PARTS = ("tbody", "thead", "tfoot", "tr", "td", "th")


def _link(m: re.Match[str]) -> str:
    label, url = " ".join(m.group(1).split()), m.group(2)
    if url.startswith("#"):
        return label
    if not label or label == url:
        return url
    if url.startswith("mailto:") and label == url[len("mailto:"):]:
        return label
    return f"{label} ({url})"


def _unlayout(table: lxml_html.HtmlElement) -> None:
    """A layout table, its own rows and cells (not nested tables) as blocks."""
    todo = [table]
    while todo:
        el = todo.pop()
        el.tag = "p" if el.tag in ("td", "th") else "div"
        todo.extend(ch for ch in el if isinstance(ch.tag, str) and ch.tag in _PARTS)


def html_to_text(html: str) -> str:
    if not html.strip():
        return ""
    doc = lxml_html.document_fromstring(html)
    head = doc.find("head")
    if head is not None:  # styles and metadata only
        doc.remove(head)
    for table in list(doc.iter("table")):
        if table.get("role") == "presentation":
            _unlayout(table)
    raw = Inscriptis(doc, _CONFIG).get_text()
    text = _LINK.sub(_link, "\n".join(line.strip() for line in raw.splitlines()))
    return _BLANKS.sub("\n\n", text).strip() + "\n"
