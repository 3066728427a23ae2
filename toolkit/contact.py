"""A contact record checked against policy/fields.yaml and the reserved keys.

Used for personas (at load time) and for every record of a contact source.
Values are normalized: dates and datetimes parsed, `list[string]` as tuples.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from toolkit.models import FieldSpec

Problem = tuple[str, str]  # (key, message)


def _date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        return dt.date.fromisoformat(v)
    raise ValueError("expected an ISO-8601 date (YYYY-MM-DD)")


def _datetime(v: Any) -> dt.datetime:
    if isinstance(v, dt.datetime):
        d = v
    elif isinstance(v, dt.date):
        d = dt.datetime(v.year, v.month, v.day)
    elif isinstance(v, str):
        d = dt.datetime.fromisoformat(v)
    else:
        raise ValueError("expected an ISO-8601 date-time")
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)


def _convert(type_: str, v: Any) -> Any:
    if type_ in ("string", "email"):
        if not isinstance(v, str):
            raise ValueError("expected a string")
        return v
    if type_ == "integer":
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("expected an integer")
        return v
    if type_ == "number":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("expected a number")
        return v
    if type_ == "boolean":
        if not isinstance(v, bool):
            raise ValueError("expected true or false")
        return v
    if type_ == "date":
        return _date(v)
    if type_ == "datetime":
        return _datetime(v)
    if type_ == "list[string]":
        if not isinstance(v, (list, tuple)) or not all(isinstance(i, str) for i in v):
            raise ValueError("expected a list of strings")
        return tuple(v)
    raise ValueError(f"unknown field type {type_}")


def _authorizations(v: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(v, (list, tuple)):
        raise ValueError("expected a list of {scope, granted_on, expires_on, revoked_on}")
    out = []
    for a in v:
        if not isinstance(a, Mapping) or not isinstance(a.get("scope"), str):
            raise ValueError("each authorization needs a scope")
        extra = set(a) - {"scope", "granted_on", "expires_on", "revoked_on"}
        if extra:
            raise ValueError(f"unknown authorization key '{sorted(extra)[0]}'")
        out.append(
            {
                "scope": a["scope"],
                **{k: (_date(a[k]) if a.get(k) is not None else None) for k in ("granted_on", "expires_on", "revoked_on")},
            }
        )
    return tuple(out)


def normalize_contact(
    record: Mapping[str, Any], fields: Mapping[str, FieldSpec]
) -> tuple[dict[str, Any], list[Problem]]:
    """Return the normalized record and every problem found (never the values)."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in record.items():
        try:
            if value is None or value == "":
                out[key] = None
            elif key == "id":
                if not isinstance(value, (str, int)) or isinstance(value, bool):
                    raise ValueError("expected a string or integer id")
                out[key] = str(value)
            elif key == "email":
                out[key] = _convert("email", value)
            elif key == "authorizations":
                out[key] = _authorizations(value)
            elif key == "smime_certificate":
                out[key] = _convert("string", value)
            elif key in ("unencrypted_email_ok", "no_email"):
                out[key] = _convert("boolean", value)
            elif key in fields:
                out[key] = _convert(fields[key].type, value)
            else:
                problems.append((str(key), "not a field in policy/fields.yaml nor a reserved key"))
        except (ValueError, TypeError) as exc:
            problems.append((str(key), str(exc) if "expected" in str(exc) else f"bad {key}: expected its declared type"))
    return out, problems
