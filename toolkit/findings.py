"""The one Finding type that every rule yields and every renderer reads."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import NamedTuple


class Pos(NamedTuple):
    """A source position: path relative to the repository root, 1-based line and column."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    GATE = "gate"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    pos: Pos
    # None: the rule's severity from the registry (set by the lint engine);
    # a rule sets it only where RULES.md names another (CNT-001 identifiers: warning)
    severity: Severity | None = None
    campaign: str | None = None
    waived: bool = False
    waiver_reason: str | None = None

    @property
    def file(self) -> str:
        return self.pos.file

    @property
    def line(self) -> int:
        return self.pos.line

    @property
    def column(self) -> int:
        return self.pos.column

    def with_(self, **changes: object) -> Finding:
        return replace(self, **changes)

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.pos.file, self.pos.line, self.pos.column, self.rule, self.message)
