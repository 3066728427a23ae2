"""The bundled Valley Health example: complete, synthetic, and clean under every rule."""

from __future__ import annotations

import re

from conftest import ROOT
from rule_helpers import describe, lint_root

from toolkit.loader import load_repo
from toolkit.models import PURPOSES
from toolkit.render import render_for_lint


def test_example_lints_clean_in_process() -> None:
    findings = lint_root(ROOT)
    assert findings == [], describe(findings)


def test_example_covers_every_purpose() -> None:
    repo, _ = load_repo(ROOT)
    assert len(repo.campaigns) >= 8
    bases = {repo.base_purpose(c.purpose) for c in repo.campaigns.values()}
    assert bases == set(PURPOSES)
    marketing = [c for c in repo.campaigns.values() if c.purpose == "marketing"]
    assert marketing and all(c.authorization is not None for c in marketing)
    # an organization purpose mapped onto a built-in one is exercised too
    assert any(c.purpose in repo.purposes for c in repo.campaigns.values())


def test_every_campaign_renders_for_a_persona() -> None:
    repo, _ = load_repo(ROOT)
    for c in repo.campaigns.values():
        renders = render_for_lint(repo, c)
        assert renders, f"{c.id} renders for no persona"
        assert all("Valley Health" in r.html for r in renders)


def test_personas_are_obviously_synthetic() -> None:
    repo, _ = load_repo(ROOT)
    assert len(repo.personas) >= 3
    for p in repo.personas.values():
        assert p.contact["email"].endswith("@example.org")
        phone = p.contact.get("phone")
        assert phone is None or re.search(r"555-01\d\d$", phone)
        assert "date_of_birth" not in p.contact and "mrn" not in p.contact
