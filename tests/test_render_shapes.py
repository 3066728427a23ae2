"""Shaped previews (toolkit.render_shapes) give exactly what a full render gives.

A shaped render is one render per template, sender, purpose, persona and moment with
placeholders, and each campaign's values put back into it. These tests compare it with
the full render (render_campaign), field by field, and every fact the rules read of the
body, on every example campaign and persona, for generated titles, ids and preheaders,
and on templates that use a value other than by printing it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rule_helpers import make_repo

from toolkit.loader import load_repo
from toolkit.models import Campaign, Repo
from toolkit.render import (
    PREVIEW_VIEW_ONLINE_URL,
    RenderError,
    configured_view_online_url,
    preview_now,
    preview_unsubscribe_url,
    render_campaign,
    render_preview,
)
from toolkit.render_shapes import ShapedHTML, _printed_only, shaped_preview, transparent
from toolkit.rules import body, tracking

ROOT = Path(__file__).resolve().parent.parent
_ids = itertools.count()


@pytest.fixture(scope="module")
def example() -> Repo:
    repo, findings = load_repo(ROOT)
    assert not findings
    return repo


def both(repo: Repo, campaign: Campaign, persona: str,
         at: dt.datetime | None = None) -> tuple[Any, Any]:
    """(the full render or the RenderError it raises, the shaped render or None)."""
    contact = repo.personas[persona].contact
    when = at or preview_now(campaign)
    urls = {"unsubscribe_url": preview_unsubscribe_url(repo, campaign, contact),
            "view_online_url": configured_view_online_url(repo, campaign)
            or PREVIEW_VIEW_ONLINE_URL}
    try:
        full: Any = render_campaign(repo, campaign, contact, persona=persona, now=when,
                                    text=False, **urls)
    except RenderError as exc:
        full = exc
    return full, shaped_preview(repo, campaign, persona, contact, when=when, **urls)


def assert_same(full: Any, shaped: Any) -> None:
    if isinstance(full, RenderError):
        assert shaped is None, "a campaign that cannot render must render in full"
        return
    if shaped is None:
        return  # rendered in full: nothing to compare
    assert type(shaped.html) is ShapedHTML
    for name in ("campaign", "persona", "subject", "preheader", "mjml"):
        assert getattr(shaped, name) == getattr(full, name), name
    assert str(shaped.html) == full.html
    # every fact the rules read, through the shape and on the full HTML
    assert body._scan(shaped.html) == body._scan_cached(full.html)
    assert tracking._found_urls(shaped.html) == tracking._found_urls_list(full.html)
    assert tracking.images_without_alt(shaped.html) == tracking._images_without_alt(full.html)


def with_values(campaign: Campaign, **values: str) -> Campaign:
    """A copy of campaign with other values and a new id (the repository's caches key on
    the id, as they may: a loaded repository never changes)."""
    copy = campaign.model_copy(update={k: v for k, v in values.items() if k != "id"})
    copy.__pydantic_private__ = {**campaign.__pydantic_private__,
                                 "_id": values.get("id", f"copy-{next(_ids)}")}
    return copy


def test_every_example_campaign_and_persona(example: Repo) -> None:
    shaped_count = 0
    for campaign in example.campaigns.values():
        for persona in example.personas:
            full, shaped = both(example, campaign, persona)
            assert_same(full, shaped)
            shaped_count += shaped is not None
    # the example's templates only print these values: nearly every render is shaped
    # (those that are not are the ones that cannot render for a persona)
    renders = sum(1 for c in example.campaigns.values() for p in example.personas
                  if not isinstance(both(example, c, p)[0], RenderError))
    assert shaped_count == renders


def test_campaigns_that_differ_in_their_values_share_a_shape(example: Repo) -> None:
    campaign = next(c for c in example.campaigns.values() if c.id == "flu-vaccination-2026")
    persona = next(iter(example.personas))
    shapes = example_shapes = None
    for title in ("Flu clinic, first wave", "Flu clinic (second wave)", "Third: 2026/27"):
        copy = with_values(campaign, title=title)
        full, shaped = both(example, copy, persona)
        assert_same(full, shaped)
        assert shaped is not None and title in shaped.html
        shapes = shaped.html.shape
        example_shapes = example_shapes or shapes
        assert shapes is example_shapes


def test_values_outside_the_classes_render_in_full_and_still_match(example: Repo) -> None:
    campaign = next(c for c in example.campaigns.values() if c.id == "spring-newsletter")
    persona = next(iter(example.personas))
    for title in ("Women's health & you", 'Say "hello"', "<b>bold</b>", "two  spaces",
                  " leading", "trailing ", "caf\u00e9", "no\u00a0break", "curl(x)", "(start"):
        assert not transparent("title", title)
        copy = with_values(campaign, title=title)
        full, shaped = both(example, copy, persona)
        assert_same(full, shaped)
        assert shaped is not None  # the other values still swap; the title is in the key
        assert shaped.html.shape is both(example, with_values(copy, title=title), persona)[
            1].html.shape  # the same title, another campaign: the same shape


_TEXTS = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="{}\r",
                                         exclude_categories=("Cs",)), max_size=40)
_PLAIN = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 .,:;!?/_+%~*@#$()-]{0,30}", fullmatch=True)
_IDS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_values(example: Repo, data: st.DataObject) -> None:
    campaign = data.draw(st.sampled_from(sorted(example.campaigns.values(), key=lambda c: c.id)))
    persona = data.draw(st.sampled_from(sorted(example.personas)))
    title = data.draw(st.one_of(_PLAIN, _TEXTS).filter(str.strip))
    preheader = data.draw(st.one_of(_PLAIN, _TEXTS))
    cid = f"{data.draw(_IDS)}-{next(_ids)}"
    copy = with_values(campaign, title=title, preheader=preheader, id=cid)
    assert_same(*both(example, copy, persona))


# --- templates that use a value other than by printing it -------------------------------

USES = {
    "filter": "{{ campaign.title|upper }}",
    "condition": "{% if 'Flu' in campaign.title %}flu{% endif %}",
    "assignment": "{% set t = campaign.title %}{{ t }}",
    "length": "{{ campaign.title|length }}",
    "macro": "{% macro m() %}{{ campaign.title }}{% endmacro %}{{ m()|upper }}",
    "filter block": "{% filter upper %}{{ campaign.title }}{% endfilter %}",
    "set block": "{% set t %}{{ campaign.title }}{% endset %}{{ t|upper }}",
    "whole object": "{{ campaign['title']|upper }}",
    "url": "{{ unsubscribe_url|upper }}",
    "concatenation": "{{ (campaign.title ~ 'x')|upper }}",
}


def printed(repo: Repo, campaign: Campaign) -> frozenset[str]:
    template = repo.template_for(campaign)
    assert template is not None
    return _printed_only(repo, template.name)


def scaffold_with(tmp_path: Path, text: str) -> Repo:
    """The scaffold, its template's title and first text replaced by `text`."""
    root = make_repo(tmp_path, replace={"templates/appointment-reminder.mjml": [
        ("<mj-title>Appointment reminder</mj-title>",
         "<mj-title>{{ campaign.title }}</mj-title>"),
        ("<mj-text>Hello {{ contact.first_name }},</mj-text>", f"<mj-text>{text}</mj-text>"),
    ]})
    repo, findings = load_repo(root)
    assert not [f for f in findings if f.severity and f.severity.value == "error"]
    return repo


