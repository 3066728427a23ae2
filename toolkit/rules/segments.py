"""SEG-001: segment operators and values must fit the field's type (DESIGN.md §2 segments)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from toolkit.findings import Finding
from toolkit.lint import RepoContext
from toolkit.models import OPERATORS, Leaf
from toolkit.rules.base import finding

# the reserved contact keys a segment may filter on, with their types
RESERVED_TYPES = {
    "id": "string",
    "email": "email",
    "unencrypted_email_ok": "boolean",
    "no_email": "boolean",
}

ORDERED = ("integer", "number", "date", "datetime")
SCALAR = ("string", "email", "integer", "number", "boolean", "date", "datetime")
OPS_FOR_TYPE: dict[str, tuple[str, ...]] = {
    "==": (*SCALAR, "list[string]"),
    "!=": (*SCALAR, "list[string]"),
    "<": ORDERED,
    "<=": ORDERED,
    ">": ORDERED,
    ">=": ORDERED,
    "in": ("string", "email", "integer", "number"),
    "not in": ("string", "email", "integer", "number"),
    "contains": ("list[string]", "string"),
    "exists": (*SCALAR, "list[string]"),
    "within_days": ("date", "datetime"),
    "older_than_days": ("date", "datetime"),
}


def _is_date(v: Any, with_time: bool) -> bool:
    if isinstance(v, (dt.date, dt.datetime)):
        return True
    if isinstance(v, str):
        try:
            (dt.datetime if with_time else dt.date).fromisoformat(v)
        except ValueError:
            return False
        return True
    return False


def _fits(type_: str, v: Any) -> bool:
    if type_ in ("string", "email"):
        return isinstance(v, str)
    if type_ == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if type_ == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if type_ == "boolean":
        return isinstance(v, bool)
    if type_ in ("date", "datetime"):
        return _is_date(v, type_ == "datetime")
    if type_ == "list[string]":
        return isinstance(v, list) and all(isinstance(i, str) for i in v)
    return False


_EXPECT = {
    "string": "a string",
    "email": "an email address",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "date": "an ISO-8601 date (YYYY-MM-DD)",
    "datetime": "an ISO-8601 date-time",
    "list[string]": "a list of strings",
}


def _value_problem(op: str, type_: str, v: Any) -> str | None:
    """What is wrong with the value for this op on a field of this type (None: nothing)."""
    if op == "exists":
        return (
            None if v is None or isinstance(v, bool) else "'exists' takes no value (or true/false)"
        )
    if op in ("within_days", "older_than_days"):
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
        return None if ok else f"'{op}' takes a whole number of days (0 or more)"
    if op in ("in", "not in"):
        if not isinstance(v, list) or not v:
            return f"'{op}' takes a non-empty list of values"
        bad = next((i for i in v if not _fits(type_, i)), None)
        return None if bad is None else f"each value of '{op}' must be {_EXPECT[type_]}"
    if op == "contains":
        return None if isinstance(v, str) else "'contains' takes a string"
    if v is None:
        return f"'{op}' needs a value: {_EXPECT[type_]}"
    return None if _fits(type_, v) else f"the value must be {_EXPECT[type_]}"


def check_leaf(leaf: Leaf, type_: str) -> Iterator[tuple[str, object]]:
    if leaf.op not in OPERATORS:
        yield (
            f"unknown operator '{leaf.op}'; use one of: {', '.join(OPERATORS)}",
            leaf.loc.at("op"),
        )
        return
    allowed = OPS_FOR_TYPE[leaf.op]
    if type_ not in allowed:
        hint = (
            "use 'contains' for a list field"
            if type_ == "list[string]" and leaf.op in ("in", "not in")
            else f"'{leaf.op}' works on {', '.join(allowed)} fields"
        )
        yield (
            f"operator '{leaf.op}' does not fit field '{leaf.field}' of type {type_}; {hint}",
            leaf.loc.at("op"),
        )
        return
    problem = _value_problem(leaf.op, type_, leaf.value)
    if problem:
        yield (f"field '{leaf.field}' ({type_}): {problem}", leaf.loc.at("value"))


def check_segments(ctx: RepoContext) -> Iterator[Finding]:
    fields = ctx.repo.fields
    for _sid, seg in sorted(ctx.repo.segments.items()):
        for leaf in seg.leaves():
            spec = fields.get(leaf.field)
            type_ = spec.type if spec is not None else RESERVED_TYPES.get(leaf.field)
            if type_ is None:
                if (
                    leaf.op not in OPERATORS
                ):  # unknown field: CFG-002 reports it; the op still counts
                    type_ = "string"
                else:
                    continue
            for message, pos in check_leaf(leaf, type_):
                yield finding("SEG-001", message, pos)
