"""A segment's condition tree in plain words, for reviewers:
"age at least 65 and care status is active and not deceased"."""

from __future__ import annotations

from typing import Any

from toolkit.models import AllOf, AnyOf, Condition, Leaf, Not

_OPS = {
    "==": "is", "!=": "is not", "<": "less than", "<=": "at most", ">": "more than",
    ">=": "at least", "in": "is one of", "not in": "is none of", "contains": "includes",
}
_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<", "in": "not in",
            "not in": "in"}


def _name(field: str) -> str:
    return field.replace("_", " ")


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value) or "(nothing)"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "empty"
    return str(value)


def _leaf(leaf: Leaf, negate: bool = False) -> str:
    name, op, value = _name(leaf.field), leaf.op, leaf.value
    if op in ("==", "!=") and isinstance(value, bool):
        positive = (op == "==") == value
        return name if positive != negate else f"not {name}"
    if op == "exists":
        known = value is not False
        return f"{name} is known" if known != negate else f"{name} is unknown"
    if op == "within_days":
        text = f"{name} within {_value(value)} days of the send date (before or after)"
        return f"not {text}" if negate else text
    if op == "older_than_days":
        text = f"{name} more than {_value(value)} days before the send date"
        return f"not {text}" if negate else text
    if negate:
        if op in _NEGATED:
            return f"{name} {_OPS[_NEGATED[op]]} {_value(value)}"
        return f"not ({name} {_OPS.get(op, op)} {_value(value)})"
    return f"{name} {_OPS.get(op, op)} {_value(value)}"


def describe(cond: Condition | None) -> str:
    """The condition in words; `everyone in the contact source` when there is none."""
    if cond is None:
        return "everyone in the contact source"
    return _describe(cond, top=True)


def _describe(cond: Condition, top: bool = False) -> str:
    if isinstance(cond, Leaf):
        return _leaf(cond)
    if isinstance(cond, Not):
        if isinstance(cond.item, Leaf):
            return _leaf(cond.item, negate=True)
        return f"not ({_describe(cond.item)})"
    if isinstance(cond, AllOf):
        text = " and ".join(_describe(c) for c in cond.items)
        return text if top or len(cond.items) == 1 else f"({text})"
    if isinstance(cond, AnyOf):
        text = " or ".join(_describe(c) for c in cond.items)
        return text if top or len(cond.items) == 1 else f"({text})"
    raise TypeError(f"not a condition: {type(cond).__name__}")
