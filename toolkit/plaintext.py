"""The plain-text alternative of a message, from its compiled HTML (inscriptis).

MJML lays a message out with presentation tables, which inscriptis would render
as padded text columns. Before converting, each layout table (`role="presentation"`)
becomes blocks: the table and its own rows become divisions and its cells
paragraphs, so each MJML component is a paragraph; tables of content (mj-table)
stay tables. inscriptis honours `display:none` (the hidden preheader stays out).
Afterwards lines are stripped, blank lines kept to one, and links written
"label (https://...)", so every link survives in the text part.

Speed (inscriptis is pure Python and was the costliest step of a message): MJML's
output is layout wrappers (divisions, presentation tables, their rows and cells,
Outlook comments) around *leaf cells*, the cells of presentation tables holding
no presentation table, one per component. When everything outside the leaf cells
is such a wrapper, with no text of its own and no style that could reach the
cells (`white-space`; `display:none` only drops what it hides), the text of the
message is the text of each leaf cell, as inscriptis gives it, joined by one blank
line: each cell is a paragraph, and the paragraphs' margins put at least one blank
line between them, which the clean-up keeps to one. Each cell is converted on its
own, and its text kept by the cell's HTML: most cells (the body of a newsletter,
the footer) are the same for every recipient, or repeated within a message. Any
other shape is converted whole, as before. tests/test_plaintext.py checks both
ways give the same text on every example campaign and persona, and on MJML's
components.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from lxml import etree
from lxml import html as lxml_html

_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=True, display_images=False)
# inscriptis writes links as [label](url)
_LINK = re.compile(r"\[([^\[\]]*)\]\(([^()\s]+)\)")
_BLANKS = re.compile(r"\n{3,}")
_PARTS = ("tbody", "thead", "tfoot", "tr", "td", "th")
# what inscriptis's strict profile never displays, and the elements that only lay out
_HIDDEN_TAGS = frozenset({"head", "link", "meta", "script", "title", "style"})
# what a wrapper may hold (besides hidden elements and comments), by the wrapper's place:
# a layout table its row groups and rows, a row group its rows, a row its cells, and the
# rest (body, division, a cell holding a layout table) divisions and layout tables
_IN_TABLE = frozenset({"tbody", "thead", "tfoot", "tr"})
_IN_GROUP = frozenset({"tr"})
_NOTHING: frozenset[str] = frozenset()  # a row holds cells only
_IN_BLOCK = frozenset({"div", "table"})
_CELL_TAGS = ("td", "th")
# directive names as inscriptis looks them up (see _directives)
_MARGINS = frozenset({"margin_top", "margin_bottom", "margin_before", "margin_after"})
_WHITE_SPACE = frozenset({"white_space"})
# plain lxml elements: lxml.html's element classes cost a lookup per element visited
_PARSER = etree.HTMLParser()
_CACHE_SIZE = 4096  # cell texts kept per process (cleared when full)
_cells: dict[str, str] = {}


def _link(m: re.Match[str]) -> str:
    label, url = " ".join(m.group(1).split()), m.group(2)
    if url.startswith("#"):
        return label
    if not label or label == url:
        return url
    if url.startswith("mailto:") and label == url[len("mailto:"):]:
        return label
    return f"{label} ({url})"


def _unlayout(table: etree._Element) -> None:
    """A layout table, its own rows and cells (not nested tables) as blocks."""
    todo = [table]
    while todo:
        el = todo.pop()
        el.tag = "p" if el.tag in ("td", "th") else "div"
        todo.extend(ch for ch in el if isinstance(ch.tag, str) and ch.tag in _PARTS)


def _clean(raw: str) -> str:
    text = _LINK.sub(_link, "\n".join(line.strip() for line in raw.splitlines()))
    return _BLANKS.sub("\n\n", text).strip()


def _inert(tree: etree._Element) -> etree._Element:
    """The tree with each `&` of its text and links escaped once more. inscriptis
    unescapes the text it writes, which lxml has already decoded: without this, a name
    `&lt;b&gt;` read `<b>` in the text part, and a link `?lang=en&region=us` read
    `?lang=en®ion=us` (`&reg` is an entity even without its semicolon)."""
    for el in tree.iter():
        if el.text and "&" in el.text:
            el.text = el.text.replace("&", "&amp;")
        if el.tail and "&" in el.tail:
            el.tail = el.tail.replace("&", "&amp;")
        href = el.get("href") if isinstance(el.tag, str) else None
        if href and "&" in href:
            el.set("href", href.replace("&", "&amp;"))
    return tree


def _convert(tree: etree._Element) -> str:
    """inscriptis over a (sub)tree whose layout tables are already blocks, cleaned up."""
    return _clean(Inscriptis(_inert(tree), _CONFIG).get_text())


def _directives(style: str) -> list[tuple[str, str]]:
    """The directives of a (lower-cased) style attribute as inscriptis reads them: it
    applies `key` as the method `attr_<key>`, so `-webkit-` anywhere is dropped and
    `-` and `_` are the same (`disp-webkit-lay` is `display`, `white_space` white-space)."""
    out = []
    for directive in style.split(";"):
        if ":" in directive:
            key, value = (s.strip() for s in directive.split(":", 1))
            out.append((key.replace("-webkit-", "").replace("-", "_"), value))
    return out


class _Irregular(Exception):
    """The HTML is not wrappers around leaf cells: convert it whole."""


# what a style attribute does to the walk below, kept by its text: MJML writes the same
# few styles on every wrapper of every message, so each is read once per process (and
# read in full: no shortcut on the raw text, which `disp-webkit-lay` would defeat)
_HIDES, _SPACES, _MARGIN = 1, 2, 4
_style_flags: dict[str, int] = {}


def _flags(style: str) -> int:
    flags = _style_flags.get(style)
    if flags is None:
        low = style.lower()
        directives = _directives(low)
        keys = {key for key, _ in directives}
        flags = ((_HIDES if ("display", "none") in directives else 0)
                 | (_SPACES if keys & _WHITE_SPACE else 0)
                 | (_MARGIN if keys & _MARGINS else 0))
        if len(_style_flags) >= _CACHE_SIZE:
            _style_flags.clear()
        _style_flags[style] = flags
    return flags


def _leaf_cells(el: etree._Element, out: list[etree._Element]) -> None:
    """Collect the leaf cells under a wrapper, in document order, or raise _Irregular."""
    text = el.text
    if text and not text.isspace():
        raise _Irregular
    parent = el.tag
    in_row = parent == "tr"
    allowed = (_IN_TABLE if parent == "table" else _NOTHING if in_row
               else _IN_GROUP if parent in _IN_TABLE else _IN_BLOCK)
    for child in el:
        tail = child.tail
        if tail and not tail.isspace():
            raise _Irregular
        tag = child.tag
        if tag.__class__ is not str or tag in _HIDDEN_TAGS:  # comments: Outlook conditionals
            continue
        style = child.get("style")
        flags = _flags(style) if style else 0
        if flags & _HIDES:
            continue  # inscriptis shows nothing of it
        if in_row and tag in _CELL_TAGS:
            # a loop, not any(): this runs for every cell of every message
            for table in child.iter("table"):
                if table.get("role") == "presentation":
                    break  # it holds a layout table: a wrapper, walked below
            else:
                if flags & _MARGIN:
                    raise _Irregular  # its margin could take the blank line away
                out.append(child)
                continue
        elif tag not in allowed or (tag == "table" and child.get("role") != "presentation"):
            raise _Irregular  # text, content, or a table part out of its place
        if flags & _SPACES:
            raise _Irregular  # the cells it holds would inherit it
        _leaf_cells(child, out)


def _cell_text(cell: etree._Element, values: tuple[str, ...] = ()) -> str:
    cell.tail = None
    # the cell's markup as its key: serializing to a str is the cheapest faithful form
    key = etree.tostring(cell, encoding="unicode")
    text = _cells.get(key)
    if text is None:
        swap = (_swap(cell, values) if values and any(v in key for v in values) else None)
        if swap is not None:
            text = _swapped_text(cell, swap)
        if text is None:
            cell.tag = "p"  # as _unlayout makes it; it holds no layout table
            text = _convert(cell)
        _keep(_cells, key, text)  # a cell repeated in the message is looked up
    return text


def _keep(kept: dict[str, str], key: str, text: str) -> None:
    if len(kept) >= _CACHE_SIZE:
        kept.clear()
    kept[key] = text


# --- a recipient's own words in a cell, converted once for all recipients ----------------
#
# A cell that differs between recipients only by a contact value ("Dear Pat12,") would be
# converted for each. In the cell's text nodes (never its markup) each such value is
# swapped for a run of one letter of the same length, which inscriptis writes as it writes
# any other word characters: it neither wraps lines nor reads words, so the text of the
# swapped cell, with the runs swapped back, is the text of the cell. Only where nothing
# else could read the letters differently: no link (its label is compared with its URL),
# no table (columns are sized), no `[` or `]` (the link clean-up's pattern), each value
# only in text nodes, and each run found exactly as often as it was put, never next to
# its own letter, in the swapped markup and in its text. Else the cell is put back as it
# was and converted as it is.
_MARKS = "qjzwkv"  # one letter per value in a cell
_SWAP_MIN = 3  # shorter values are parts of ordinary words: nothing to gain
_NO_SWAP_TAGS = frozenset({"a", "table"})

Runs = list[tuple[str, str, int]]  # value, its run, how many were swapped
Swap = tuple[Runs, list[tuple[etree._Element, bool, str]]]  # and the text nodes as they were


def swap_values(contact_values: Iterable[object]) -> tuple[str, ...]:
    """The contact values worth swapping: letters and digits (any script), long enough, none
    of the swap letters; longest first (a value inside another is swapped after it)."""
    out = {v for v in contact_values
           if isinstance(v, str) and len(v) >= _SWAP_MIN and v.isalnum()
           and not any(m in v for m in _MARKS)}
    return tuple(sorted(out, key=lambda v: (-len(v), v)))[:len(_MARKS)]


def _swap(cell: etree._Element, values: tuple[str, ...]) -> Swap | None:
    """Swap the values found in the cell's text nodes, in place; None (the cell
    untouched) when there is nothing to swap or the cell could read it differently."""
    nodes: list[tuple[etree._Element, bool, str]] = []
    for el in cell.iter():
        if isinstance(el.tag, str):
            if el.tag in _NO_SWAP_TAGS or el.get("href") is not None:
                return None  # (_inert rewrites an href: the cell could not be put back)
            if el.text:
                nodes.append((el, False, el.text))
        if el.tail and el is not cell:
            nodes.append((el, True, el.tail))
    joined = "\0".join(text for _, _, text in nodes)
    if "[" in joined or "]" in joined:
        return None
    runs = [(value, mark * len(value), n) for mark, value in zip(_MARKS, values, strict=False)
            if (n := joined.count(value))]
    if not runs:
        return None
    for el, tail, text in nodes:
        swapped = text
        for value, run, _ in runs:
            swapped = swapped.replace(value, run)
        if swapped != text:
            if tail:
                el.tail = swapped
            else:
                el.text = swapped
    return runs, nodes


def _restore(cell: etree._Element, tag: str, swap: Swap) -> None:
    cell.tag = tag
    for el, tail, text in swap[1]:
        if tail:
            el.tail = text
        else:
            el.text = text


def _runs_intact(s: str, runs: Runs) -> bool:
    return all(s.count(run) == n and run[0] + run not in s and run + run[0] not in s
               for _, run, n in runs)


def _swapped_text(cell: etree._Element, swap: Swap) -> str | None:
    """The cell's text through its swapped markup, or None with the cell restored."""
    runs = swap[0]
    tag = cell.tag
    key = etree.tostring(cell, encoding="unicode")
    # a value still in the key is also in the markup (an attribute, an entity name)
    if ("[" in key or "]" in key or not _runs_intact(key, runs)
            or any(value in key for value, _, _ in runs)):
        _restore(cell, tag, swap)
        return None
    text = _cells.get(key)
    if text is None:
        cell.tag = "p"  # as _unlayout makes it; it holds no layout table
        text = _convert(cell)
        _keep(_cells, key, text)  # the text of this markup, swapped back or not
    if not _runs_intact(text, runs):
        _restore(cell, tag, swap)
        return None
    for value, run, _ in reversed(runs):
        text = text.replace(run, value)
    return text


def html_to_text(html: str, values: tuple[str, ...] = ()) -> str:
    """The text part. `values`: the recipient's (from swap_values), to share the text of
    cells that differ only by them; the text is the same with or without."""
    if not html.strip():
        return ""
    doc = etree.fromstring(html, _PARSER)
    body = doc.find("body")
    cells: list[etree._Element] = []
    try:
        if (body is None or len(doc) > 2 or (doc.text or "").strip()
                or _flags(body.get("style") or "") & _SPACES):
            raise _Irregular
        _leaf_cells(body, cells)
    except _Irregular:
        return whole_text(doc)
    texts = [_cell_text(cell, values) for cell in cells]
    return "\n\n".join(t for t in texts if t) + "\n"


def whole_text(doc: etree._Element | str) -> str:
    """The whole document converted at once: the reference the per-cell way must equal."""
    if isinstance(doc, str):
        if not doc.strip():
            return ""
        doc = lxml_html.document_fromstring(doc)
    head = doc.find("head")
    if head is not None:  # styles and metadata only
        doc.remove(head)
    for table in list(doc.iter("table")):
        if table.get("role") == "presentation":
            _unlayout(table)
    return _clean(Inscriptis(_inert(doc), _CONFIG).get_text()) + "\n"