@pytest.mark.parametrize("use", sorted(USES))
def test_a_value_used_other_than_by_printing_is_in_the_key(tmp_path: Path, use: str) -> None:
    repo = scaffold_with(tmp_path, USES[use])
    campaign = repo.campaigns["appointment-reminder"]
    var = "unsubscribe_url" if "unsubscribe_url" in USES[use] else "title"
    assert var not in printed(repo, campaign)
    assert printed(repo, campaign)  # the other values still swap
    persona = next(iter(repo.personas))
    shapes = set()
    for title in ("Flu shots", "Checkups", "flu wave two"):
        full, shaped = both(repo, with_values(campaign, title=title), persona)
        assert_same(full, shaped)
        assert shaped is not None
        shapes.add(id(shaped.html.shape))
    # each title its own shape; each copy's unsubscribe URL differs too (its id is new)
    assert len(shapes) == 3


def test_printing_alone_swaps(tmp_path: Path) -> None:
    repo = scaffold_with(tmp_path, "{{ campaign.title }} {{ campaign.id }} {{ unsubscribe_url }}")
    campaign = repo.campaigns["appointment-reminder"]
    assert printed(repo, campaign) == {"title", "id", "unsubscribe_url",
                                                      "view_online_url"}
    persona = next(iter(repo.personas))
    shapes = set()
    for title in ("Flu shots", "Checkups", "flu wave two"):
        full, shaped = both(repo, with_values(campaign, title=title), persona)
        assert_same(full, shaped)
        assert shaped is not None and title in full.html
        shapes.add(id(shaped.html.shape))
    assert len(shapes) == 1


