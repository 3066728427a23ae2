"""Meta-test (sqlfluff style): every rule in the registry is documented by test cases.

Static rules need a case file tests/rule_cases/<RULE-ID>.yaml with at least one failing
case (expected findings) and one passing case (silent). Gate rules run in plan/send, and
their cases live with the plan tests; here they must be registered with their reasons.
"""

from __future__ import annotations

import pytest
from rule_helpers import case_file, load_cases

from toolkit.rules import RULES

STATIC = sorted(r.id for r in RULES.values() if r.scope != "gate")
GATE = sorted(r.id for r in RULES.values() if r.scope == "gate")


@pytest.mark.parametrize("rule_id", STATIC)
def test_static_rule_has_failing_and_passing_cases(rule_id: str) -> None:
    cases = load_cases(rule_id)
    assert cases, f"add {case_file(rule_id).relative_to(case_file(rule_id).parents[2])}"
    assert any(c.failing for c in cases), f"{rule_id}: no failing case (one with expect: [...])"
    assert any(not c.failing for c in cases), f"{rule_id}: no passing case (one with expect: [])"


@pytest.mark.parametrize("rule_id", GATE)
def test_gate_rule_is_registered_with_reasons(rule_id: str) -> None:
    rule = RULES[rule_id]
    assert rule.check is None
    assert rule.reasons, f"{rule_id}: a gate rule names its exclusion reasons"


def test_every_rule_documents_itself() -> None:
    for rule in RULES.values():
        assert rule.summary and rule.citation and rule.fix, rule.id
