"""Segment conditions evaluated on normalized contact records (DESIGN.md §2 segments).

A segment's tree is compiled once, for a schema and an evaluation time, into nested
Python closures; a record then costs one call per leaf. Semantics:

- a null or absent field is unknown, and any condition on it is false (so `not` of it
  is true); `exists` is the one test for it (`value: false` tests absence);
- `in` / `not in` on a list field: some / no item of the field is in the list;
- `contains`: an item of a list field, or a substring of a string field;
- `within_days: N`: a date or date-time within N days of the evaluation time, past or
  future; `older_than_days: N`: more than N days before it. Dates compare with the
  evaluation date in UTC;
- a value that cannot be compared with the field (a type the loader let through) makes
  the condition false, never an exception.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from typing import Any

from toolkit.contact import field_types
from toolkit.errors import UserError
from toolkit.models import AllOf, AnyOf, Condition, FieldSpec, Leaf, Not, Segment

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]

_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _bad(leaf: Leaf, message: str) -> UserError:
    return UserError(
        message, where=str(leaf.pos), fix="fix the condition (campaign lint shows SEG-001)"
    )


def _coerce(leaf: Leaf, type_: str, v: Any) -> Any:
    """The segment's literal as the field's normalized type (as contact.py makes it)."""
    try:
        if type_ == "date":
            if isinstance(v, dt.datetime):
                return v.date()
            return v if isinstance(v, dt.date) else dt.date.fromisoformat(v)
        if type_ == "datetime":
            if isinstance(v, dt.datetime):
                d = v
            elif isinstance(v, dt.date):
                d = dt.datetime(v.year, v.month, v.day)
            else:
                d = dt.datetime.fromisoformat(v)
            return d if d.tzinfo else d.replace(tzinfo=dt.UTC)
        if type_ in ("integer", "number"):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError
            return v
        if type_ == "boolean":
            if not isinstance(v, bool):
                raise TypeError
            return v
        if type_ in ("string", "email", "list[string]"):
            if not isinstance(v, str):
                raise TypeError
            return v
    except (TypeError, ValueError):
        pass
    raise _bad(leaf, f"value for '{leaf.field}' ({type_}) has the wrong type")


def _leaf(leaf: Leaf, types: Mapping[str, str], at: dt.datetime) -> Predicate:
    key, op, raw = leaf.field, leaf.op, leaf.value
    type_ = types.get(key)
    if type_ is None:
        raise _bad(leaf, f"unknown field '{key}'")
    is_list = type_ == "list[string]"

    if op == "exists":
        want = True if raw is None else raw
        if not isinstance(want, bool):
            raise _bad(leaf, "exists takes true or false (or no value)")
        if want:
            return lambda r: r.get(key) is not None
        return lambda r: r.get(key) is None

    if op in ("within_days", "older_than_days"):
        if type_ not in ("date", "datetime"):
            raise _bad(leaf, f"{op} needs a date or datetime field; '{key}' is {type_}")
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
            raise _bad(leaf, f"{op} takes a number of days (0 or more)")
        span = dt.timedelta(days=raw)
        now: dt.date | dt.datetime = at if type_ == "datetime" else at.astimezone(dt.UTC).date()
        if op == "within_days":
            lo, hi = now - span, now + span
            return _guard(lambda v: lo <= v <= hi, key)
        cutoff = now - span
        return _guard(lambda v: v < cutoff, key)

    if op in ("in", "not in"):
        if not isinstance(raw, (list, tuple)):
            raise _bad(leaf, f"'{op}' takes a list of values")
        values = frozenset(_coerce(leaf, type_, v) for v in raw)
        if is_list:
            if op == "in":
                return _guard(lambda v: not values.isdisjoint(v), key)
            return _guard(values.isdisjoint, key)
        if op == "in":
            return _guard(values.__contains__, key)
        return _guard(lambda v: v not in values, key)

    if op == "contains":
        if type_ not in ("list[string]", "string", "email"):
            raise _bad(leaf, f"contains needs a list or string field; '{key}' is {type_}")
        needle = _coerce(leaf, type_, raw)
        return _guard(lambda v: needle in v, key)

    if op in ("==", "!="):
        if is_list:
            if not isinstance(raw, (list, tuple)):
                raise _bad(leaf, f"'{key}' is a list; compare it with a list, or use contains")
            value: Any = tuple(_coerce(leaf, type_, v) for v in raw)
        else:
            value = _coerce(leaf, type_, raw)
        if op == "==":
            return _guard(lambda v: v == value, key)
        return _guard(lambda v: v != value, key)

    if op in _ORDER:
        if type_ not in ("integer", "number", "date", "datetime", "string"):
            raise _bad(leaf, f"'{op}' needs a number, date or string field; '{key}' is {type_}")
        cmp, value = _ORDER[op], _coerce(leaf, type_, raw)
        return _guard(lambda v: cmp(v, value), key)

    raise _bad(leaf, f"unknown operator '{op}'")


def _guard(test: Callable[[Any], bool], key: str) -> Predicate:
    """Unknown (null or absent) is false; an incomparable value is false."""

    def pred(r: Record) -> bool:
        v = r.get(key)
        if v is None:
            return False
        try:
            return bool(test(v))
        except TypeError:
            return False

    return pred


class _Source:
    """Builds one Python expression for the whole tree, so that a record costs one call
    plus one per leaf that needs a guard; `==`, `in`, `exists` and list `contains` are
    inlined (each is already false on null and cannot raise)."""

    def __init__(self, types: Mapping[str, str], at: dt.datetime):
        self.types, self.at = types, at
        self.names: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"_{len(self.names)}"
        self.names[name] = value
        return name

    def expr(self, c: Condition) -> str:
        if isinstance(c, Leaf):
            return self.leaf(c)
        if isinstance(c, Not):
            return f"(not {self.expr(c.item)})"
        if isinstance(c, (AllOf, AnyOf)):
            joiner = " and " if isinstance(c, AllOf) else " or "
            return "(" + joiner.join(self.expr(i) for i in c.items) + ")"
        raise TypeError(f"not a condition: {type(c).__name__}")

    def leaf(self, leaf: Leaf) -> str:
        pred = _leaf(leaf, self.types, self.at)  # validates the leaf in every case
        key = self.bind(leaf.field)
        type_, op = self.types[leaf.field], leaf.op
        if op == "==" and type_ != "list[string]":
            return f"(r.get({key}) == {self.bind(_coerce(leaf, type_, leaf.value))})"
        if op == "in" and type_ != "list[string]":
            values = frozenset(_coerce(leaf, type_, v) for v in leaf.value)
            return f"(r.get({key}) in {self.bind(values)})"
        if op == "exists" and leaf.value in (None, True):
            return f"(r.get({key}) is not None)"
        if op == "contains" and type_ == "list[string]":
            return f"({self.bind(_coerce(leaf, type_, leaf.value))} in (r.get({key}) or ()))"
        return f"{self.bind(pred)}(r)"


def _compile(c: Condition, types: Mapping[str, str], at: dt.datetime) -> Predicate:
    src = _Source(types, at)
    body = src.expr(c)
    namespace: dict[str, Any] = dict(src.names)
    exec(
        f"def segment(r):\n    return bool({body})\n", namespace
    )  # our own source, from a validated tree
    return namespace["segment"]


def compile_segment(
    segment: Segment, fields: Mapping[str, FieldSpec], at: dt.datetime
) -> Predicate:
    """A predicate over normalized records; raises UserError (with position) for a bad tree."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    if segment.where is None:
        return lambda r: True
    return _compile(segment.where, field_types(fields), at)


def matches(
    segment: Segment, record: Record, *, at: dt.datetime, fields: Mapping[str, FieldSpec]
) -> bool:
    """Does one normalized record (a persona's contact, say) satisfy the segment at `at`?"""
    return compile_segment(segment, fields, at)(record)
