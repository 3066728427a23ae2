"""MJML structure validation, reported at the template's line (rule CFG-001).

mjml-python compiles unknown tags and wrong nesting silently, so we validate the
tree ourselves, with the nesting rules of MJML 4 (each component's allowed
children). To point at the template rather than at the rendered MJML, the check
renders once more with line markers: before rendering, every template line that
starts outside a tag, a comment and a Jinja construct gets an invisible marker
naming its file and line. Markers travel through includes, imports, macros and
loops with the text they belong to, so a tag in the output is traced to the
nearest marker before it. Branches not taken for the persona are not checked.
"""

from __future__ import annotations

import difflib
import re
from bisect import bisect_right
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from jinja2 import FunctionLoader

from toolkit.findings import Finding, Pos
from toolkit.models import Campaign, Repo

RULE = "CFG-001"

_CONTENT = ("mj-accordion", "mj-button", "mj-carousel", "mj-divider", "mj-image", "mj-raw",
            "mj-social", "mj-spacer", "mj-table", "mj-text", "mj-navbar")
CHILDREN: dict[str, tuple[str, ...]] = {
    "mjml": ("mj-head", "mj-body"),
    "mj-head": ("mj-attributes", "mj-breakpoint", "mj-font", "mj-html-attributes", "mj-preview",
                "mj-style", "mj-title", "mj-raw"),
    "mj-body": ("mj-raw", "mj-section", "mj-wrapper", "mj-hero"),
    "mj-wrapper": ("mj-hero", "mj-raw", "mj-section"),
    "mj-section": ("mj-column", "mj-group", "mj-raw"),
    "mj-group": ("mj-column", "mj-raw"),
    "mj-column": _CONTENT,
    "mj-hero": _CONTENT,
    "mj-accordion": ("mj-accordion-element", "mj-raw"),
    "mj-accordion-element": ("mj-accordion-title", "mj-accordion-text", "mj-raw"),
    "mj-carousel": ("mj-carousel-image",),
    "mj-navbar": ("mj-navbar-link", "mj-raw"),
    "mj-social": ("mj-social-element", "mj-raw"),
    "mj-html-attributes": ("mj-selector",),
    "mj-selector": ("mj-html-attribute",),
}
# components whose content is HTML or text, not MJML
ENDING = frozenset({"mj-text", "mj-button", "mj-table", "mj-raw", "mj-navbar-link",
                    "mj-accordion-title", "mj-accordion-text", "mj-social-element", "mj-style",
                    "mj-title", "mj-preview", "mj-html-attribute"})
# components without children
EMPTY = frozenset({"mj-image", "mj-divider", "mj-spacer", "mj-carousel-image", "mj-breakpoint",
                   "mj-font", "mj-all", "mj-class"})
KNOWN = frozenset(CHILDREN) | ENDING | EMPTY | {"mj-attributes"}
# where a misplaced component belongs, for the fix text
_HOME = {child: sorted(p for p, kids in CHILDREN.items() if child in kids) for child in KNOWN}

_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"
_MARK = re.compile(f"{_MARK_OPEN}(\\d+):(\\d+){_MARK_CLOSE}")


def add_markers(source: str, file_index: int) -> str:
    """The template with a marker at the start of every line that begins in plain text."""
    out: list[str] = []
    i, n = 0, len(source)
    line = 1
    state = "text"  # text | tag | comment | jinja
    jinja_end = ""
    resume = "text"  # the state a Jinja construct returns to
    quote = ""
    out.append(f"{_MARK_OPEN}{file_index}:{line}{_MARK_CLOSE}")
    while i < n:
        ch = source[i]
        two = source[i:i + 2]
        if state == "jinja":
            if source.startswith(jinja_end, i):
                state = resume
                out.append(jinja_end)
                i += 2
                continue
        elif state != "comment" and two in ("{{", "{%", "{#"):
            resume = state
            state, jinja_end = "jinja", {"{{": "}}", "{%": "%}", "{#": "#}"}[two]
            out.append(two)
            i += 2
            continue
        elif state == "text":
            if source.startswith("<!--", i):
                state = "comment"
            elif ch == "<" and i + 1 < n and (source[i + 1].isalpha() or source[i + 1] in "/!?"):
                state, quote = "tag", ""
        elif state == "tag":
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == ">":
                state = "text"
        elif state == "comment" and source.startswith("-->", i):
            state = "text"
            out.append("-->")
            i += 3
            continue
        out.append(ch)
        i += 1
        if ch == "\n":
            line += 1
            if state == "text":
                out.append(f"{_MARK_OPEN}{file_index}:{line}{_MARK_CLOSE}")
    return "".join(out)


@dataclass(frozen=True)
class _Marker:
    line: int  # in the rendered text
    column: int  # where the marker ends
    file: int
    template_line: int


