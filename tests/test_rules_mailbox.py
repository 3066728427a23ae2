"""Mailbox-provider rules: the YAML cases (tests/rule_cases/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_helpers import RuleCase, case_params, run_case

RULE_IDS = ("MBX-UNSUB-001", "MBX-AUTH-001", "MBX-SIZE-001")


@pytest.mark.parametrize("case", case_params(RULE_IDS))
def test_rule_case(tmp_path: Path, case: RuleCase) -> None:
    run_case(tmp_path, case)
