"""The content digest: any change of meaning changes it, YAML formatting does not."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_campaign

import toolkit.digest
from toolkit.digest import campaign_digest, digest_parts
from toolkit.loader import load_repo

SCAFFOLD = Path(__file__).resolve().parent.parent / "toolkit" / "scaffold"
CID = "appointment-reminder"
CAMPAIGN = f"campaigns/{CID}/campaign.yaml"


@pytest.fixture
def repo_root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(SCAFFOLD, root)
    (root / "policy" / "authorizations").mkdir(parents=True, exist_ok=True)
    (root / "policy" / "authorizations" / "research.yaml").write_text(
        "title: Research outreach\ninformation: name and email\npurposes: [outreach]\n"
        "expiration: one year after signing\n", encoding="utf-8")
    edit_yaml(root, CAMPAIGN, lambda d: d.update(authorization={"scope": "research"}))
    return root


def edit_yaml(root: Path, rel: str, change: Callable[[Any], object]) -> None:
    path = root / rel
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def digest_of(root: Path) -> str:
    repo, _ = load_repo(root)
    return campaign_digest(repo, CID)


def parts_of(root: Path) -> dict[str, str]:
    repo, _ = load_repo(root)
    return digest_parts(repo, CID)


def test_parts_name_every_input(repo_root: Path) -> None:
    assert sorted(parts_of(repo_root)) == [
        "authorization:research", "campaign", "fields", "organization", "relay:default",
        "segment:upcoming-appointments", "sender:clinic", "template:appointment-reminder.mjml",
        "template:partials/footer.mjml", "toolkit", "unsubscribe",
    ]
    assert digest_of(repo_root).startswith("sha256:")
    assert len(digest_of(repo_root)) == len("sha256:") + 64


def _append(rel: str, text: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        path = root / rel
        source = path.read_text(encoding="utf-8")
        path.write_text(source.replace("</mj-text>", text + "</mj-text>", 1), encoding="utf-8")
    return change


def _yaml(rel: str, change: Callable[[Any], object]) -> Callable[[Path], None]:
    return lambda root: edit_yaml(root, rel, change)


CHANGES: dict[str, tuple[str, Callable[[Path], None]]] = {
    # test id: (part expected to change, edit)
    "campaign-subject": ("campaign", _yaml(CAMPAIGN, lambda d: d.update(subject="Changed"))),
    "campaign-phi-fields": ("campaign", _yaml(CAMPAIGN,
                                              lambda d: d.update(phi_fields=["first_name"]))),
    "waiver": ("campaign", _yaml(CAMPAIGN, lambda d: d.update(
        waivers=[{"rule": "MBX-001", "reason": "approved by legal"}]))),
    "template": ("template:appointment-reminder.mjml",
                 _append("templates/appointment-reminder.mjml", " Thanks.")),
    "partial": ("template:partials/footer.mjml", _append("templates/partials/footer.mjml", " Hi")),
    "segment": ("segment:upcoming-appointments", _yaml(
        "segments/upcoming-appointments.yaml", lambda d: d["where"]["all"][1].update(value=14))),
    "fields": ("fields", _yaml("policy/fields.yaml",
                               lambda d: d["fields"]["age"].update({"class": "clinical"}))),
    "authorization": ("authorization:research", _yaml(
        "policy/authorizations/research.yaml", lambda d: d.update(expiration="two years"))),
    "sender": ("sender:clinic", _yaml("toolkit.yaml",
                                      lambda d: d["senders"]["clinic"].update(from_name="Other"))),
    "relay": ("relay:default", _yaml("toolkit.yaml",
                                     lambda d: d["relays"]["default"].update(port=465))),
    "unsubscribe": ("unsubscribe", _yaml("toolkit.yaml", lambda d: d["unsubscribe"].update(
        url="https://clinic.example.org/u/{token}"))),
    "organization-address": ("organization", _yaml(
        "toolkit.yaml", lambda d: d["organization"].update(
        postal_address="2 Example Way, Springfield, IL 62701"))),
    "organization-domains": ("organization", _yaml(
        "toolkit.yaml", lambda d: d["organization"].update(
        allowed_domains=["clinic.example.org", "cdn.example.org"]))),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_change_of_meaning_changes_digest(repo_root: Path, name: str) -> None:
    part, change = CHANGES[name]
    before_parts, before = parts_of(repo_root), digest_of(repo_root)
    change(repo_root)
    after_parts, after = parts_of(repo_root), digest_of(repo_root)
    assert after != before
    changed = sorted(k for k in before_parts if before_parts[k] != after_parts.get(k))
    assert changed == [part]


def test_toolkit_major_version_changes_digest(repo_root: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    before = digest_of(repo_root)
    monkeypatch.setattr(toolkit.digest, "MAJOR_VERSION", "99")
    assert digest_of(repo_root) != before


def test_organization_purpose_mapping_is_an_input(repo_root: Path) -> None:
    (repo_root / "policy" / "purposes.yaml").write_text(
        "purposes:\n  visit-reminder: {base: appointment-reminder}\n", encoding="utf-8")
    edit_yaml(repo_root, CAMPAIGN, lambda d: d.update(purpose="visit-reminder"))
    before = parts_of(repo_root)
    assert "purpose:visit-reminder" in before
    (repo_root / "policy" / "purposes.yaml").write_text(
        "purposes:\n  visit-reminder: {base: marketing}\n", encoding="utf-8")
    after = parts_of(repo_root)
    assert after["purpose:visit-reminder"] != before["purpose:visit-reminder"]


REFORMATTED_CAMPAIGN = """\
# reformatted: comments, flow style, other key order, other indentation
phi_fields:
    - first_name   # the greeting
    - next_appointment
