"""A contact record checked against policy/fields.yaml and the reserved keys.

Used for personas (at load time) and for every record of a contact source, so it is
on the plan's hot path: `Normalizer` compiles the schema once into a key -> check
table and converts a record in place. Values are normalized: dates and datetimes
parsed (naive datetimes taken as UTC), `list[string]` as tuples, "" as null.
Problem messages name the key and the expected type, never the value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from toolkit.models import FieldSpec

Problem = tuple[str, str]  # (key, message)
Convert = Callable[[Any], Any]

_UTC = dt.UTC
_date_from = dt.date.fromisoformat
_datetime_from = dt.datetime.fromisoformat


class Bad(ValueError):
    """A value that does not fit its field; the message never quotes the value."""


_DATES: dict[str, dt.date] = {}  # dates repeat a lot in a contact file; bounded below


def _date(v: Any) -> dt.date:
    if type(v) is str:
        d = _DATES.get(v)
        if d is not None:
            return d
        try:
            d = _date_from(v)
        except ValueError:
            raise Bad("expected an ISO-8601 date (YYYY-MM-DD)") from None
        if len(_DATES) >= 4096:
            _DATES.clear()
        _DATES[v] = d
        return d
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    raise Bad("expected an ISO-8601 date (YYYY-MM-DD)")


def _datetime(v: Any) -> dt.datetime:
    if type(v) is str:
        try:
            d = _datetime_from(v)
        except ValueError:
            raise Bad("expected an ISO-8601 date-time") from None
    elif isinstance(v, dt.datetime):
        d = v
    elif isinstance(v, dt.date):
        d = dt.datetime(v.year, v.month, v.day)
    else:
        raise Bad("expected an ISO-8601 date-time")
    return d if d.tzinfo is not None else d.replace(tzinfo=_UTC)


def _string(v: Any) -> str:
    if type(v) is str or isinstance(v, str):
        return v
    raise Bad("expected a string")


def _integer(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise Bad("expected an integer")


def _number(v: Any) -> int | float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    raise Bad("expected a number")


def _boolean(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise Bad("expected true or false")


def _strings(v: Any) -> tuple[str, ...]:
    if isinstance(v, (list, tuple)):
        t = tuple(v)
        try:
            "".join(t)  # the quickest check that every item is a string (C speed)
        except TypeError:
            pass
        else:
            return t
    raise Bad("expected a list of strings")


def _id(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise Bad("expected a string or integer id")
    return str(v)


_AUTH_KEYS = frozenset(("scope", "granted_on", "expires_on", "revoked_on"))


def _authorizations(v: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(v, (list, tuple)):
        raise Bad("expected a list of {scope, granted_on, expires_on, revoked_on}")
    out = []
    for a in v:
        if (type(a) is not dict and not isinstance(a, Mapping)) or type(a.get("scope")) is not str:
            raise Bad("each authorization needs a scope")
        if len(a) > 4 or not _AUTH_KEYS.issuperset(a):
            extra = sorted(str(k) for k in set(a) - _AUTH_KEYS)[0]
            raise Bad(f"unknown authorization key '{extra[:40]}'")
        g, e, r = a.get("granted_on"), a.get("expires_on"), a.get("revoked_on")
        out.append(
            {
                "scope": a["scope"],
                "granted_on": None if g is None or g == "" else _date(g),
                "expires_on": None if e is None or e == "" else _date(e),
                "revoked_on": None if r is None or r == "" else _date(r),
            }
        )
    return tuple(out)


# Types whose valid values need no conversion: the hot loop only checks `type(v) is T`.
_PLAIN: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "email": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "string": _string,
    "email": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "list[string]": _strings,
}
# Reserved keys have fixed types whatever fields.yaml says.
_RESERVED: dict[str, Callable[[Any], Any]] = {
    "id": _id,
    "email": _string,
    "authorizations": _authorizations,
    "smime_certificate": _string,
    "unencrypted_email_ok": _boolean,
    "no_email": _boolean,
}
_RESERVED_PLAIN: dict[str, tuple[type, ...]] = {
    "email": (str,),
    "smime_certificate": (str,),
    "unencrypted_email_ok": (bool,),
    "no_email": (bool,),
}


def field_types(fields: Mapping[str, FieldSpec]) -> dict[str, str]:
    """Every key a record may carry, with its type (reserved keys included)."""
    types = {k: f.type for k, f in fields.items()}
    types.update(
        {
            "id": "string",
            "email": "email",
            "authorizations": "authorizations",
            "smime_certificate": "string",
            "unencrypted_email_ok": "boolean",
            "no_email": "boolean",
        }
    )
    return types


class Normalizer:
    """The schema compiled once; `first_problem(record)` converts a record in place.

    Records of one source mostly share a few shapes (the same keys, with values of the
    same types). The work a shape needs (which keys to convert, or its problem) is
    worked out once and kept in a bounded cache, so a record costs one dictionary
    lookup plus the conversions its values really need (dates, lists).
    """

    _MAX_SHAPES = 4096

    def __init__(self, fields: Mapping[str, FieldSpec]):
        self.plain: dict[str, tuple[type, ...]] = {}
        self.convert: dict[str, Callable[[Any], Any]] = {}
        for key, spec in fields.items():
            if key in _RESERVED:
                continue
            if spec.type in _PLAIN:
                self.plain[key] = _PLAIN[spec.type]
            self.convert[key] = _CONVERT[spec.type]
        self.plain.update(_RESERVED_PLAIN)
        self.plain["id"] = (str,)
        self.convert.update(_RESERVED)
        self._shapes: dict[tuple[Any, ...], Any] = {}

    def _shape_work(self, record: dict[str, Any]) -> tuple[tuple[str, Convert], ...] | Problem:
        todo = []
        for key, v in record.items():
            if v is None or type(v) in self.plain.get(key, ()):
                continue
            conv = self.convert.get(key)
            if conv is None:
                return (str(key)[:40], "not a field in policy/fields.yaml nor a reserved key")
            todo.append((key, conv))
        return tuple(todo)

    def first_problem(self, record: dict[str, Any], maybe_empty: bool = True) -> Problem | None:
        """Normalize `record` in place; return its first problem (key, message) or None.

        `maybe_empty=False` is the caller's promise that no value is "" (a JSON line
        without `""` in it, say), which saves a scan of the values."""
        values = record.values()
        if maybe_empty and "" in values:  # empty means unknown, as null does
            for key, v in record.items():
                if v == "" and type(v) is str:
                    record[key] = None
        shape = (*record, *map(type, values))  # keys then value types: one flat tuple
        work = self._shapes.get(shape)
        if work is None:
            if len(self._shapes) >= self._MAX_SHAPES:
                self._shapes.clear()
            work = self._shapes[shape] = self._shape_work(record)
        if work and type(work[0]) is str:  # the shape's problem (key, message)
            return work  # type: ignore[return-value]
        for key, conv in work:
            try:
                record[key] = conv(record[key])
            except Bad as exc:
                return (key, str(exc))
            except (ValueError, TypeError, OverflowError):
                return (key, f"bad {key}: expected its declared type")
        return None

    def all_problems(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        out: dict[str, Any] = {}
        problems: list[Problem] = []
        for key, value in record.items():
            one = {key: value}
            p = self.first_problem(one)
            if p is None:
                out[key] = one[key]
            else:
                problems.append(p)
        return out, problems


def normalize_contact(
    record: Mapping[str, Any], fields: Mapping[str, FieldSpec]
) -> tuple[dict[str, Any], list[Problem]]:
    """Return the normalized record and every problem found (never the values)."""
    return Normalizer(fields).all_problems(record)
