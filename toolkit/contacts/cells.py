"""Text cells (CSV, SQLite TEXT columns) to typed values, by the field's declared type.

Conventions (docs/contacts.md): an empty cell is null; list fields are joined with
`|`; booleans are true/false, yes/no or 1/0; `authorizations` is a JSON string;
dates stay ISO-8601 text for the normalizer. Errors never quote the cell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import orjson

from toolkit.contact import Bad

_INT = re.compile(r"\s*[+-]?[0-9]+\s*\Z")
_TRUE = frozenset(("true", "yes", "1"))
_FALSE = frozenset(("false", "no", "0"))


def _integer(s: str) -> int:
    if not _INT.match(s):
        raise Bad("expected an integer")
    return int(s)


def _number(s: str) -> int | float:
    if _INT.match(s):
        return int(s)
    try:
        f = float(s)
    except ValueError:
        raise Bad("expected a number") from None
    if not math.isfinite(f) or "_" in s:
        raise Bad("expected a number")
    return f


def _boolean(s: str) -> bool:
    low = s.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise Bad("expected true or false")


def _strings(s: str) -> list[str]:
    return s.split("|")


def _authorizations(s: str) -> Any:
    try:
        return orjson.loads(s)
    except orjson.JSONDecodeError:
        raise Bad("expected a JSON list of {scope, granted_on, expires_on, revoked_on}") from None


def _text(s: str) -> str:
    return s


_BY_TYPE: dict[str, Callable[[str], Any]] = {
    "string": _text,
    "email": _text,
    "date": _text,
    "datetime": _text,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "list[string]": _strings,
    "authorizations": _authorizations,
}


def cell_converters(types: dict[str, str]) -> dict[str, Callable[[str], Any]]:
    """key -> converter of a non-empty text cell, for every key in `types`."""
    return {k: _BY_TYPE[t] for k, t in types.items()}
