"""HIPAA PHI-flow rules (toolkit/rules/phi.py): the YAML cases, plus what the cases cannot show."""

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

RULE_IDS = ("HIPAA-MIN-001", "HIPAA-MIN-002", "HIPAA-FR-001", "HIPAA-SEC-001", "HIPAA-MKT-003",
            "HIPAA-MKT-004")


@pytest.mark.parametrize("case", case_params(RULE_IDS))
def test_rule_case(tmp_path: Path, case: RuleCase) -> None:
    run_case(tmp_path, case)


def test_unused_phi_fields_stay_quiet_while_a_partial_is_missing(tmp_path: Path) -> None:
    findings = lint_with(tmp_path, replace={
        CAMPAIGN_FILE: [("phi_fields: [first_name, next_appointment]",
                         "phi_fields: [first_name, next_appointment, care_status]")],
        TEMPLATE_FILE: [('{% include "partials/footer.mjml" %}',
                         '{% include "partials/nope.mjml" %}')],
    })
    assert_finding(findings, "CFG-002", TEMPLATE_FILE, 13)
    assert_silent(findings, "HIPAA-MIN-002")


def test_reserved_keys_need_no_phi_fields_entry(tmp_path: Path) -> None:
    findings = lint_with(tmp_path, replace={TEMPLATE_FILE: [
        ("To change it, reply", "Sent to {{ contact.email }}. To change it, reply")]})
    assert_silent(findings, "HIPAA-MIN-001")


def test_drug_field_definition() -> None:
    from toolkit.models import FieldSpec
    from toolkit.rules.phi import is_drug_field

    def spec(**kw: object) -> FieldSpec:
        return FieldSpec.model_validate({"type": "string", "class": "clinical", **kw})

    assert is_drug_field("medications", spec())
    assert is_drug_field("rx_history", spec())
    assert is_drug_field("other", spec(description="Drugs the patient took last year"))
    assert not is_drug_field("current_prescription", spec(prescription=True))
    assert not is_drug_field("conditions", spec(description="ICD-10 codes"))
    assert not is_drug_field("medications", FieldSpec.model_validate(
        {"type": "string", "class": "none"}))
