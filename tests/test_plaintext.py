"""The text part: converting MJML's leaf cells one by one (and keeping their texts) gives
exactly the text the whole-document conversion gave, on every example message and on each
MJML component; shapes that are not wrappers around cells are converted whole."""

from __future__ import annotations

import random
import re

import pytest
from conftest import ROOT
from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from lxml import html as lxml_html

from toolkit import plaintext
from toolkit.loader import load_repo
from toolkit.plaintext import html_to_text
from toolkit.render import RenderError, compile_mjml, render_preview

# --- the pipeline as it was before the per-cell conversion (commit 01d5cba), verbatim ---
_OLD_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=True, display_images=False)
_OLD_LINK = re.compile(r"\[([^\[\]]*)\]\(([^()\s]+)\)")
_OLD_BLANKS = re.compile(r"\n{3,}")
_OLD_PARTS = ("tbody", "thead", "tfoot", "tr", "td", "th")


def _old_link(m: re.Match[str]) -> str:
    label, url = " ".join(m.group(1).split()), m.group(2)
    if url.startswith("#"):
        return label
    if not label or label == url:
        return url
    if url.startswith("mailto:") and label == url[len("mailto:"):]:
        return label
    return f"{label} ({url})"


def old_html_to_text(html: str) -> str:
    if not html.strip():
        return ""
    doc = lxml_html.document_fromstring(html)
    head = doc.find("head")
    if head is not None:
        doc.remove(head)
    for table in list(doc.iter("table")):
        if table.get("role") == "presentation":
            todo = [table]
            while todo:
                el = todo.pop()
                el.tag = "p" if el.tag in ("td", "th") else "div"
                todo.extend(ch for ch in el
                            if isinstance(ch.tag, str) and ch.tag in _OLD_PARTS)
    raw = Inscriptis(doc, _OLD_CONFIG).get_text()
    text = _OLD_LINK.sub(_old_link, "\n".join(line.strip() for line in raw.splitlines()))
    return _OLD_BLANKS.sub("\n\n", text).strip() + "\n"
# -------------------------------------------------------------------------------------------


def _example_messages() -> list[tuple[str, str]]:
    repo, _ = load_repo(ROOT)
    out = []
    for cid, campaign in sorted(repo.campaigns.items()):
        for persona in repo.personas:
            try:
                msg = render_preview(repo, campaign, persona, text=False)
            except RenderError:
                continue
            out.append((f"{cid}/{persona}", msg.html))
    return out


EXAMPLES = _example_messages()


