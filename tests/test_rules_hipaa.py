"""HIPAA rules of hipaa.py: the YAML cases (tests/rule_cases/), plus the gate rules' registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_helpers import RuleCase, case_params, run_case

from toolkit.rules import RULES

RULE_IDS = ("HIPAA-MKT-001", "HIPAA-MKT-002", "HIPAA-MKT-005", "HIPAA-AUTH-001", "HIPAA-FR-002",
            "HIPAA-SEC-003")


@pytest.mark.parametrize("case", case_params(RULE_IDS))
def test_rule_case(tmp_path: Path, case: RuleCase) -> None:
    run_case(tmp_path, case)


@pytest.mark.parametrize(("rule_id", "reasons"), [
    ("HIPAA-AUTH-002", ("no-authorization", "authorization-expired", "authorization-revoked")),
    ("HIPAA-CC-001", ("confidential-no-email",)),
    ("HIPAA-SEC-002", ("no-smime-certificate", "unencrypted-not-consented")),
])
def test_gate_rules_name_their_exclusion_reasons(rule_id: str, reasons: tuple[str, ...]) -> None:
    rule = RULES[rule_id]
    assert rule.scope == "gate" and rule.check is None
    assert rule.reasons == reasons
