"""CFG-001, CFG-002 and SEG-001: the YAML cases, plus positions of segment operators."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_helpers import RuleCase, case_params, run_case

RULE_IDS = ("CFG-001", "CFG-002", "SEG-001")


@pytest.mark.parametrize("case", case_params(RULE_IDS))
def test_rule_case(tmp_path: Path, case: RuleCase) -> None:
    run_case(tmp_path, case)
