"""The text part with the recipient's values swapped out of a cell's text (toolkit.plaintext
swap_values): the same text as the whole-document conversion, wherever a value stands,
and each personalized cell converted once for all recipients."""

from __future__ import annotations

import pytest

from toolkit import plaintext
from toolkit.plaintext import html_to_text, swap_values, whole_text
from toolkit.render import compile_mjml

# each {n} is the recipient's value, {m} a second one
CELLS = [
    "<mj-text>Dear {n}, hello.</mj-text>",
    "<mj-text>Dear {n}, this is for {n} and {m}.</mj-text>",
    '<mj-text><a href="https://example.org/{n}">{n}</a></mj-text>',
    '<mj-text><a href="mailto:{n}">{n}</a> and {n}</mj-text>',
    "<mj-text>[{n}](https://example.org/{n}) {n}</mj-text>",
    '<mj-text><span style="display:none">{n}</span>{n} shown</mj-text>',
    '<mj-text><span style="text-transform:uppercase">{n}</span></mj-text>',
    '<mj-text><img alt="{n}" src="https://example.org/i.png"> {n}</mj-text>',
    "<mj-text><b>{n}</b>{m}<i>{n}</i></mj-text>",
    "<mj-text>q{n}q jj{m} {n}zz</mj-text>",
    "<mj-text>&amp; {n} &lt;{m}&gt;</mj-text>",
    "<mj-text><pre>  {n}   {m}  </pre></mj-text>",
    "<mj-table><tr><td>{n}</td><td>{m}</td></tr><tr><td>1</td><td>22</td></tr></mj-table>",
    '<mj-button href="https://example.org/?a={n}">Book, {n}</mj-button>',
    "<mj-text><ul><li>{n}</li><li>{m}</li></ul></mj-text>",
    "<mj-text><!-- {n} --> {n}</mj-text>",
    '<mj-text><p style="white-space:pre">{n}  {m}</p></mj-text>',
]
# values that are also markup, entities, CSS, placeholders' letters, or parts of each other
NAMES = ["Pat", "Pat12", "Ann", "Annual", "amp", "left", "none", "div", "span", "style",
         "mailto", "https", "example", "13px", "Arial", "Dear", "hello", "qqq", "Jojo", "ZZZ",
         "abc123", "font", "color", "x", "xx", "Max", "padding", "Zoë", "José", "Łukasz", "李雷雷",
         "Ωmega", "²³⁴", "ß1ß", "İstanbul", "ﬁne", "Ⅻiv"]


def _html(cell: str, n: str, m: str) -> str:
    body = cell.format(n=n, m=m)
    return compile_mjml(f"<mjml><mj-body><mj-section><mj-column>{body}"
                        "<mj-text>The same for everyone.</mj-text>"
                        "</mj-column></mj-section></mj-body></mjml>", fonts={})


@pytest.mark.parametrize("cell", CELLS)
def test_the_text_is_the_whole_conversion_wherever_the_values_stand(cell: str) -> None:
    plaintext._cells.clear()
    for i, n in enumerate(NAMES):
        for m in (NAMES[-1 - i], "Sam", n):
            html = _html(cell, n, m)
            expected = whole_text(html)
            values = swap_values({"first_name": n, "last_name": m, "id": "c-1", "a": 1}.values())
            assert html_to_text(html, values) == expected, (n, m)
            assert html_to_text(html, values) == expected, (n, m)  # from the kept texts


def test_values_worth_swapping() -> None:
    assert swap_values(["Pat12", "Al", "Pat", "e\u0301x", "c-0001", 42, None, "Jojo", "Pat12",
                        "Annabel", "Zoë"]) == ("Annabel", "Pat12", "Pat", "Zoë")  # no qjzwkv


def test_a_personalized_cell_is_converted_once_for_all_recipients(
        monkeypatch: pytest.MonkeyPatch) -> None:
    converted = []
    real = plaintext._convert
    monkeypatch.setattr(plaintext, "_convert", lambda tree: converted.append(1) or real(tree))
    plaintext._cells.clear()
    for i in range(40):
        name = f"Pat{i % 10}"  # same length
        html = _html("<mj-text>Dear {n}, hello.</mj-text>" * 3, name, "")
        assert html_to_text(html, swap_values([name])) == whole_text(html)
    assert len(converted) == 2  # the personalized cell, the shared one

    converted.clear()
    plaintext._cells.clear()
    for i in range(10):
        html = _html("<mj-text>Dear {n}, hello.</mj-text>", f"Pat{i}", "")
        html_to_text(html)  # without the values: each recipient's cell converted
    assert len(converted) == 11
