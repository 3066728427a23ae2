"""The suppression list: who must not get which kind of message (CANSPAM-006).

One SQLite file in the state folder (`suppressions.sqlite3`). An entry holds a
lower-cased address, or only a recipient pseudonym (toolkit.pseudonym: HMAC of the
address under the audit key), which is what a one-click unsubscribe token carries.
Kinds: `commercial` (applies to commercial campaigns), `fundraising` (to fundraising
campaigns), `all` (to every campaign). Entries are never deleted by the toolkit:
an opt-out is honoured until someone with access to the state removes it on purpose.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from toolkit.pseudonym import normalize_address

KINDS = ("commercial", "fundraising", "all")
FILE_NAME = "suppressions.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
  id INTEGER PRIMARY KEY,
  address TEXT,
  pseudonym TEXT,
  kind TEXT NOT NULL CHECK (kind IN ('commercial', 'fundraising', 'all')),
  source TEXT NOT NULL,
  added_at TEXT NOT NULL,
  CHECK (address IS NOT NULL OR pseudonym IS NOT NULL)
);
CREATE UNIQUE INDEX IF NOT EXISTS suppressions_key
  ON suppressions (COALESCE(address, ''), COALESCE(pseudonym, ''), kind);
CREATE INDEX IF NOT EXISTS suppressions_pseudonym ON suppressions (pseudonym);
"""


def kinds_for(*, commercial: bool, fundraising: bool) -> tuple[str, ...]:
    """The suppression kinds that apply to a campaign."""
    kinds = ["all"]
    if commercial:
        kinds.append("commercial")
    if fundraising:
        kinds.append("fundraising")
    return tuple(kinds)


@dataclass(frozen=True)
class Entry:
    address: str | None
    pseudonym: str | None
    kind: str
    source: str
    added_at: str


@dataclass(frozen=True)
class Matcher:
    """A snapshot of the entries of some kinds, as sets, for per-record checks in a plan."""

    addresses: frozenset[str]
    pseudonyms: frozenset[str]

    @property
    def needs_pseudonym(self) -> bool:
        return bool(self.pseudonyms)

    def is_suppressed(self, address: str | None, pseudonym: str | None = None) -> bool:
        if address is not None and normalize_address(address) in self.addresses:
            return True
        return pseudonym is not None and pseudonym in self.pseudonyms


class SuppressionStore:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 30000")
        self._db.executescript(_SCHEMA)

    @classmethod
    def for_state(cls, state: Path) -> SuppressionStore:
        return cls(state / FILE_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SuppressionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(
        self,
        address: str | None = None,
        pseudonym: str | None = None,
        *,
        kind: str = "commercial",
        source: str = "cli",
    ) -> bool:
        """Add one entry; False when it was already there."""
        return self.add_many([(address, pseudonym)], kind=kind, source=source) == 1

    def add_many(
        self,
        entries: Iterable[tuple[str | None, str | None]],
        *,
        kind: str = "commercial",
        source: str = "cli",
    ) -> int:
        """Add entries in one transaction (all or none); returns how many were new."""
        if kind not in KINDS:
            raise ValueError(f"unknown suppression kind {kind!r}; use one of {', '.join(KINDS)}")
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        rows = []
        for address, pseudonym in entries:
            if address is None and pseudonym is None:
                raise ValueError("a suppression needs an address or a pseudonym")
            rows.append(
                (
                    normalize_address(address) if address is not None else None,
                    pseudonym,
                    kind,
                    source,
                    now,
                )
            )
        db = self._db
        before = db.total_changes
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR IGNORE INTO suppressions (address, pseudonym, kind, source, added_at)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return db.total_changes - before

    def is_suppressed(
        self, address: str | None, pseudonym: str | None, kinds: Iterable[str]
    ) -> bool:
        kinds = tuple(kinds)
        marks = ",".join("?" * len(kinds))
        if address is not None:
            row = self._db.execute(
                f"SELECT 1 FROM suppressions WHERE COALESCE(address, '') = ? "
                f"AND kind IN ({marks}) LIMIT 1",
                (normalize_address(address), *kinds),
            ).fetchone()
            if row:
                return True
        if pseudonym is not None:
            row = self._db.execute(
                f"SELECT 1 FROM suppressions WHERE pseudonym = ? AND kind IN ({marks}) LIMIT 1",
                (pseudonym, *kinds),
            ).fetchone()
            if row:
                return True
        return False

    def matcher(self, kinds: Iterable[str]) -> Matcher:
        kinds = tuple(kinds)
        marks = ",".join("?" * len(kinds))
        cur = self._db.execute(
            f"SELECT address, pseudonym FROM suppressions WHERE kind IN ({marks})", kinds
        )
        addresses: set[str] = set()
        pseudonyms: set[str] = set()
        for address, pseudonym in cur:
            if address is not None:
                addresses.add(address)
            if pseudonym is not None:
                pseudonyms.add(pseudonym)
        return Matcher(frozenset(addresses), frozenset(pseudonyms))

    def list(self) -> list[Entry]:
        cur = self._db.execute(
            "SELECT address, pseudonym, kind, source, added_at FROM suppressions "
            "ORDER BY COALESCE(address, pseudonym), kind"
        )
        return [Entry(*row) for row in cur]