class _Origins:
    """Maps a (line, column) of the traced render to a template file and line."""

    def __init__(self, traced: str, files: list[str]):
        self.files = files
        self.markers: list[_Marker] = []
        line_starts = [0] + [m.end() for m in re.finditer("\n", traced)]
        for m in _MARK.finditer(traced):
            ln = bisect_right(line_starts, m.start())
            col = m.end() - line_starts[ln - 1]
            self.markers.append(_Marker(ln, col, int(m.group(1)), int(m.group(2))))
        self.keys = [(mk.line, mk.column) for mk in self.markers]

    def at(self, line: int, column: int) -> Pos:
        i = bisect_right(self.keys, (line, column)) - 1
        if i < 0:
            return Pos(self.files[0], line, column + 1)
        mk = self.markers[i]
        tline = mk.template_line + (line - mk.line)
        tcol = column - mk.column + 1 if line == mk.line else column + 1
        return Pos(self.files[mk.file], tline, max(tcol, 1))


_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr"})


def _unclosed(tag: str) -> str:
    if tag in EMPTY:
        return f"<{tag}> is not closed; end it with />"
    return f"<{tag}> is not closed; add </{tag}>"


class _Checker(HTMLParser):
    def __init__(self, origins: _Origins):
        super().__init__(convert_charrefs=False)
        self.origins = origins
        self.stack: list[tuple[str, Pos]] = []
        self.problems: list[tuple[Pos, str]] = []
        self.ending: str | None = None  # inside a component whose content is HTML
        self.seen_root = False

    def pos(self) -> Pos:
        line, col = self.getpos()
        return self.origins.at(line, col)

    def problem(self, message: str, pos: Pos | None = None) -> None:
        self.problems.append((pos or self.pos(), message))

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._open(tag, empty=False)

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        self._open(tag, empty=True)

    def _open(self, tag: str, *, empty: bool) -> None:
        if self.ending is not None:
            return
        parent = self.stack[-1][0] if self.stack else None
        # a parent we could not check (unknown or misplaced HTML) is skipped, not cascaded
        if parent is None or parent in KNOWN or parent == "mjml":
            self._allowed(tag, parent)
        mjml_tag = tag.startswith("mj-") or tag == "mjml"
        if empty or (not mjml_tag and tag in _VOID):
            return
        if tag in ENDING or not mjml_tag:
            self.ending = tag
        self.stack.append((tag, self.pos()))

    def _allowed(self, tag: str, parent: str | None) -> bool:
        if parent is None:
            if tag != "mjml":
                self.problem(f"<{tag}> outside <mjml>: a template's root element must be <mjml>")
                return False
            if self.seen_root:
                self.problem("a second <mjml> element: a template has exactly one root")
            self.seen_root = True
            return True
        if tag == "mj-include":
            self.problem("<mj-include> is not supported: include partials with "
                         "{% include \"partials/NAME.mjml\" %}")
            return False
        if tag.startswith("mj-") or tag == "mjml":
            if tag not in KNOWN:
                close = difflib.get_close_matches(tag, sorted(KNOWN), n=1)
                hint = f"; did you mean <{close[0]}>?" if close else "; see https://documentation.mjml.io"
                self.problem(f"unknown MJML tag <{tag}>{hint}")
                return False
            if parent == "mj-attributes":
                return True
            if parent in CHILDREN and tag in CHILDREN[parent]:
                return True
            homes = _HOME.get(tag) or []
            where = " or ".join(f"<{h}>" for h in homes) or "its proper parent"
            self.problem(f"<{tag}> cannot be inside <{parent}>; put it inside {where}")
            return False
        if parent == "mj-attributes":
            self.problem(f"<{tag}> cannot be inside <mj-attributes>; only MJML component names, "
                         "<mj-all> and <mj-class> can")
            return False
        self.problem(f"HTML element <{tag}> cannot be inside <{parent}>; wrap HTML in <mj-text> "
                     "or <mj-raw>")
        return False

    def handle_endtag(self, tag: str) -> None:
        if self.ending is not None:
            if tag == self.ending:
                self.ending = None
                if self.stack and self.stack[-1][0] == tag:
                    self.stack.pop()
            return
        if not (tag.startswith("mj-") or tag == "mjml"):
            return
        names = [t for t, _ in self.stack]
        if tag not in names:
            if tag in KNOWN and tag not in EMPTY:
                self.problem(f"</{tag}> closes an element that is not open; remove it")
            return
        while self.stack:
            open_tag, open_pos = self.stack.pop()
            if open_tag == tag:
                return
            self.problem(_unclosed(open_tag), open_pos)

    def handle_data(self, data: str) -> None:
        at = data.find("<")  # HTMLParser leaves a bare '<' (not starting a tag) in the data
        if at >= 0:
            line, col = self.getpos()
            before = data[:at]
            if "\n" in before:
                line, col = line + before.count("\n"), len(before) - before.rfind("\n") - 1
            else:
                col += at
            self.problem("a bare '<' in text does not compile; write &lt;",
                         self.origins.at(line, col))

    def close(self) -> None:
        super().close()
        for open_tag, open_pos in reversed(self.stack):
            self.problem(_unclosed(open_tag), open_pos)
        self.stack.clear()


