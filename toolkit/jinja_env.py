"""The one Jinja2 environment: sandboxed, StrictUndefined, HTML autoescape.

The sandbox is toolkit.sandbox's: Jinja's, plus budgets on what one render may allocate
and compute (toolkit/limits.py), because templates come from pull requests.

A missing variable must fail the render, never reach a patient as an empty string.
Templates come from the repository's templates/ folder (partials under
templates/partials/, reached with {% include %} and {% import %}).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Undefined
from jinja2.exceptions import SecurityError, TemplateRuntimeError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing

from toolkit.sandbox import BoundedSandbox


class TemplateContact(dict[str, Any]):
    """The `contact` a template sees: the record without its null values, so that a null
    field is exactly as unknown as an absent one (DESIGN.md: "Any field may be null or
    absent: its value is unknown"). Printing it fails the render rather than showing
    "None" to a patient; templates guard optional fields with `is defined` or `default`."""

    @classmethod
    def of(cls, record: dict[str, Any]) -> TemplateContact:
        return cls((k, v) for k, v in record.items() if v is not None)


class ContactUndefined(StrictUndefined):
    """StrictUndefined whose message, for a contact field, says what to do about it."""

    __slots__ = ()

    def __init__(self, hint: str | None = None, obj: Any = missing, name: str | None = None,
                 exc: type[TemplateRuntimeError] = UndefinedError) -> None:
        # Jinja's sandbox refuses an internal attribute that exists, but leaves a missing
        # one (`range.__self__`) merely undefined: refuse both alike, so that lint reports
        # the template (toolkit.sandbox) whichever persona renders it
        if isinstance(name, str) and name.startswith("_"):
            exc = SecurityError
        super().__init__(hint, obj, name, exc)

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        if isinstance(self._undefined_obj, TemplateContact) and isinstance(
                self._undefined_name, str) and not self._undefined_name.startswith("_"):
            name = self._undefined_name
            return (f"contact.{name} is unknown (null or absent) for this recipient; guard it "
                    f"with {{% if contact.{name} is defined %}} or "
                    f"{{{{ contact.{name} | default(...) }}}}")
        return super()._undefined_message


_NO_KEY = ("a [...] lookup found no such key, or one the sandbox refuses; the key is not "
           "shown, as it may be contact data: test it with `in`, or add | default(...)")


class _Sandbox(BoundedSandbox):
    """Subscript errors never name the key: a template may look a value up in a table
    keyed by a contact field (`desks[contact.department]`), and the reason a message could
    not be made is printed and kept in the ledger."""

    def getitem(self, obj: Any, argument: Any) -> Any:
        rv = super().getitem(obj, argument)
        if isinstance(rv, Undefined) and rv._undefined_hint != _NO_KEY:
            return self.undefined(hint=_NO_KEY, obj=obj, name=argument,
                                  exc=rv._undefined_exception)
        return rv


def _date(value: object, fmt: str = "%B %-d, %Y") -> str:
    import datetime as dt

    if isinstance(value, (dt.date, dt.datetime)):
        return value.strftime(fmt)
    return str(value)


@lru_cache(maxsize=32)
def make_env(templates_dir: Path) -> SandboxedEnvironment:
    env = _Sandbox(
        loader=FileSystemLoader(str(templates_dir)),
        undefined=ContactUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["date"] = _date
    return env


def make_string_env() -> SandboxedEnvironment:
    """For subject and preheader: plain text, so no HTML escaping."""
    env = _Sandbox(undefined=ContactUndefined, autoescape=False)
    env.filters["date"] = _date
    return env