@pytest.mark.parametrize("text", [
    "{% include 'partials/' ~ 'footer.mjml' %}",
    "{{ self.x() }}",
    "{% macro m() %}{% include 'partials/footer.mjml' %}{% endmacro %}",
    "{{ super()|upper }}",
])
def test_what_the_analysis_cannot_follow_swaps_nothing(tmp_path: Path, text: str) -> None:
    repo = scaffold_with(tmp_path, text)
    campaign = repo.campaigns["appointment-reminder"]
    assert printed(repo, campaign) == frozenset()
    persona = next(iter(repo.personas))
    for title in ("Flu shots", "Checkups"):
        assert_same(*both(repo, with_values(campaign, title=title), persona))


def test_lint_and_build_previews_are_shaped(example: Repo) -> None:
    campaign = next(iter(example.campaigns.values()))
    persona = next(iter(example.personas))
    preview = render_preview(example, campaign, persona, text=True)
    full, _ = both(example, campaign, persona)
    assert str(preview.html) == full.html
    assert preview.text  # the build's text part is made from the shaped HTML


def test_every_rule_case_lints_the_same_with_and_without_shapes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every repository of tests/rule_cases (each rule's failing and passing cases) gives
    the same findings, positions and messages when no render is shaped."""
    from rule_helpers import CASES_DIR, lint_root, load_cases

    import toolkit.render_shapes as shapes

    real = shapes.shaped_preview
    used = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        used.append(got is not None)
        return got

    def lint(root: Path, shaped: bool) -> list[tuple[object, ...]]:
        monkeypatch.setattr(shapes, "shaped_preview", counting if shaped else lambda *a, **k: None)
        return [(f.rule, f.pos, f.message, f.campaign, f.severity, f.waived)
                for f in lint_root(root)]

    cases = [case for path in sorted(CASES_DIR.glob("*.yaml")) for case in load_cases(path.stem)]
    for i, case in enumerate(cases):
        root = make_repo(tmp_path / str(i), case.files, case.replace)
        assert lint(root, True) == lint(root, False), f"{case.rule}: {case.name}"
    assert sum(used) > 100  # most of them are shaped


def test_blocks_of_an_extended_template_swap_and_match(tmp_path: Path) -> None:
    base = ('<mjml lang="en">\n  <mj-head><mj-title>{% block title %}{{ campaign.title }}'
            '{% endblock %}</mj-title></mj-head>\n  <mj-body>\n{% block body %}{% endblock %}\n'
            '    {% include "partials/footer.mjml" %}\n  </mj-body>\n</mjml>\n')
    child = ('{% extends "base.mjml" %}\n'
             '{% block title %}{{ super() }} - {{ campaign.id }}{% endblock %}\n'
             '{% block body %}<mj-section><mj-column><mj-text>Hello {{ contact.first_name }}, '
             '{{ campaign.title }}</mj-text></mj-column></mj-section>{% endblock %}\n')
    root = make_repo(tmp_path, {"templates/base.mjml": base,
                                "templates/appointment-reminder.mjml": child})
    repo, _ = load_repo(root)
    campaign = repo.campaigns["appointment-reminder"]
    assert {"title", "id"} <= printed(repo, campaign)
    persona = next(iter(repo.personas))
    shapes = set()
    for title in ("Flu shots", "Checkups: 2026/27", "Wave 3 (final)"):
        full, shaped = both(repo, with_values(campaign, title=title), persona)
        assert not isinstance(full, RenderError)
        assert_same(full, shaped)
        assert shaped is not None and f"<title>{title} - " in full.html
        shapes.add(id(shaped.html.shape))
    assert len(shapes) == 1
