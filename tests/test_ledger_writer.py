"""The ledger writer writes each group's audit entries before it commits the group's
ledger changes, and a failed audit write commits nothing and reaches every waiter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from toolkit.audit import AuditError, AuditLog
from toolkit.ledger import Change, Ledger
from toolkit.send.ledger_writer import LedgerWriter

KEY = b"k" * 32


class WatchedLedger(Ledger):
    """A real ledger that notes how many audit lines were on disk at each commit."""

    def __init__(self, state: Path, log: Path) -> None:
        super().__init__(state)
        self.log = log
        self.lines_at_commit: list[int] = []

    def apply(self, changes):  # type: ignore[no-untyped-def]
        self.lines_at_commit.append(len(self.log.read_bytes().splitlines()))
        super().apply(changes)


def _fields(audit: AuditLog, i: int) -> dict[str, object]:
    return {"campaign": "flu", "recipient": audit.pseudonym(f"p{i}@example.org"),
            "status": "sent", "code": 250, "attempts": 1, "smime": False}


def test_audit_entries_land_before_their_outcomes_commit(tmp_path: Path) -> None:
    audit = AuditLog.at(tmp_path / "audit.jsonl", tmp_path / "head.json", KEY)
    ledger = WatchedLedger(tmp_path, tmp_path / "audit.jsonl")

    async def main() -> None:
        writer = LedgerWriter(ledger, asyncio.get_running_loop(), audit)
        try:
            who = audit.pseudonym("p0@example.org")
            await writer.submit([Change("flu", who, "sending", "d")])
            await writer.submit([Change("flu", who, "sent", "d", 250, "ok")], [_fields(audit, 0)])
        finally:
            writer.close()

    asyncio.run(main())
    audit.close()
    assert ledger.lines_at_commit == [0, 1]
    assert ledger.counts("flu")["sent"] == 1
    ledger.close()


def test_a_failed_audit_write_commits_nothing(tmp_path: Path) -> None:
    audit = AuditLog.at(tmp_path / "audit.jsonl", tmp_path / "head.json", KEY)
    ledger = Ledger(tmp_path)
    who = audit.pseudonym("p0@example.org")
    ledger.apply([Change("flu", who, "sending", "d")])
    audit.close()  # every write now fails

    async def main() -> None:
        writer = LedgerWriter(ledger, asyncio.get_running_loop(), audit)
        try:
            with pytest.raises(AuditError, match="closed"):
                await writer.submit([Change("flu", who, "sent", "d", 250, "ok")],
                                    [_fields(audit, 0)])
        finally:
            writer.close()

    asyncio.run(main())
    assert ledger.state_of("flu", who) == "sending"  # so unconfirmed, never resent by default
    ledger.close()
