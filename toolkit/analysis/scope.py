"""The values the walker passes around: taint, field uses, and what a name can be bound
to inside a template (a macro, an imported module, a call block's caller)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from toolkit.findings import Pos

BUILTINS = ("sender", "organization", "campaign", "unsubscribe_url", "view_online_url", "now")
# Names Jinja itself provides (env.globals and the names it binds in loops, macros, blocks).
JINJA_NAMES = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace",
                         "loop", "caller", "varargs", "kwargs", "super", "self"})
CANNOT_FOLLOW = "cannot follow how contact data is used here; use contact.<field> directly"

FIELD_PROBLEM = "CNT-003"
SYNTAX = "CFG-001"
MISSING = "CFG-002"


@dataclass(frozen=True)
class Taint:
    fields: frozenset[str] = frozenset()
    builtins: frozenset[str] = frozenset()

    def __or__(self, other: Taint) -> Taint:
        if not other.fields and not other.builtins:
            return self
        if not self.fields and not self.builtins:
            return other
        return Taint(self.fields | other.fields, self.builtins | other.builtins)


CLEAN = Taint()


@dataclass(frozen=True)
class FieldUse:
    field: str
    pos: Pos
    part: str  # subject, preheader, template, from_name


@dataclass(eq=False)
class Macro:
    node: nodes.Macro
    file: str
    scope: dict[str, Any]  # the defining template's names (a live reference)


@dataclass(eq=False)
class Module:
    """An `{% import %}`ed template: its exported names."""

    scope: dict[str, Any]


@dataclass(eq=False)
class Caller:
    node: nodes.CallBlock
    file: str
    scope: dict[str, Any]


@dataclass
class Parsed:
    """One template file: its AST, or the syntax error that stopped the parse."""

    file: str
    lines: list[str]
    ast: nodes.Template | None = None
    error: tuple[str, int] | None = None


# (template name) -> Parsed, or None when the template does not exist
Resolver = Callable[[str], Parsed | None]
