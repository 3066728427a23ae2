"""Rendering: the mjml-python fixes, MJML validation at template lines, the text part."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_campaign

from toolkit.loader import load_repo
from toolkit.mjml_check import check_mjml
from toolkit.render import (
    RenderedMessage,
    RenderError,
    compile_mjml,
    normalize_attributes,
    render_campaign,
    render_preview,
)
from toolkit.site.collect import choose_personas

SCAFFOLD = ROOT / "toolkit" / "scaffold"
CID = "appointment-reminder"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(html)
    return p.tags


def example_renders() -> list[tuple[str, str, RenderedMessage]]:
    repo, _ = load_repo(ROOT)
    out = []
    for cid, camp in sorted(repo.campaigns.items()):
        from toolkit.render import preview_now

        names, _ = choose_personas(repo, camp, preview_now(camp))
        for name in names:
            out.append((cid, name, render_preview(repo, camp, name)))
    return out


EXAMPLES = example_renders()


def test_every_example_campaign_renders() -> None:
    repo, _ = load_repo(ROOT)
    assert sorted({cid for cid, _, _ in EXAMPLES}) == sorted(repo.campaigns)


@pytest.mark.parametrize(("cid", "persona", "msg"), EXAMPLES,
                         ids=[f"{c}-{p}" for c, p, _ in EXAMPLES])
def test_example_html_is_faithful(cid: str, persona: str, msg: RenderedMessage) -> None:
    found = tags(msg.html)
    for tag, attrs in found:
        style = attrs.get("style") or ""
        assert "\\n" not in style, f"literal \\n in a style attribute of <{tag}>"
        if tag == "img":
            assert attrs.get("alt") is not None, "an image without alt"
    assert "fonts.googleapis.com" not in msg.html
    # where the template asks for inlined CSS, every element of those classes got a style
    for css in re.findall(r'<mj-style[^>]*inline="inline"[^>]*>(.*?)</mj-style>', msg.mjml, re.S):
        for cls in re.findall(r"\.([A-Za-z][\w-]*)\s*[{,]", css):
            users = [a for _, a in found if cls in (a.get("class") or "").split()]
            assert all(a.get("style") for a in users), f"class {cls} not inlined"


@pytest.fixture
def repo_root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(SCAFFOLD, root)
    return root


def write_template(root: Path, body: str, head: str = "") -> None:
    (root / "templates" / "appointment-reminder.mjml").write_text(
        f'<mjml lang="en">\n  <mj-head>\n{head}  </mj-head>\n'
        f'  <mj-body>\n{body}  </mj-body>\n</mjml>\n', encoding="utf-8")


def render(root: Path) -> RenderedMessage:
    repo, _ = load_repo(root)
    return render_preview(repo, repo.campaigns[CID], "alex")


def test_line_break_in_attribute_values_keeps_the_style(repo_root: Path) -> None:
    write_template(repo_root, """\
    <mj-section padding="10px
        20px">
      <mj-column>
        <mj-text><a href="https://clinic.example.org/x" style="color:#ff0000;
          font-weight:bold">Book</a></mj-text>
      </mj-column>
    </mj-section>
