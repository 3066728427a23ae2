"""HIPAA PHI-flow rules (toolkit/rules/phi.py): the YAML cases, plus what the cases cannot show."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_helpers import RuleCase, case_params, run_case

RULE_IDS = ("HIPAA-MIN-001", "HIPAA-MIN-002", "HIPAA-FR-001", "HIPAA-SEC-001", "HIPAA-MKT-003",
            "HIPAA-MKT-004")


@pytest.mark.parametrize("case", case_params(RULE_IDS))
def test_rule_case(tmp_path: Path, case: RuleCase) -> None:
    run_case(tmp_path, case)
