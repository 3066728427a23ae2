"""Content hygiene rules (toolkit/rules/content.py): the YAML cases, plus details."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_helpers import (
    CAMPAIGN_FILE,
    SCAFFOLD,
    TEMPLATE_FILE,
    RuleCase,
    assert_finding,
    case_params,
    lint_with,
    run_case,
)

RULE_IDS = ("CNT-001", "CNT-002", "CNT-003", "CNT-004")


@pytest.mark.parametrize("case", case_params(RULE_IDS))
def test_rule_case(tmp_path: Path, case: RuleCase) -> None:
    run_case(tmp_path, case)


def test_template_problems_are_reported_once_for_campaigns_sharing_it(tmp_path: Path) -> None:
    findings = lint_with(tmp_path, {
        "campaigns/second/campaign.yaml": (SCAFFOLD / CAMPAIGN_FILE).read_text(),
    }, {TEMPLATE_FILE: [("Hello {{ contact.first_name }},", "Hello {{ patient }},")]})
    hits = [f for f in findings if f.rule == "CNT-003"]
    assert [(f.file, f.line, f.campaign) for f in hits] == [(TEMPLATE_FILE, 8, None)]


def test_subject_problems_belong_to_their_campaign(tmp_path: Path) -> None:
    findings = lint_with(tmp_path, replace={CAMPAIGN_FILE: [
        ('subject: "Your upcoming visit at {{ organization.name }}"', 'subject: "{{ clinic }}"')]})
    f = assert_finding(findings, "CNT-003", CAMPAIGN_FILE, 4)
    assert f.campaign == "appointment-reminder"


def test_hard_coded_identifiers_are_never_echoed(tmp_path: Path) -> None:
    findings = lint_with(tmp_path, replace={
        TEMPLATE_FILE: [("To change it, reply", "SSN 123-45-6789, jane.doe@gmail.com. To change")],
        "fixtures/personas.yaml": [("email: alex@example.org", "email: alex.real@gmail.com")],
    })
    hits = [f for f in findings if f.rule == "CNT-002"]
    assert len(hits) == 3
    for f in hits:
        assert "123-45-6789" not in f.message and "gmail" not in f.message


def test_lock_screen_message_text(tmp_path: Path) -> None:
    findings = lint_with(tmp_path, replace={CAMPAIGN_FILE: [
        ('subject: "Your upcoming visit at {{ organization.name }}"',
         'subject: "About your {{ contact.care_status }} care"'),
        ("phi_fields: [first_name, next_appointment]",
         "phi_fields: [first_name, next_appointment, care_status]")]})
    f = assert_finding(findings, "CNT-001", CAMPAIGN_FILE, 4)
    assert f.message == ("the subject shows clinical field contact.care_status: it appears on lock "
                         "screens and in inbox lists, and S/MIME never encrypts it; move it into "
                         "the message body")
    assert str(f.severity) == "error"