""")
    html = render(repo_root).html
    assert 'style="color:#ff0000; font-weight:bold"' in html
    assert "padding:10px 20px;" in html
    assert "\\n" not in html


def test_normalize_attributes_leaves_text_alone() -> None:
    src = '<mj-text css-class="a\n  b">line one\nline two</mj-text>'
    assert normalize_attributes(src) == '<mj-text css-class="a b">line one\nline two</mj-text>'


def test_inline_mj_style_is_inlined(repo_root: Path) -> None:
    write_template(repo_root, head="""\
    <mj-style inline="inline">.alert { color: #b42318; font-weight: bold; }</mj-style>
    <mj-style>.kept { color: blue; }</mj-style>
""", body="""\
    <mj-section><mj-column>
      <mj-text><span class="alert">Important</span> <span class="kept">x</span></mj-text>
    </mj-column></mj-section>
""")
    html = render(repo_root).html
    span = next(a for t, a in tags(html) if t == "span" and a.get("class") == "alert")
    assert span["style"] == "color: #b42318;font-weight: bold;"
    assert ".alert" not in html  # taken out of the head, as mjml does
    assert ".kept { color: blue; }" in html  # a normal mj-style stays a style block


def test_no_remote_stylesheet_is_fetched_when_inlining() -> None:
    src = ('<mjml><mj-head><mj-style inline="inline">.a{color:red}</mj-style>'
           '<mj-raw><link rel="stylesheet" href="https://127.0.0.1:9/x.css"></mj-raw></mj-head>'
           '<mj-body><mj-section><mj-column><mj-text css-class="a">x</mj-text></mj-column>'
           '</mj-section></mj-body></mjml>')
    html = compile_mjml(src, fonts={})  # would raise if css-inline tried to load the link
    assert "color: red" in html


def test_fonts_are_the_organizations_own(repo_root: Path) -> None:
    assert "googleapis" not in render(repo_root).html
    cfg = yaml.safe_load((repo_root / "toolkit.yaml").read_text(encoding="utf-8"))
    cfg["organization"]["fonts"] = {"Clinic Sans": "https://clinic.example.org/fonts/sans.css"}
    (repo_root / "toolkit.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    write_template(repo_root, """\
    <mj-section><mj-column>
      <mj-text font-family="Clinic Sans, Arial">x</mj-text>
    </mj-column></mj-section>
""")
    html = render(repo_root).html
    assert "https://clinic.example.org/fonts/sans.css" in html
    assert "googleapis" not in html


def test_preheader_becomes_the_preview(repo_root: Path) -> None:
    msg = render(repo_root)
    assert msg.preheader == "Details of your next appointment"
    assert "Details of your next appointment" in msg.html
    assert "Details of your next appointment" not in msg.text  # hidden, as in mail clients


def test_text_part_keeps_links(repo_root: Path) -> None:
    write_template(repo_root, """\
    <mj-section><mj-column>
      <mj-text>Please <a href="https://clinic.example.org/book">book a visit</a> soon.</mj-text>
      <mj-button href="https://clinic.example.org/go">Go now</mj-button>
      <mj-text><a href="https://clinic.example.org/raw">https://clinic.example.org/raw</a></mj-text>
    </mj-column></mj-section>
""")
    text = render(repo_root).text
    assert "Please book a visit (https://clinic.example.org/book) soon." in text
    assert "Go now (https://clinic.example.org/go)" in text
    assert "\nhttps://clinic.example.org/raw\n" in text
    assert not any(line != line.strip() for line in text.splitlines())


def test_example_text_part_keeps_unsubscribe_link() -> None:
    repo, _ = load_repo(ROOT)
    msg = render_preview(repo, repo.campaigns["spring-newsletter"], "bianca-newsletter")
    assert re.search(r"Unsubscribe \(https://valleyhealth\.example\.org/unsubscribe/v1\.[^)]+\)",
                     msg.text)


BROKEN = """\
    <mj-column>
      <mj-text>Hello</mj-text>
    </mj-column>
    <mj-section>
      <mj-column>
        <mj-colum>x</mj-colum>
        <mj-text>a < b</mj-text>
        <div>hi</div>
        <mj-image
          src="https://clinic.example.org/a.png"
          alt="x">
      </mj-column>
    </mj-section>
    {% include "partials/footer.mjml" %}
"""


def test_mjml_structure_errors_at_template_lines(repo_root: Path) -> None:
    write_template(repo_root, BROKEN)
    (repo_root / "templates" / "partials" / "footer.mjml").write_text(
        "<mj-section>\n  <mj-text>bad</mj-text>\n</mj-section>\n", encoding="utf-8")
    repo, _ = load_repo(repo_root)
    got = [(str(f.pos), f.message) for f in check_mjml(repo, repo.campaigns[CID])]
    t = "templates/appointment-reminder.mjml"
    assert got == [
        (f"{t}:5:5", "MJML: <mj-column> cannot be inside <mj-body>; "
                     "put it inside <mj-group> or <mj-section>"),
        (f"{t}:10:9", "MJML: unknown MJML tag <mj-colum>; did you mean <mj-column>?"),
        (f"{t}:11:20", "MJML: a bare '<' in text does not compile; write &lt;"),
        (f"{t}:12:9", "MJML: HTML element <div> cannot be inside <mj-column>; "
                      "wrap HTML in <mj-text> or <mj-raw>"),
        (f"{t}:13:9", "MJML: <mj-image> is not closed; end it with />"),
        ("templates/partials/footer.mjml:2:3",
         "MJML: <mj-text> cannot be inside <mj-section>; put it inside <mj-column> or <mj-hero>"),
    ]
    assert {f.rule for f in check_mjml(repo, repo.campaigns[CID])} == {"CFG-001"}


def test_mjml_lines_survive_loops_and_multiline_jinja(repo_root: Path) -> None:
    write_template(repo_root, """\
    {# a comment
       over two lines #}
    <mj-section>
      {% for i in [1, 2] %}
      <mj-column>{{ i }}
      </mj-column>
      <mj-text>{{
        contact.first_name }}</mj-text>
      {% endfor %}
    </mj-section>
""")
    repo, _ = load_repo(repo_root)
    got = {(str(f.pos), f.message) for f in check_mjml(repo, repo.campaigns[CID])}
    assert got == {("templates/appointment-reminder.mjml:11:7",
                    "MJML: <mj-text> cannot be inside <mj-section>; "
                    "put it inside <mj-column> or <mj-hero>")}


def test_example_templates_have_valid_mjml() -> None:
    repo, _ = load_repo(ROOT)
    for camp in repo.campaigns.values():
        assert check_mjml(repo, camp) == []


def test_undefined_variable_is_a_render_error_at_its_line(repo_root: Path) -> None:
    write_template(repo_root, """\
    <mj-section><mj-column>
      <mj-text>{{ contact.first_name }} {{ contact.no_such_field }}</mj-text>
    </mj-column></mj-section>
""")
    repo, _ = load_repo(repo_root)
    with pytest.raises(RenderError) as exc:
        render_campaign(repo, repo.campaigns[CID], {"first_name": "Zed"})
    assert (exc.value.file, exc.value.line) == ("templates/appointment-reminder.mjml", 6)
    assert exc.value.message == (
        "contact.no_such_field is unknown (null or absent) for this recipient; guard it with "
        "{% if contact.no_such_field is defined %} or {{ contact.no_such_field | default(...) }}")
    assert "Zed" not in str(exc.value)


def test_renders_the_loaded_templates_not_the_disk(repo_root: Path) -> None:
    repo, _ = load_repo(repo_root)
    (repo_root / "templates" / "appointment-reminder.mjml").write_text("changed", encoding="utf-8")
    assert "Hello Alex" in render_preview(repo, repo.campaigns[CID], "alex").html


def test_cli_render_formats(repo_root: Path) -> None:
    html = run_campaign("render", CID, "--persona", "alex", root=repo_root)
    assert html.returncode == 0, html.stderr
    assert html.stdout.startswith("<!doctype html>")
    text = run_campaign("render", CID, "--persona", "alex", "--format", "text", root=repo_root)
    assert text.stdout.startswith("Hello Alex,\n")


def test_cli_render_unknown_campaign_and_persona(repo_root: Path) -> None:
    res = run_campaign("render", "nope", "--persona", "alex", root=repo_root)
    assert res.returncode == 2
    assert res.stderr == ("Error: unknown campaign 'nope' (known: appointment-reminder)\n"
                          "  fix: pass the name of a folder under campaigns/\n")
    res = run_campaign("render", CID, "--persona", "zed", root=repo_root)
    assert res.returncode == 2
    assert res.stderr == ("Error: unknown persona 'zed' (known: alex)\n"
                          "  fix: pass a persona name from fixtures/personas.yaml\n")


def test_cli_render_reports_template_errors_with_line(repo_root: Path) -> None:
    write_template(repo_root, "    <mj-section><mj-column><mj-text>{{ contact.nope }}</mj-text>"
                              "</mj-column></mj-section>\n")
    res = run_campaign("render", CID, "--persona", "alex", root=repo_root)
    assert res.returncode == 2
    assert res.stderr.startswith("Error: templates/appointment-reminder.mjml:5: "
                                 "contact.nope is unknown (null or absent) for this "
                                 "recipient; guard it with {% if contact.nope is defined %} "
                                 "or {{ contact.nope | default(...) }}\n")
    assert "Traceback" not in res.stderr


def test_text_part_has_paragraphs_and_keeps_content_tables(repo_root: Path) -> None:
    write_template(repo_root, """\
    <mj-section><mj-column>
      <mj-text>First block.</mj-text>
      <mj-text>Second block.</mj-text>
      <mj-table><tr><td>Monday</td><td>9:00</td></tr><tr><td>Friday</td><td>14:00</td></tr></mj-table>
    </mj-column></mj-section>
""")
    text = render(repo_root).text
    assert "First block.\n\nSecond block.\n" in text
    assert "Monday  9:00\nFriday  14:00" in text
