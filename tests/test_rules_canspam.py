"""CAN-SPAM rules: the YAML cases (tests/rule_cases/), plus the gate rule's registry entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_helpers import RuleCase, case_params, run_case

from toolkit.rules import RULES

RULE_IDS = ("CANSPAM-001", "CANSPAM-002", "CANSPAM-003", "CANSPAM-004", "CANSPAM-005",
            "CANSPAM-007")


@pytest.mark.parametrize("case", case_params(RULE_IDS))
def test_rule_case(tmp_path: Path, case: RuleCase) -> None:
    run_case(tmp_path, case)


def test_suppression_is_a_gate_rule() -> None:
    rule = RULES["CANSPAM-006"]
    assert rule.scope == "gate" and rule.check is None
    assert rule.reasons == ("suppressed",)
