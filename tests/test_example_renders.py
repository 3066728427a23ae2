"""Every example campaign renders for every bundled contact its segment matches, and an
unknown (null or absent) contact field never reaches a message as "None"
(docs/rendering.md "Unknown contact fields")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from toolkit.analysis import analyze_campaign
from toolkit.loader import load_repo
from toolkit.plan import INVALID, UNMATCHED, gate_config, iter_decisions, parse_at
from toolkit.render import RenderError, render_campaign
from toolkit.suppression import Matcher

# the bundled contacts are dated around 2026-12-01 (appointments, refills, authorizations)
AT = "2026-12-01T12:00:00Z"
NONE_WORD = re.compile(r"\bNone\b")


def test_every_example_campaign_renders_for_every_matched_contact(example_root: Path) -> None:
    repo, _ = load_repo(example_root)
    at = parse_at(AT)
    source = str(example_root / "fixtures" / "contacts.jsonl")
    assert repo.campaigns
    failures: list[str] = []
    null_uses = 0  # renders where a field the content uses was null or absent
    for cid, campaign in sorted(repo.campaigns.items()):
        used = analyze_campaign(repo, campaign).fields_used
        # the example's own state folder may hold a demo's suppressions and ledger: not here
        config = gate_config(repo, campaign, at=at, suppression=Matcher(frozenset(), frozenset()),
                             already_sent=None)
        rendered = 0
        for d in iter_decisions(repo, cid, source, at=at, config=config):
            if d.reason in (INVALID, UNMATCHED) or d.record is None:
                continue
            record = d.record
            null_uses += any(record.get(f) is None for f in used)
            try:
                msg = render_campaign(repo, campaign, record, now=at)
            except RenderError as exc:
                failures.append(f"{cid} line {d.line}: {exc}")
                continue
            rendered += 1
            for part in (msg.subject, msg.preheader, msg.html, msg.text):
                if NONE_WORD.search(part):
                    failures.append(f"{cid} line {d.line}: 'None' in the message")
                    break
        assert rendered > 0, cid
    assert failures == []
    # the fixtures do exercise unknown fields, or this test would prove nothing
    assert null_uses > 0


def _persona_campaign(example_root: Path):  # type: ignore[no-untyped-def]
    repo, _ = load_repo(example_root)
    campaign = repo.campaigns["annual-appeal"]
    persona = next(iter(repo.personas.values())).contact
    return repo, campaign, dict(persona)


@pytest.mark.parametrize("unknown", ["null", "absent"])
def test_an_unknown_field_is_guarded_not_printed(example_root: Path, unknown: str) -> None:
    repo, campaign, contact = _persona_campaign(example_root)
    assert contact.get("department")
    if unknown == "null":
        contact["department"] = None
    else:
        del contact["department"]
    msg = render_campaign(repo, campaign, contact, now=parse_at(AT))
    assert "None" not in msg.html and "None" not in msg.text
    assert "support patient care and programs" in " ".join(msg.text.split())


def test_printing_an_unknown_field_fails_with_its_name_never_a_value(
        example_root: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "repo"
    root.mkdir()
    for part in ("toolkit.yaml", "campaigns", "templates", "segments", "policy", "fixtures"):
        src = example_root / part
        if src.is_dir():
            shutil.copytree(src, root / part)
        else:
            shutil.copy2(src, root / part)
    tpl = root / "templates" / "annual-appeal.mjml"
    text = tpl.read_text(encoding="utf-8")
    tpl.write_text(text.replace("for our community</mj-text>",
                                "for our community, {{ contact.last_name }}</mj-text>"),
                   encoding="utf-8")
    repo, _ = load_repo(root)
    contact = dict(next(iter(repo.personas.values())).contact)
    contact["last_name"] = None
    with pytest.raises(RenderError) as err:
        render_campaign(repo, repo.campaigns["annual-appeal"], contact, now=parse_at(AT))
    assert (err.value.file, err.value.line) == ("templates/annual-appeal.mjml", 8)
    assert err.value.message == (
        "contact.last_name is unknown (null or absent) for this recipient; guard it with "
        "{% if contact.last_name is defined %} or {{ contact.last_name | default(...) }}")
    assert str(contact["first_name"]) not in str(err.value)


def test_guarded_uses_are_still_field_uses(example_root: Path) -> None:
    """`is defined` and `default` guard a field; the analysis still counts the use
    (minimum necessary, PHI rules) and can follow it (no CNT-003)."""
    repo, _ = load_repo(example_root)
    a = analyze_campaign(repo, repo.campaigns["appointment-reminder"])
    assert not a.problems and a.complete
    lines = {(u.field, u.pos.line) for u in a.field_uses}
    assert {("first_name", 9), ("department", 10)} <= lines
    a = analyze_campaign(repo, repo.campaigns["care-instructions"])
    assert not a.problems and "department" in a.fields_used