delivery:
        encryption: tls-required
        relay: default
authorization: {scope: research}
segment: 'upcoming-appointments'
template: appointment-reminder
preheader: Details of your next appointment
subject: >-
  Your upcoming visit at {{ organization.name }}
sender: "clinic"
purpose: appointment-reminder
title: Appointment reminder
"""


def test_yaml_formatting_does_not_change_digest(repo_root: Path) -> None:
    before = digest_of(repo_root)
    (repo_root / CAMPAIGN).write_text(REFORMATTED_CAMPAIGN, encoding="utf-8")
    for rel in ("toolkit.yaml", "segments/upcoming-appointments.yaml", "policy/fields.yaml",
                "policy/authorizations/research.yaml"):
        path = repo_root / rel
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        flow = yaml.safe_dump(data, default_flow_style=True, sort_keys=True, indent=4, width=60)
        path.write_text(f"# {rel}, reformatted\n{flow}\n\n", encoding="utf-8")
    assert digest_of(repo_root) == before


def test_unrelated_changes_do_not_change_digest(repo_root: Path) -> None:
    before = digest_of(repo_root)
    edit_yaml(repo_root, "toolkit.yaml", lambda d: d["senders"].update(
        other={"from_name": "Other", "from_address": "other@clinic.example.org"}))
    (repo_root / "segments" / "everyone.yaml").write_text("description: all\n", encoding="utf-8")
    (repo_root / "templates" / "unused.mjml").write_text("<mjml><mj-body></mj-body></mjml>\n",
                                                         encoding="utf-8")
    edit_yaml(repo_root, "fixtures/personas.yaml", lambda d: d["alex"].update(age=70))
    assert digest_of(repo_root) == before


def test_dynamic_include_reaches_every_template(repo_root: Path) -> None:
    path = repo_root / "templates" / "appointment-reminder.mjml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        '"partials/footer.mjml"', '"partials/" ~ campaign.id ~ ".mjml"'), encoding="utf-8")
    (repo_root / "templates" / "partials" / "extra.mjml").write_text("<mj-text>x</mj-text>\n",
                                                                     encoding="utf-8")
    assert "template:partials/extra.mjml" in parts_of(repo_root)


def test_cli_prints_digest_and_parts(repo_root: Path) -> None:
    res = run_campaign("digest", CID, "--parts", root=repo_root)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == digest_of(repo_root)
    assert "  sender:clinic sha256:" + parts_of(repo_root)["sender:clinic"] in lines


def test_cli_unknown_campaign_exits_2(repo_root: Path) -> None:
    res = run_campaign("digest", "nope", root=repo_root)
    assert res.returncode == 2
    assert res.stderr == ("Error: unknown campaign 'nope' (known: appointment-reminder)\n"
                          "  fix: pass the name of a folder under campaigns/\n")


def test_cli_campaign_that_does_not_load_exits_2(repo_root: Path) -> None:
    edit_yaml(repo_root, CAMPAIGN, lambda d: d.update(colour="red"))
    res = run_campaign("digest", CID, root=repo_root)
    assert res.returncode == 2
    assert f"{CAMPAIGN}: campaign '{CID}' does not load" in res.stderr
    assert "Traceback" not in res.stderr