def validate(traced: str, files: list[str]) -> list[tuple[Pos, str]]:
    """Problems in a traced render, as (template position, message)."""
    checker = _Checker(_Origins(traced, files))
    checker.feed(traced)
    checker.close()
    return checker.problems


def traced_render(repo: Repo, campaign: Campaign, ctx: dict[str, Any]) -> tuple[str, list[str]]:
    """The campaign's MJML for ctx, with line markers; and the marker file table."""
    from toolkit.render import repo_cache

    names = sorted(repo.templates)
    cache = repo_cache(repo)
    env = cache.extra.get("mjml_check.traced_env")
    if env is None:  # one environment per repository: each template is compiled once
        index = {n: i for i, n in enumerate(names)}

        def load(name: str) -> tuple[str, str, Any] | None:
            t = repo.templates.get(name)
            if t is None:
                return None
            return add_markers(t.source, index[name]), t.file, lambda: True

        env = cache.env.overlay(loader=FunctionLoader(load))
        cache.extra["mjml_check.traced_env"] = env
    template = repo.template_for(campaign)
    assert template is not None
    traced = env.get_template(template.name).render(ctx)
    return traced, [repo.templates[n].file for n in names]


def check_mjml(repo: Repo, campaign: Campaign) -> list[Finding]:
    """CFG-001 findings for the MJML structure of a campaign's template, at template lines.

    Renders for the first persona it can (or an empty contact); a template that
    does not render at all is reported elsewhere (analysis, CNT-003, CFG-001 syntax).
    """
    from toolkit.render import repo_cache

    results = repo_cache(repo).extra.setdefault("mjml_check.findings", {})
    if campaign.id not in results:  # lint and build both ask
        results[campaign.id] = _check(repo, campaign)
    return list(results[campaign.id])


def _refused_strings(campaign: Campaign, ctx: dict[str, Any]) -> list[Finding]:
    """Subject and preheader that the sandbox or a limit refuses (toolkit.sandbox)."""
    from toolkit.render import _string_template, _template_error

    out = []
    for key in ("subject", "preheader"):
        try:
            _string_template(getattr(campaign, key) or "").render(ctx)
        except Exception as exc:  # syntax and unknown fields are the analysis' findings
            err = _template_error(exc, campaign.file)
            if err.refused:
                out.append(Finding(rule=err.refused, message=f"{key} cannot render: {err.message}",
                                   pos=campaign.pos(key), campaign=campaign.id))
    return out


def _check(repo: Repo, campaign: Campaign) -> list[Finding]:
    from toolkit.render import (
        RenderError,
        preview_now,
        preview_unsubscribe_url,
        render_mjml,
        template_context,
    )

    if repo.template_for(campaign) is None or repo.config is None:
        return []
    if campaign.sender not in repo.config.senders:
        return []
    contacts = [p.contact for p in repo.personas.values()] or [{}]
    for contact in contacts:
        ctx = template_context(repo, campaign, contact,
                               unsubscribe_url=preview_unsubscribe_url(repo, campaign, contact),
                               view_online_url="https://view.invalid/preview",
                               now=preview_now(campaign))
        refused = _refused_strings(campaign, ctx)
        try:
            plain = render_mjml(repo, campaign, ctx)
        except RenderError as exc:
            if exc.refused:  # the sandbox or a limit: no contact can make it render
                refused.append(Finding(rule=exc.refused, message=f"the template cannot render: "
                                       f"{exc.message}", pos=Pos(exc.file, exc.line),
                                       campaign=campaign.id))
            if refused:
                return refused
            continue  # e.g. a field this persona lacks: the analysis and lint report why
        except Exception:  # cannot render: the analysis and lint report why
            continue
        if refused:
            return refused
        template = repo.template_for(campaign)
        problems = validate(plain, [template.file if template else campaign.file])
        if not problems:
            return []  # the common case: no second, traced render needed
        try:
            traced, files = traced_render(repo, campaign, ctx)
            problems = validate(traced, files)
        except Exception:  # keep the untraced positions rather than lose the findings
            pass
        seen: set[tuple[Pos, str]] = set()
        out = []
        for pos, message in problems:
            if (pos, message) not in seen:
                seen.add((pos, message))
                out.append(Finding(rule=RULE, message=f"MJML: {message}", pos=pos,
                                   campaign=campaign.id))
        return out
    return []