@pytest.fixture
def no_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if html_to_text falls back to converting the whole document."""
    def refuse(doc: object) -> str:
        raise AssertionError("converted whole, not cell by cell")

    monkeypatch.setattr(plaintext, "whole_text", refuse)


def _convert_fresh(html: str) -> str:
    plaintext._cells.clear()
    first = html_to_text(html)
    again = html_to_text(html)  # every cell now from the kept texts
    assert again == first
    return first


def test_examples_cover_every_campaign() -> None:
    repo, _ = load_repo(ROOT)
    assert {name.split("/")[0] for name, _ in EXAMPLES} == set(repo.campaigns)
    assert len(EXAMPLES) >= 2 * len(repo.campaigns)


@pytest.mark.parametrize(("name", "html"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_example_text_is_the_old_text_cell_by_cell(name: str, html: str, no_whole: None) -> None:
    # the same text, character for character, and without converting the whole message
    assert _convert_fresh(html) == old_html_to_text(html)


COMPONENTS = {
    "text": '<mj-text><h1>Title</h1><p>First <b>bold</b> <a href="https://clinic.example.org/a">'
            'a link</a>.</p><p style="margin-bottom:0">Second</p><ul><li>one</li><li>two</li>'
            '</ul></mj-text>',
    "image": '<mj-image src="https://clinic.example.org/logo.png" alt="Logo" '
             'href="https://clinic.example.org/"></mj-image>',
    "button": '<mj-button href="https://clinic.example.org/book">Book a visit</mj-button>',
    "divider": "<mj-divider></mj-divider>",
    "spacer": '<mj-spacer height="20px"></mj-spacer>',
    "table": "<mj-table><tr><th>Day</th><th>Hours</th></tr><tr><td>Mon</td><td>9-5</td></tr>"
             "</mj-table>",
    "social": '<mj-social><mj-social-element name="facebook" href="https://f.example.org/c">'
              "Facebook</mj-social-element></mj-social>",
    "navbar": '<mj-navbar><mj-navbar-link href="https://clinic.example.org/about">About'
              '</mj-navbar-link><mj-navbar-link href="https://clinic.example.org/c">Contact'
              "</mj-navbar-link></mj-navbar>",
    "accordion": "<mj-accordion><mj-accordion-element><mj-accordion-title>Question"
                 "</mj-accordion-title><mj-accordion-text>Answer</mj-accordion-text>"
                 "</mj-accordion-element></mj-accordion>",
    "mailto": '<mj-text>Write to <a href="mailto:care@clinic.example.org">'
              "care@clinic.example.org</a></mj-text>",
    "nbsp and entities": "<mj-text>a&nbsp;&nbsp;b &amp; c&#8202;</mj-text>",
}
SECTIONS = {
    "hero": '<mj-hero background-url="https://clinic.example.org/bg.png" '
            'background-height="200px" background-width="600px"><mj-text>Hero</mj-text>'
            "</mj-hero>",
    "group": "<mj-section><mj-group><mj-column><mj-text>Left</mj-text></mj-column><mj-column>"
             "<mj-text>Right</mj-text></mj-column></mj-group></mj-section>",
    "wrapper": "<mj-wrapper><mj-section><mj-column><mj-text>Wrapped</mj-text></mj-column>"
               "</mj-section></mj-wrapper>",
}
NEXT = "<mj-section><mj-column><mj-text>Next</mj-text></mj-column></mj-section>"


def _mjml(body: str) -> str:
    return compile_mjml(
        "<mjml><mj-head><mj-preview>Hidden preheader</mj-preview>"
        f"<mj-style>.a {{ color: red; }}</mj-style></mj-head><mj-body>{body}</mj-body></mjml>",
        fonts={})


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_component_cell_by_cell(name: str, no_whole: None) -> None:
    html = _mjml(f"<mj-section><mj-column>{COMPONENTS[name]}<mj-text>Next</mj-text>"
                 f"</mj-column></mj-section>")
    text = _convert_fresh(html)
    assert text == old_html_to_text(html)
    assert "Hidden preheader" not in text
    assert text == "Next\n" or text.endswith("\n\nNext\n")


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_section_cell_by_cell(name: str, no_whole: None) -> None:
    html = _mjml(SECTIONS[name] + NEXT)
    assert _convert_fresh(html) == old_html_to_text(html)


def test_links_are_kept_as_label_and_url(no_whole: None) -> None:
    html = _mjml("<mj-section><mj-column>" + COMPONENTS["text"] + COMPONENTS["button"]
                 + COMPONENTS["image"] + COMPONENTS["mailto"] + "</mj-column></mj-section>")
    assert _convert_fresh(html) == (
        "Title\n\nFirst bold a link (https://clinic.example.org/a).\n\nSecond\n\n"
        "* one\n* two\n\n"
        "Book a visit (https://clinic.example.org/book)\n\n"
        "https://clinic.example.org/\n\n"
        "Write to care@clinic.example.org\n")


IRREGULAR = {
    # raw HTML between components is not a cell of a layout table
    "raw in a column": "<mj-section><mj-column><mj-raw><p>Raw</p></mj-raw><mj-text>Text"
                       "</mj-text></mj-column></mj-section>",
    "raw in the body": "<mj-raw><p>Body-level raw</p></mj-raw>" + NEXT,
    "carousel": '<mj-section><mj-column><mj-carousel><mj-carousel-image '
                'src="https://clinic.example.org/1.png" alt="one"/></mj-carousel>'
                "</mj-column></mj-section>",
}


@pytest.mark.parametrize("name", sorted(IRREGULAR))
def test_other_shapes_are_converted_whole(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    html = _mjml(IRREGULAR[name])
    calls = []
    whole = plaintext.whole_text
    monkeypatch.setattr(plaintext, "whole_text", lambda doc: calls.append(1) or whole(doc))
    assert _convert_fresh(html) == old_html_to_text(html)
    assert calls


HAND_WRITTEN = {
    # what a cell alone could not know: text beside the cells, a wrapper's white-space
    # (inherited), a cell's own margin (could take the blank line away)
    "text beside cells": '<table role="presentation"><tr><td>A</td></tr></table>between'
                         '<table role="presentation"><tr><td>B</td></tr></table>',
    "pre wrapper": '<div style="white-space: pre"><table role="presentation"><tr><td>A  \n B'
                   "</td></tr></table></div>",
    "margin on a cell": '<table role="presentation"><tr><td style="margin-top:0">A</td>'
                        '<td style="MARGIN-BOTTOM: 0">B</td></tr></table>',
    "no layout table": "<p>Just <a href='https://clinic.example.org/x'>a page</a></p>",
    # table parts out of their place are not what _unlayout turns into blocks
    "row outside a table": '<div><tr><td>A</td></tr></div><table role="presentation"><tr>'
                           "<td>B</td></tr></table>",
    "cell right in a table": '<table role="presentation"><td>A</td><td>B</td></table>',
    "content table around": '<table><tr><td><table role="presentation"><tr><td>A</td>'
                            "<td>B</td></tr></table></td></tr></table>",
    # style names as inscriptis looks them up: `-webkit-` dropped anywhere, `_` for `-`
    "pre wrapper, underscored": '<div style="white_space: pre"><table role="presentation">'
                                "<tr><td>A  \n B</td></tr></table></div>",
    "margin on a cell, webkit inside": '<table role="presentation"><tr><td style="mar-webkit-'
                                       'gin-bottom:0">A</td><td>B</td></tr></table>',
}


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_hand_written_html_is_converted_whole(name: str, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    html = f"<html><body>{HAND_WRITTEN[name]}</body></html>"
    calls = []
    whole = plaintext.whole_text
    monkeypatch.setattr(plaintext, "whole_text", lambda doc: calls.append(1) or whole(doc))
    assert _convert_fresh(html) == old_html_to_text(html)
    assert calls


def test_hidden_wrappers_and_comments_are_skipped(no_whole: None) -> None:
    html = ('<html><head><style>p{}</style></head><body style="word-spacing:normal">'
            '<div style="Display: None">preheader <table role="presentation"><tr><td>hidden'
            "</td></tr></table></div><!--[if mso]><table><tr><td><![endif]-->"
            '<div><table role="presentation"><tbody><tr><td style="padding:0">Shown</td>'
            '<th>Also</th></tr></tbody></table></div></body></html>')
    assert _convert_fresh(html) == old_html_to_text(html) == "Shown\n\nAlso\n"


@pytest.mark.parametrize("style", ["disp-webkit-lay: none", "DISPLAY : NONE;color:red",
                                   "display:none;display:block"])
def test_hidden_as_inscriptis_reads_the_style(style: str, no_whole: None) -> None:
    html = (f'<html><body><div style="{style}"><table role="presentation"><tr><td>hidden'
            '</td></tr></table></div><table role="presentation"><tr><td>Shown</td></tr>'
            "</table></body></html>")
    assert _convert_fresh(html) == old_html_to_text(html) == "Shown\n"


def test_kept_texts_are_bounded(monkeypatch: pytest.MonkeyPatch, no_whole: None) -> None:
    monkeypatch.setattr(plaintext, "_CACHE_SIZE", 3)
    plaintext._cells.clear()
    for i in range(10):
        html = _mjml(f"<mj-section><mj-column><mj-text>Hello {i}</mj-text></mj-column>"
                     "</mj-section>")
        assert html_to_text(html) == f"Hello {i}\n"
        assert len(plaintext._cells) <= 3


def test_empty_html() -> None:
    assert html_to_text("") == "" == old_html_to_text("")
    assert html_to_text("  \n") == ""


MORE = [
    '<mj-text align="center" padding-left="40px">Centered <i>it</i>\n  spaced   out</mj-text>',
    '<mj-text><div style="display:none">hidden</div>shown<br/>next line</mj-text>',
    "<mj-text><pre>  pre\n   formatted</pre></mj-text>",
    "<mj-text>[bracket] text](x)</mj-text>",
    '<mj-image src="https://clinic.example.org/x.png" alt="Alt"></mj-image>',
    '<mj-button href="https://clinic.example.org/b">https://clinic.example.org/b</mj-button>',
]


def test_mixed_layouts_cell_by_cell(no_whole: None) -> None:
    # components mixed in columns, groups, heroes and wrappers (a fixed pseudo-random draw)
    rng = random.Random(7)
    parts = list(COMPONENTS.values()) + MORE
    for _ in range(40):
        body = ""
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.25:
                body += rng.choice(list(SECTIONS.values()))
                continue
            cols = "".join(
                "<mj-column>" + "".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
                + "</mj-column>" for _ in range(rng.randint(1, 3)))
            body += f"<mj-section>{cols}</mj-section>"
        html = _mjml(body)
        assert html_to_text(html) == old_html_to_text(html), body
