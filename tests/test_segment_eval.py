"""Segment operators on normalized records, with the unknown-value semantics of DESIGN.md §2."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from toolkit.errors import UserError
from toolkit.findings import Pos
from toolkit.models import AllOf, AnyOf, Condition, FieldSpec, Leaf, Not, Segment
from toolkit.segment_eval import compile_segment, matches

FIELDS = {
    name: FieldSpec(type=type_, class_="none")
    for name, type_ in {
        "name": "string",
        "age": "integer",
        "score": "number",
        "active": "boolean",
        "born": "date",
        "visit": "datetime",
        "codes": "list[string]",
        "contact_email": "email",
    }.items()
}
AT = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
POS = Pos("segments/s.yaml", 3, 7)


def leaf(field: str, op: str, value: Any = None) -> Leaf:
    return Leaf(field=field, op=op, value=value, pos=POS, loc=None)  # type: ignore[arg-type]


def seg(where: Condition | None) -> Segment:
    return Segment(id="s", file="segments/s.yaml", description=None, where=where, loc=None)  # type: ignore[arg-type]


def ok(cond: Condition, record: dict[str, Any], at: dt.datetime = AT) -> bool:
    return matches(seg(cond), record, at=at, fields=FIELDS)


FULL = {
    "name": "Avery",
    "age": 40,
    "score": 2.5,
    "active": True,
    "born": dt.date(1986, 3, 1),
    "visit": dt.datetime(2026, 6, 10, 9, 0, tzinfo=dt.UTC),
    "codes": ("E11", "I10"),
    "contact_email": "avery@example.org",
}
CASES = [
    # (condition, expected on FULL)
    (leaf("name", "==", "Avery"), True),
    (leaf("name", "==", "avery"), False),
    (leaf("age", "==", 40), True),
    (leaf("active", "==", True), True),
    (leaf("active", "==", False), False),
    (leaf("codes", "==", ["E11", "I10"]), True),
    (leaf("name", "!=", "Blake"), True),
    (leaf("age", "!=", 40), False),
    (leaf("age", "<", 41), True),
    (leaf("age", "<", 40), False),
    (leaf("age", "<=", 40), True),
    (leaf("age", ">", 39), True),
    (leaf("age", ">", 40), False),
    (leaf("age", ">=", 40), True),
    (leaf("score", ">", 2), True),
    (leaf("score", "<=", 2.4), False),
    (leaf("born", "<", "1990-01-01"), True),
    (leaf("born", ">=", "1986-03-02"), False),
    (leaf("visit", ">", "2026-06-10T08:59:00Z"), True),
    (leaf("visit", ">", "2026-06-10"), True),  # a date value is midnight UTC
    (leaf("name", "<", "B"), True),
    (leaf("name", "in", ["Avery", "Blake"]), True),
    (leaf("name", "in", ["Blake"]), False),
    (leaf("age", "in", [39, 40]), True),
    (leaf("name", "not in", ["Blake"]), True),
    (leaf("name", "not in", ["Avery"]), False),
    (leaf("codes", "in", ["I10", "J45"]), True),  # some item is in the list
    (leaf("codes", "in", ["J45"]), False),
    (leaf("codes", "not in", ["J45"]), True),  # no item is in the list
    (leaf("codes", "not in", ["E11"]), False),
    (leaf("codes", "contains", "E11"), True),
    (leaf("codes", "contains", "E1"), False),  # items, not substrings
    (leaf("name", "contains", "ver"), True),
    (leaf("contact_email", "contains", "@example.org"), True),
    (leaf("name", "exists"), True),
    (leaf("name", "exists", True), True),
    (leaf("name", "exists", False), False),
    (leaf("visit", "within_days", 5), False),  # 5 days 3 hours ago
    (leaf("visit", "within_days", 6), True),
    (leaf("visit", "within_days", 4), False),
    (leaf("visit", "older_than_days", 5), True),
    (leaf("visit", "older_than_days", 6), False),
    (leaf("born", "older_than_days", 365 * 40), True),
    (leaf("born", "within_days", 30), False),
]


@pytest.mark.parametrize(
    ("cond", "expected"), CASES, ids=[f"{c.field} {c.op} {c.value}" for c, _ in CASES]
)
def test_operators(cond: Leaf, expected: bool) -> None:
    assert ok(cond, dict(FULL)) is expected


@pytest.mark.parametrize(
    ("cond", "_"), CASES, ids=[f"{c.field} {c.op} {c.value}" for c, _ in CASES]
)
def test_a_null_or_absent_field_makes_every_condition_false_and_not_of_it_true(
    cond: Leaf, _: bool
) -> None:
    for record in ({**FULL, cond.field: None}, {k: v for k, v in FULL.items() if k != cond.field}):
        if cond.op == "exists":
            assert ok(cond, record) is (cond.value is False)
            assert ok(Not(cond, POS), record) is (cond.value is not False)
        else:
            assert ok(cond, record) is False
            assert ok(Not(cond, POS), record) is True


def test_exists_is_true_for_an_empty_list_and_false_for_null() -> None:
    assert ok(leaf("codes", "exists"), {"codes": ()}) is True
    assert ok(leaf("codes", "exists"), {"codes": None}) is False
    assert ok(leaf("codes", "exists", False), {}) is True


def test_within_days_looks_both_ways_from_at() -> None:
    future = {"visit": dt.datetime(2026, 6, 20, 12, 0, tzinfo=dt.UTC)}
    past = {"visit": dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC)}
    cond = leaf("visit", "within_days", 5)
    assert ok(cond, future) and ok(cond, past)  # exactly 5 days either way
    assert not ok(cond, future, at=AT - dt.timedelta(seconds=1))
    assert not ok(cond, past, at=AT + dt.timedelta(seconds=1))
    assert ok(leaf("born", "within_days", 1), {"born": dt.date(2026, 6, 16)})
    assert not ok(leaf("born", "within_days", 1), {"born": dt.date(2026, 6, 17)})


def test_at_moves_older_than_days() -> None:
    rec = {"born": dt.date(2026, 5, 1)}
    cond = leaf("born", "older_than_days", 30)
    assert ok(cond, rec, at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))  # 31 days
    assert not ok(cond, rec, at=dt.datetime(2026, 5, 31, tzinfo=dt.UTC))  # 30 days: not more than
    naive = dt.datetime(2026, 6, 1)  # taken as UTC
    assert ok(cond, rec, at=naive)


def test_all_any_not() -> None:
    tree = AllOf(
        (
            leaf("age", ">=", 18),
            AnyOf((leaf("codes", "contains", "E10"), leaf("codes", "contains", "E11")), POS),
            Not(leaf("active", "==", False), POS),
        ),
        POS,
    )
    assert ok(tree, dict(FULL))
    assert not ok(tree, {**FULL, "age": 17})
    assert not ok(tree, {**FULL, "codes": ("I10",)})
    assert ok(tree, {**FULL, "active": None})  # not of unknown is true
    assert not ok(AnyOf((leaf("age", "<", 18), leaf("age", ">", 90)), POS), dict(FULL))
    assert ok(AllOf((leaf("age", ">", 1),), POS), dict(FULL))


def test_a_segment_without_where_matches_everyone() -> None:
    assert matches(seg(None), {}, at=AT, fields=FIELDS)


def test_reserved_keys_can_be_used() -> None:
    assert ok(leaf("unencrypted_email_ok", "==", True), {"unencrypted_email_ok": True})
    assert ok(leaf("email", "contains", "@example.org"), {"email": "a@example.org"})


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        (leaf("nope", "==", 1), "unknown field 'nope'"),
        (leaf("age", "~", 1), "unknown operator '~'"),
        (leaf("age", "==", "forty"), "value for 'age' (integer) has the wrong type"),
        (leaf("born", "<", "last year"), "value for 'born' (date) has the wrong type"),
        (leaf("age", "in", 40), "'in' takes a list of values"),
        (
            leaf("age", "within_days", 3),
            "within_days needs a date or datetime field; 'age' is integer",
        ),
        (
            leaf("visit", "older_than_days", -1),
            "older_than_days takes a number of days (0 or more)",
        ),
        (leaf("age", "contains", 4), "contains needs a list or string field; 'age' is integer"),
        (
            leaf("active", "<", True),
            "'<' needs a number, date or string field; 'active' is boolean",
        ),
        (leaf("name", "exists", "yes"), "exists takes true or false (or no value)"),
    ],
)
def test_bad_conditions_are_errors_with_a_position(cond: Leaf, message: str) -> None:
    with pytest.raises(UserError) as err:
        compile_segment(seg(cond), FIELDS, AT)
    assert err.value.message.startswith(f"segments/s.yaml:3:7: {message}")


def test_a_compiled_segment_is_reusable_and_does_not_touch_the_record() -> None:
    pred = compile_segment(seg(leaf("codes", "contains", "E11")), FIELDS, AT)
    rec = dict(FULL)
    assert [pred(rec) for _ in range(3)] == [True] * 3
    assert rec == FULL
