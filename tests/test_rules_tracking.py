"""Tracking and link rules (toolkit/rules/tracking.py): the YAML cases, plus details."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_helpers import RuleCase, case_params, run_case

RULE_IDS = ("TRK-001", "TRK-002")


@pytest.mark.parametrize("case", case_params(RULE_IDS))
def test_rule_case(tmp_path: Path, case: RuleCase) -> None:
    run_case(tmp_path, case)
