"""CFG-001, CFG-002 and SEG-001: the YAML cases, plus positions of segment operators."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_helpers import RuleCase, case_params, run_case

RULE_IDS = ("CFG-001", "CFG-002", "SEG-001")


@pytest.mark.parametrize("case", case_params(RULE_IDS))
def test_rule_case(tmp_path: Path, case: RuleCase) -> None:
    run_case(tmp_path, case)


def test_seg_001_points_at_the_op_column(tmp_path: Path) -> None:
    from rule_helpers import assert_finding, lint_with

    findings = lint_with(
        tmp_path,
        replace={
            "segments/upcoming-appointments.yaml": [
                (
                    '{field: care_status, op: "==", value: active}',
                    '{field: care_status, op: "~=", value: active}',
                )
            ]
        },
    )
    f = assert_finding(findings, "SEG-001", "segments/upcoming-appointments.yaml", 4)
    assert f.column == 32  # the quoted "~=" itself
    assert f.message == (
        "unknown operator '~='; use one of: ==, !=, <, <=, >, >=, in, not in, "
        "contains, exists, within_days, older_than_days"
    )
