"""Tracking and link rules (toolkit/rules/tracking.py): the YAML cases, plus details."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_helpers import (
    CAMPAIGN_FILE,
    TEMPLATE_FILE,
    RuleCase,
    assert_finding,
    assert_silent,
    case_params,
    lint_with,
    run_case,
)

RULE_IDS = ("TRK-001", "TRK-002")


@pytest.mark.parametrize("case", case_params(RULE_IDS))
def test_rule_case(tmp_path: Path, case: RuleCase) -> None:
    run_case(tmp_path, case)


def test_web_font_from_a_third_party(tmp_path: Path) -> None:
    findings = lint_with(tmp_path, replace={TEMPLATE_FILE: [(
        "<mj-head>",
        '<mj-head>\n    <mj-font name="Roboto" '
        'href="https://fonts.googleapis.com/css?family=Roboto" />',
    )]})
    f = assert_finding(findings, "TRK-001", TEMPLATE_FILE, 3)
    assert f.message.startswith("web font points at fonts.googleapis.com, which is not in "
                                "organization.allowed_domains")


def test_a_tracker_is_allowed_when_listed_and_no_clinical_field_is_near(tmp_path: Path) -> None:
    findings = lint_with(tmp_path, replace={
        "toolkit.yaml": [("allowed_domains: [clinic.example.org]",
                          "allowed_domains: [clinic.example.org, google-analytics.com]")],
        "segments/upcoming-appointments.yaml": [
            ('- {field: care_status, op: "==", value: active}',
             "- {field: age, op: '>=', value: 18}"),
            ("- {field: next_appointment, op: within_days, value: 7}",
             "- {field: language, op: exists}"),
        ],
        CAMPAIGN_FILE: [("phi_fields: [first_name, next_appointment]", "phi_fields: [first_name]")],
        TEMPLATE_FILE: [
            ("This is a reminder of your visit on {{ contact.next_appointment | date }}.", "Hi."),
            ("or call the front desk.",
             'or call.<img alt="" src="https://www.google-analytics.com/c">'),
        ],
    })
    assert_silent(findings, "TRK-001")


def test_contact_data_through_a_partial_macro_is_reported_in_the_partial(tmp_path: Path) -> None:
    findings = lint_with(tmp_path, {
        "templates/partials/links.mjml":
            '{% macro visit(id) %}\n<a href="https://clinic.example.org/v/{{ id }}">visit</a>\n'
            "{% endmacro %}\n",
    }, {TEMPLATE_FILE: [(
        "Hello {{ contact.first_name }},",
        '{% import "partials/links.mjml" as l %}{{ l.visit(contact.first_name) }}')]})
    f = assert_finding(findings, "TRK-002", "templates/partials/links.mjml", 2)
    assert f.message.startswith("contact.first_name flows into the href URL; PHI in URLs leaks")


def test_a_url_passed_to_a_macro_is_reported_where_it_is_written(tmp_path: Path) -> None:
    findings = lint_with(tmp_path, {
        "templates/partials/links.mjml":
            '{% macro button(url) %}\n<mj-button href="{{ url }}">Go</mj-button>\n'
            "{% endmacro %}\n",
    }, {TEMPLATE_FILE: [(
        "Hello {{ contact.first_name }},",
        '{% import "partials/links.mjml" as l %}</mj-text>\n'
        '{{ l.button("https://offers.example.net/") }}<mj-text>Hello')]})
    f = assert_finding(findings, "TRK-001", TEMPLATE_FILE, 9)
    assert f.message.startswith("link points at offers.example.net (in the rendered message)")
