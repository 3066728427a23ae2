"""Template analysis (toolkit/analysis): field uses, URL taint, and what it refuses to guess."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_helpers import CAMPAIGN_FILE, TEMPLATE_FILE, make_repo

from toolkit.analysis import CANNOT_FOLLOW, HOLE, CampaignAnalysis, FieldUse, analyze_campaign
from toolkit.findings import Pos
from toolkit.loader import load_repo

HEAD = '<mjml lang="en"><mj-body>\n'
TAIL = "</mj-body></mjml>\n"


def analyze(tmp_path: Path, body: str, partials: dict[str, str] | None = None,
            subject: str | None = None) -> CampaignAnalysis:
    """The scaffold campaign with `body` as its template (HEAD is line 1, body starts at 2)."""
    edits: dict[str, str] = {TEMPLATE_FILE: HEAD + body + TAIL}
    for name, text in (partials or {}).items():
        edits[f"templates/partials/{name}"] = text
    if subject is not None:
        edits[CAMPAIGN_FILE] = lambda old: old.replace(  # type: ignore[assignment]
            'subject: "Your upcoming visit at {{ organization.name }}"', f"subject: {subject}")
    root = make_repo(tmp_path, edits)
    repo, _ = load_repo(root)
    return analyze_campaign(repo, repo.campaigns["appointment-reminder"])


def uses(a: CampaignAnalysis) -> set[tuple[str, str, int]]:
    return {(u.field, u.pos.file, u.pos.line) for u in a.field_uses}


def problems(a: CampaignAnalysis) -> list[tuple[str, str, int, str]]:
    return [(p.rule, p.file, p.line, p.message) for p in a.problems]


MACROS = ('{% macro link(url, label) %}<a href="{{ url }}">{{ label }}</a>{% endmacro %}\n'
          "{% macro hello(name) %}Hello {{ name }}{% endmacro %}\n")


# --- what it follows --------------------------------------------------------------------


def test_scaffold_uses_and_files(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    repo, _ = load_repo(root)
    a = analyze_campaign(repo, repo.campaigns["appointment-reminder"])
    assert a.field_uses == (
        FieldUse("first_name", Pos(TEMPLATE_FILE, 8, 27), "template"),
        FieldUse("next_appointment", Pos(TEMPLATE_FILE, 9, 57), "template"),
    )
    assert a.fields_used == {"first_name", "next_appointment"}
    assert a.builtins_used == {"organization", "sender"}
    assert a.files == (TEMPLATE_FILE, "templates/partials/footer.mjml")
    assert a.problems == ()


def test_field_in_an_included_partial_is_found_at_its_line(tmp_path: Path) -> None:
    a = analyze(tmp_path, '{% include "partials/greet.mjml" %}\n',
                {"greet.mjml": "<mj-text>\n  {{ contact.language }}\n</mj-text>\n"})
    greet = "templates/partials/greet.mjml"
    assert a.field_uses == (FieldUse("language", Pos(greet, 2, 6), "template"),)
    assert "templates/partials/greet.mjml" in a.files


def test_macro_arguments_carry_taint_into_the_url(tmp_path: Path) -> None:
    a = analyze(tmp_path, '{% import "partials/macros.mjml" as m %}\n'
                '{{ m.link("https://clinic.example.org/?n=" ~ contact.first_name, "go") }}\n'
                "{{ m.hello(contact.age) }}\n", {"macros.mjml": MACROS})
    assert uses(a) == {("first_name", TEMPLATE_FILE, 3), ("age", TEMPLATE_FILE, 4)}
    [url] = a.url_uses
    assert (url.attr, url.pos.file, url.pos.line, url.fields) == (
        "href", "templates/partials/macros.mjml", 1, {"first_name"})
    assert a.files == (TEMPLATE_FILE, "templates/partials/macros.mjml")


def test_from_import_with_alias(tmp_path: Path) -> None:
    a = analyze(tmp_path, '{% from "partials/macros.mjml" import link as l %}\n'
                '{{ l(contact.language, "x") }}\n', {"macros.mjml": MACROS})
    assert [u.fields for u in a.url_uses] == [{"language"}]


def test_from_import_of_a_missing_macro(tmp_path: Path) -> None:
    a = analyze(tmp_path, '{% from "partials/macros.mjml" import nope %}\n',
                {"macros.mjml": MACROS})
    assert problems(a) == [("CFG-002", TEMPLATE_FILE, 2,
                            "'templates/partials/macros.mjml' defines no 'nope'; "
                            "fix the name or add the macro")]


def test_set_alias_for_loop_and_with_carry_taint(tmp_path: Path) -> None:
    a = analyze(tmp_path, "{% set n = contact.first_name | upper %}\n"
                '<a href="https://clinic.example.org/{{ n }}">x</a>\n'
                "{% for s in contact.care_status %}<img alt='' src=\"{{ s }}\">{% endfor %}\n"
                "{% with d = contact.next_appointment %}"
                '<a href="/x?d={{ d }}">d</a>{% endwith %}\n')
    assert [(u.attr, u.pos.line, u.fields) for u in a.url_uses] == [
        ("href", 3, {"first_name"}), ("src", 4, {"care_status"}), ("href", 5, {"next_appointment"})]


def test_set_block_and_namespace_carry_taint(tmp_path: Path) -> None:
    a = analyze(tmp_path, "{% set link %}https://clinic.example.org/{{ contact.age }}{% endset %}\n"
                "{% set ns = namespace(v='') %}{% set ns.v = contact.language %}\n"
                '<a href="{{ link }}">a</a><a href="{{ ns.v }}">b</a>\n')
    # the set block writes a URL as text (flagged where it is built), then the hrefs
    assert [(u.attr, u.fields) for u in a.url_uses] == [
        ("text", {"age"}), ("href", {"age"}), ("href", {"language"})]


def test_call_block_caller_content_is_walked(tmp_path: Path) -> None:
    a = analyze(tmp_path, '{% macro box() %}<a href="{{ caller() }}">x</a>{% endmacro %}\n'
                "{% call box() %}{{ contact.first_name }}{% endcall %}\n")
    assert uses(a) == {("first_name", TEMPLATE_FILE, 3)}
    assert [u.fields for u in a.url_uses] == [{"first_name"}]


def test_extends_fills_blocks_and_follows_super(tmp_path: Path) -> None:
    base = (HEAD + "{% block body %}{{ contact.age }}{% endblock %}\n"
            '<a href="https://clinic.example.org/">x</a>\n' + TAIL)
    root = make_repo(tmp_path, {
        "templates/base.mjml": base,
        TEMPLATE_FILE: '{% extends "base.mjml" %}\n'
                       "{% block body %}{{ super() }} {{ contact.first_name }}{% endblock %}\n",
    })
    repo, _ = load_repo(root)
    a = analyze_campaign(repo, repo.campaigns["appointment-reminder"])
    assert uses(a) == {("age", "templates/base.mjml", 2), ("first_name", TEMPLATE_FILE, 2)}
    assert [u.pos.file for u in a.url_uses] == ["templates/base.mjml"]
    assert a.files == (TEMPLATE_FILE, "templates/base.mjml")


def test_uncalled_macros_still_count_as_content(tmp_path: Path) -> None:
    a = analyze(tmp_path, "{% macro unused() %}{{ contact.age }}{% endmacro %}\n")
    assert uses(a) == {("age", TEMPLATE_FILE, 2)}


def test_if_branches_both_flow_into_the_attribute(tmp_path: Path) -> None:
    a = analyze(tmp_path, '<a href="https://clinic.example.org/?'
                "{% if contact.age %}a={{ contact.age }}"
                "{% else %}l={{ contact.language }}{% endif %}\">x</a>\n")
    [url] = a.url_uses
    assert url.fields == {"age", "language"}
    assert url.value == f"https://clinic.example.org/?a={HOLE}"


def test_urls_static_builtin_and_tag_context(tmp_path: Path) -> None:
    a = analyze(tmp_path, '<mj-image alt="" src="https://clinic.example.org/a.png"\n'
                '  href="{{ unsubscribe_url }}"></mj-image>\n'
                '<mj-section background-url="https://clinic.example.org/bg.png"></mj-section>\n'
                '<div style="background:url(https://clinic.example.org/b.png)"></div>\n'
                "<a {{ contact.first_name }}>x</a>\n")
    got = [(u.attr, u.pos.line, u.value, u.fields, u.builtins) for u in a.url_uses]
    assert got == [
        ("src", 2, "https://clinic.example.org/a.png", frozenset(), frozenset()),
        ("href", 3, HOLE, frozenset(), {"unsubscribe_url"}),
        ("background-url", 4, "https://clinic.example.org/bg.png", frozenset(), frozenset()),
        ("style", 5, "background:url(https://clinic.example.org/b.png)", frozenset(), frozenset()),
        ("", 6, HOLE, {"first_name"}, frozenset()),
    ]
    tags = [(t.name, t.pos.line) for t in a.tags][:3]
    assert tags == [("mjml", 1), ("mj-body", 1), ("mj-image", 2)]


def test_constant_subscript_is_a_field(tmp_path: Path) -> None:
    a = analyze(tmp_path, "{{ contact['age'] }}\n")
    assert uses(a) == {("age", TEMPLATE_FILE, 2)}
    assert a.problems == ()


def test_comments_are_not_content(tmp_path: Path) -> None:
    a = analyze(tmp_path, "{# {{ contact.age }} {{ nonsense }} {% set c = contact %} #}\n"
                "{#\n{{ contact.language }}\n#}\n")
    assert a.field_uses == ()
    assert a.problems == ()


def test_template_local_names_are_known(tmp_path: Path) -> None:
    a = analyze(tmp_path, "{% for i in range(3) %}{{ loop.index }}{{ i }}{% endfor %}\n"
                "{% macro m(x, y=1) %}{{ x }}{{ y }}{{ varargs }}{% endmacro %}{{ m(1) }}\n"
                "{{ campaign.title }} {{ now }} {{ view_online_url }}\n")
    assert a.problems == ()
    # the scaffold's subject names organization
    assert a.builtins_used == {"campaign", "now", "view_online_url", "organization"}


def test_subject_and_preheader_positions(tmp_path: Path) -> None:
    a = analyze(tmp_path, "", subject='"Hi {{ contact.first_name }}"')
    assert [(u.field, u.pos, u.part) for u in a.field_uses] == [
        ("first_name", Pos(CAMPAIGN_FILE, 4, 10), "subject")]


# --- what it refuses ----------------------------------------------------------------------

UNFOLLOWABLE = [
    "{% set c = contact %}",
    '{% import "partials/macros.mjml" as m %}{{ m.hello(contact) }}',
    "{{ contact | attr('age') }}",
    "{% set k = 'age' %}{{ contact[k] }}",
    "{{ contact.items() }}",
    "{{ contact.get('age') }}",
    "{% for k in contact %}{{ k }}{% endfor %}",
    "{{ contact | tojson }}",
]


@pytest.mark.parametrize("line", UNFOLLOWABLE)
def test_unfollowable_uses_are_reported(tmp_path: Path, line: str) -> None:
    a = analyze(tmp_path, "\n" + line + "\n", {"macros.mjml": MACROS})
    assert ("CNT-003", TEMPLATE_FILE, 3, CANNOT_FOLLOW) in problems(a)


def test_unknown_name_and_unknown_field(tmp_path: Path) -> None:
    a = analyze(tmp_path, "{{ patient }}\n{{ contact.ssn }}\n")
    assert problems(a) == [
        ("CNT-003", TEMPLATE_FILE, 2, "unknown name 'patient': templates reach contact data as "
         "contact.<field>; other names are sender, organization, campaign, unsubscribe_url, "
         "view_online_url, now"),
        ("CNT-003", TEMPLATE_FILE, 3, "'ssn' is not a field in policy/fields.yaml; declare it "
         "there or fix the name"),
    ]
    assert a.field_uses == ()


def test_computed_include_name(tmp_path: Path) -> None:
    a = analyze(tmp_path, "{% set p = 'partials/footer.mjml' %}\n{% include p %}\n")
    assert problems(a) == [("CNT-003", TEMPLATE_FILE, 3, "cannot follow a computed template name; "
                            "name the partial with a constant string")]


def test_missing_partial_and_ignore_missing(tmp_path: Path) -> None:
    a = analyze(tmp_path, '{% include "partials/nope.mjml" %}\n'
                '{% include "partials/gone.mjml" ignore missing %}\n')
    assert problems(a) == [("CFG-002", TEMPLATE_FILE, 2, "partial 'partials/nope.mjml' not found "
                            "under templates/; create it or fix the name")]
    assert not a.complete


def test_syntax_error_in_a_partial_points_at_the_partial(tmp_path: Path) -> None:
    a = analyze(tmp_path, '{% include "partials/bad.mjml" %}\n', {"bad.mjml": "ok\n{% if x %}\n"})
    [p] = a.problems
    assert (p.rule, p.file, p.line) == ("CFG-001", "templates/partials/bad.mjml", 2)
    assert p.message.startswith("template syntax: ")
    assert p.message.endswith("; fix the Jinja syntax")


def test_syntax_error_in_the_subject(tmp_path: Path) -> None:
    a = analyze(tmp_path, "", subject='"Hi {{ contact.first_name "')
    [p] = a.problems
    assert (p.rule, p.file, p.line) == ("CFG-001", CAMPAIGN_FILE, 4)
    assert p.message.startswith("subject: template syntax: ")


# --- caching ---------------------------------------------------------------------------------


def test_cache_follows_partial_edits(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    repo, _ = load_repo(root)
    camp = repo.campaigns["appointment-reminder"]
    first = analyze_campaign(repo, camp)
    # the template's walk is cached: the same tuples come back
    assert analyze_campaign(repo, camp).tags is first.tags
    footer = root / "templates/partials/footer.mjml"
    footer.write_text(footer.read_text() + "{{ contact.language }}\n")
    repo2, _ = load_repo(root)
    again = analyze_campaign(repo2, repo2.campaigns["appointment-reminder"])
    assert "language" in again.fields_used


def test_include_cycles_are_reported_not_followed(tmp_path: Path) -> None:
    a = analyze(tmp_path, '{% include "partials/a.mjml" %}\n',
                {"a.mjml": '{{ contact.age }}{% include "partials/b.mjml" %}\n',
                 "b.mjml": '{% include "partials/a.mjml" %}\n'})
    assert uses(a) == {("age", "templates/partials/a.mjml", 1)}
    assert [(p.rule, p.file, p.line) for p in a.problems] == [
        ("CFG-002", "templates/partials/b.mjml", 1)]
    assert "includes itself" in a.problems[0].message


def test_a_url_written_as_text_is_a_url(tmp_path: Path) -> None:
    # mail clients link it, so contact data in it leaks like in an href
    a = analyze(tmp_path, "<mj-text>See https://clinic.example.org/r/{{ contact.first_name }}\n"
                "or <b>{{ contact.age }}</b> https://x.example.org/ {{ contact.language }}"
                "</mj-text>\n")
    assert [(u.attr, u.pos.line, u.fields, u.value) for u in a.url_uses] == [
        ("text", 2, {"first_name"}, f"https://clinic.example.org/r/{HOLE}")]


def test_mj_preview_text_is_the_preheader(tmp_path: Path) -> None:
    a = analyze(tmp_path, "<mj-head><mj-preview>Hi {{ contact.first_name }}</mj-preview>"
                "</mj-head>\n{{ contact.age }}\n")
    assert [(u.field, u.part) for u in a.field_uses] == [
        ("first_name", "preheader"), ("age", "template")]


def test_a_template_compiled_for_rendering_is_still_analysed_as_written(tmp_path: Path) -> None:
    """toolkit.render compiles from the tree the analysis parsed, and Jinja's optimizer
    folds constants in that tree in place (`"first" ~ "_name"` becomes "first_name"): an
    analysis after a render must still see the computed key and report it."""
    from toolkit import analysis
    from toolkit.render import _compiled

    body = '{{ contact["first" ~ "_name"] }}\n'
    root = make_repo(tmp_path, {TEMPLATE_FILE: HEAD + body + TAIL})
    repo, _ = load_repo(root)
    camp = repo.campaigns["appointment-reminder"]
    before = problems(analyze_campaign(repo, camp))
    assert [p[0] for p in before] == ["CNT-003"]
    _compiled(repo, camp)  # compiles the template from the analysis' tree
    for cache in (analysis._CACHE, analysis._CHECKED, analysis._BY_CAMPAIGN):
        cache.clear()
    assert problems(analyze_campaign(repo, camp)) == before


def test_compiling_for_rendering_leaves_the_analysis_tree_as_parsed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The render environment compiles from the analysis' own tree (no second parse) and
    unoptimized, so nothing folds it: the tree the analysis walks is the one it parsed."""
    import jinja2

    from toolkit.analysis import walked_tree
    from toolkit.render import repo_env

    parses = []
    real_parse = jinja2.Environment._parse

    def counting_parse(self: jinja2.Environment, *args: object) -> object:
        parses.append(args)
        return real_parse(self, *args)  # type: ignore[arg-type]

    body = '{{ contact["first" ~ "_name"] }}{% if 1 + 1 == 2 %}{{ "a" ~ "b" }}{% endif %}\n'
    root = make_repo(tmp_path, {TEMPLATE_FILE: HEAD + body + TAIL})
    for base in (root, Path(__file__).resolve().parent.parent):  # and the example's
        repo, _ = load_repo(base)
        for name, template in sorted(repo.templates.items()):
            tree = walked_tree(repo.root, name, template.source)
            before = repr(tree)
            monkeypatch.setattr(jinja2.Environment, "_parse", counting_parse)
            repo_env(repo).get_template(name)
            monkeypatch.undo()
            assert walked_tree(repo.root, name, template.source) is tree
            assert repr(tree) == before, name
    assert parses == []  # compiled from the analysis' trees
