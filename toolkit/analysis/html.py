"""Where template output lands in the HTML/MJML: text, a tag, or an attribute value.

The Jinja walker feeds this state machine the template's literal text and, between
the texts, the taint of each expression it outputs, in output order. It is not a
full HTML parser: it knows tags, attributes (quoted or not) and comments, which is
what deciding "does this value flow into a URL?" needs. Raw-text elements (style,
script) are scanned like text: a `<` inside CSS is rare in email templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from toolkit.findings import Pos

# Where a value becomes a URL a mail client or browser fetches or follows.
URL_ATTRS = frozenset({
    "href", "src", "srcset", "background", "action", "formaction", "poster", "cite",
    "xlink:href", "data", "background-url", "thumbnails-src", "icon-wrapped-url",
    "icon-unwrapped-url",
})
# Stands in for an expression inside an attribute value.
HOLE = "\x00"

_TAGNAME = re.compile(r"[A-Za-z][^\s/>\x00]*")
_WS = re.compile(r"\s*")
_ATTRNAME = re.compile(r"[^\s=/>\x00]+")
_UNQUOTED = re.compile(r"[^\s>]*")
_TEXT_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']*$", re.I)


def is_url_attr(name: str) -> bool:
    return name in URL_ATTRS or name.endswith(("-url", "-src"))


@dataclass(frozen=True)
class TagUse:
    """A start tag in the output: its name, position and attributes (values with HOLE
    where an expression is)."""

    name: str
    pos: Pos
    attrs: tuple[tuple[str, str], ...]

    def attr(self, name: str) -> str | None:
        for k, v in self.attrs:
            if k == name:
                return v
        return None


@dataclass(frozen=True)
class UrlUse:
    """A URL-carrying attribute value and the variables that flow into it.

    `value` is the literal text with HOLE for each expression; `attr` is "" when a
    contact value is written inside a tag but outside any attribute value (it could
    become an attribute of its own).
    """

    attr: str
    pos: Pos
    fields: frozenset[str]
    builtins: frozenset[str]
    value: str = ""
    tag: str = ""

    @property
    def static(self) -> bool:
        return HOLE not in self.value


TEXT, COMMENT, ENDTAG, TAG, AFTERNAME, BEFOREVALUE, DQ, SQ, UQ = range(9)
_VALUE_MODES = (DQ, SQ, UQ)
_NOWHERE = Pos("", 1, 1)


@dataclass
class HtmlState:
    """Resumable scanner state. Copyable, so that `if` branches can start alike."""

    urls: list[UrlUse]
    tags: list[TagUse]
    mode: int = TEXT
    tag: str = ""
    tag_pos: Pos = _NOWHERE
    attrs: list[tuple[str, str]] = field(default_factory=list)
    attr: str = ""
    attr_pos: Pos = _NOWHERE
    value: list[str] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)
    builtins: set[str] = field(default_factory=set)
    tail: str = ""  # the end of the current text run, for URLs written as text
    in_preview: bool = False  # inside <mj-preview>: the preheader shown on lock screens

    def copy(self) -> HtmlState:
        return HtmlState(self.urls, self.tags, self.mode, self.tag, self.tag_pos,
                         list(self.attrs), self.attr, self.attr_pos, list(self.value),
                         set(self.fields), set(self.builtins), self.tail, self.in_preview)

    def absorb(self, other: HtmlState) -> None:
        """Merge another branch's pending attribute taint into this one."""
        if self.mode == other.mode and self.attr == other.attr:
            self.fields |= other.fields
            self.builtins |= other.builtins

    # --- events ----------------------------------------------------------------------

    def _start_tag(self, name: str, pos: Pos) -> None:
        self.tag, self.tag_pos, self.attrs = name.lower(), pos, []

    def _end_tag(self, self_closing: bool = False) -> None:
        self.tags.append(TagUse(self.tag, self.tag_pos, tuple(self.attrs)))
        if self.tag == "mj-preview" and not self_closing:
            self.in_preview = True
        self.mode = TEXT

    def _start_attr(self, name: str, pos: Pos) -> None:
        self.attr, self.attr_pos = name.lower(), pos
        self.value, self.fields, self.builtins = [], set(), set()

    def _end_attr(self) -> None:
        value = "".join(self.value)
        self.attrs.append((self.attr, value))
        carries_url = is_url_attr(self.attr) or (self.attr == "style" and "url(" in value.lower())
        if carries_url:
            self.urls.append(UrlUse(self.attr, self.attr_pos, frozenset(self.fields),
                                    frozenset(self.builtins), value, self.tag))
        self.mode = TAG

    # --- input -----------------------------------------------------------------------

    def feed_expr(self, fields: frozenset[str], builtins: frozenset[str], pos: Pos) -> None:
        """An expression's output lands here."""
        if self.mode == BEFOREVALUE:
            self.mode = UQ
        if self.mode in _VALUE_MODES:
            self.value.append(HOLE)
            self.fields |= fields
            self.builtins |= builtins
        elif self.mode in (TAG, AFTERNAME) and fields:
            self.urls.append(UrlUse("", pos, fields, builtins, HOLE, self.tag))
        elif self.mode == TEXT:
            # mail clients turn a URL written as text into a link: it leaks the same way
            m = _TEXT_URL.search(self.tail)
            if m and fields:
                self.urls.append(UrlUse("text", pos, fields, builtins, m.group() + HOLE, ""))
            self.tail = (self.tail + HOLE)[-256:]

    def feed_text(self, text: str, file: str, line: int) -> None:
        i, n = 0, len(text)
        while i < n:
            mode = self.mode
            if mode == TEXT:
                j = text.find("<", i)
                if j < 0:
                    self.tail = (self.tail + text[i:])[-256:]
                    return
                self.tail = ""  # a tag ends any URL written as text
                line += text.count("\n", i, j)
                if text.startswith("<!--", j):
                    self.mode, i = COMMENT, j + 4
                elif text.startswith("</", j):
                    if text.startswith("</mj-preview", j):
                        self.in_preview = False
                    self.mode, i = ENDTAG, j + 2
                else:
                    m = _TAGNAME.match(text, j + 1)
                    if m:
                        self._start_tag(m.group(), Pos(file, line, 1))
                        self.mode, i = TAG, m.end()
                    else:
                        i = j + 1
            elif mode in (COMMENT, ENDTAG):
                end = "-->" if mode == COMMENT else ">"
                j = text.find(end, i)
                if j < 0:
                    return
                line += text.count("\n", i, j)
                self.mode, i = TEXT, j + len(end)
            elif mode in (TAG, AFTERNAME, BEFOREVALUE):
                k = _WS.match(text, i).end()
                line += text.count("\n", i, k)
                i = k
                if i >= n:
                    return
                c = text[i]
                if mode == AFTERNAME and c != "=":
                    self._end_attr()
                    continue
                if mode == AFTERNAME:
                    self.mode, i = BEFOREVALUE, i + 1
                elif mode == BEFOREVALUE:
                    if c in "\"'":
                        self.mode, i = (DQ if c == '"' else SQ), i + 1
                    elif c == ">":
                        self._end_attr()
                    else:
                        self.mode = UQ
                elif c == ">":
                    self._end_tag()
                    i += 1
                elif text.startswith("/>", i):
                    self._end_tag(self_closing=True)
                    i += 2
                elif c == "/":
                    i += 1
                else:
                    m = _ATTRNAME.match(text, i)
                    if m is None:  # a stray quote or '=': skip it
                        i += 1
                        continue
                    self._start_attr(m.group(), Pos(file, line, 1))
                    self.mode, i = AFTERNAME, m.end()
            elif mode in (DQ, SQ):
                j = text.find('"' if mode == DQ else "'", i)
                if j < 0:
                    self.value.append(text[i:])
                    return
                line += text.count("\n", i, j)
                self.value.append(text[i:j])
                self._end_attr()
                i = j + 1
            else:  # UQ
                j = _UNQUOTED.match(text, i).end()
                self.value.append(text[i:j])
                i = j
                if i < n:
                    self._end_attr()
