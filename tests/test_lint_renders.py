"""Lint renders the personas `campaign build` shows (the segment's, else the first), at the
same moment, and the build reuses those renders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from toolkit import render
from toolkit.lint import run_lint
from toolkit.loader import load_repo
from toolkit.render import preview_now, preview_personas, render_for_lint
from toolkit.site.collect import choose_personas, render_persona

SCAFFOLD = ROOT / "toolkit" / "scaffold"
CAMPAIGN = "appointment-reminder"
MORE = {
    # in the segment at the preview moment (2026-11-25): active, appointment within 7 days
    "blake": {"id": "persona-blake", "email": "blake@example.org", "first_name": "Blake",
              "age": 41, "language": "en", "care_status": "active",
              "next_appointment": "2026-11-27T10:00:00+00:00", "deceased": False},
    # outside it: no longer a patient
    "casey": {"id": "persona-casey", "email": "casey@example.org", "first_name": "Casey",
              "age": 52, "language": "en", "care_status": "inactive",
              "next_appointment": "2026-11-27T10:00:00+00:00", "deceased": False},
}


def _repo(tmp_path: Path, personas: dict[str, dict[str, object]]) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(SCAFFOLD, root)
    path = root / "fixtures" / "personas.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc.update(personas)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return root


def test_lint_renders_the_personas_the_segment_matches(tmp_path: Path) -> None:
    repo, _ = load_repo(_repo(tmp_path, MORE))
    campaign = repo.campaigns[CAMPAIGN]
    assert list(repo.personas) == ["alex", "blake", "casey"]
    assert [r.persona for r in render_for_lint(repo, campaign)] == ["alex", "blake"]


def test_no_persona_in_the_segment_renders_the_first(tmp_path: Path) -> None:
    outside = {"alex": {**MORE["casey"], "id": "persona-alex", "email": "alex@example.org"},
               "casey": MORE["casey"]}
    repo, _ = load_repo(_repo(tmp_path, outside))
    campaign = repo.campaigns[CAMPAIGN]
    assert preview_personas(repo, campaign) == ["alex"]
    assert [r.persona for r in render_for_lint(repo, campaign)] == ["alex"]


def test_lint_and_build_choose_alike_on_the_example() -> None:
    repo, _ = load_repo(ROOT)
    chosen = 0
    for campaign in repo.campaigns.values():
        names, _ = choose_personas(repo, campaign, preview_now(campaign))
        assert preview_personas(repo, campaign) == names, campaign.id
        assert [r.persona for r in render_for_lint(repo, campaign)] == names, campaign.id
        chosen += len(names)
    assert chosen < len(repo.campaigns) * len(repo.personas)  # fewer than every persona


def test_the_build_reuses_lint_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, load_findings = load_repo(_repo(tmp_path, MORE))
    campaign = repo.campaigns[CAMPAIGN]
    assert not run_lint(repo, load_findings).errors
    lint_html = {r.persona: r.html for r in render_for_lint(repo, campaign)}

    def no_render(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered again")

    monkeypatch.setattr(render, "render_campaign", no_render)
    when = preview_now(campaign)
    names, _ = choose_personas(repo, campaign, when)
    views = [render_persona(repo, campaign, n, "sha256:0", when) for n in names]
    assert [v.name for v in views] == ["alex", "blake"]
    assert all(v.error is None and v.text for v in views)  # the text part added to the render
    assert {v.name: v.eml for v in views}.keys() == lint_html.keys()
