"""The send ledger: one row per (campaign, recipient pseudonym) with its delivery state.

States: pending (admitted, not yet handed to the relay), sending (handed over; the
relay's answer not yet recorded), sent (the relay accepted it: 2xx), failed (refused,
or gave up on temporary failures: code and reply kept), unconfirmed (was `sending`
when a send died: the relay may or may not hold it).

Durability: SQLite in WAL mode with synchronous=FULL, so a commit is on disk (WAL
fsynced) before the caller goes on: `sending` before any message data leaves, `sent`
before the connection takes its next message. That survives a killed process and a
lost machine alike. Recipients appear only as keyed pseudonyms; no addresses here.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import CheckFailed

STATES = ("pending", "sending", "sent", "failed", "unconfirmed")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    campaign  TEXT NOT NULL,
    recipient TEXT NOT NULL,          -- keyed pseudonym, never an address
    digest    TEXT NOT NULL,          -- the approved content digest it was sent under
    state     TEXT NOT NULL CHECK (state IN ('pending','sending','sent','failed','unconfirmed')),
    code      INTEGER,                -- the relay's reply code, when there was one
    reply     TEXT,                   -- the relay's reply text (no message content)
    attempts  INTEGER NOT NULL DEFAULT 0,
    updated   TEXT NOT NULL,
    PRIMARY KEY (campaign, recipient)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Change:
    """One state change; a batch of them is committed as one transaction."""

    campaign: str
    recipient: str
    state: str
    digest: str = ""
    code: int | None = None
    reply: str | None = None


def _skips(state: str, code: int | None, retry_unconfirmed: bool) -> bool:
    if state == "failed":
        return code is not None and code >= 500
    if state == "unconfirmed":
        return not retry_unconfirmed
    return state in ("sent", "sending")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Ledger:
    FILE = "ledger.sqlite"

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / self.FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread off: the send hands the connection to its one writer thread
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # --- reading ---------------------------------------------------------------

    def state_of(self, campaign: str, recipient: str) -> str | None:
        row = self._db.execute("SELECT state FROM deliveries WHERE campaign=? AND recipient=?",
                               (campaign, recipient)).fetchone()
        return row[0] if row else None

    def already_sent(self, campaign: str, recipient: str, *,
                     retry_unconfirmed: bool = False) -> bool:
        """True when a send must not deliver to this recipient again (the plan's
        `already-sent`): the relay accepted it, refused it for good (5xx), or may have
        accepted it (unconfirmed, unless retry_unconfirmed). An indexed lookup, so that
        memory stays flat however many recipients the ledger holds."""
        row = self._db.execute("SELECT state, code FROM deliveries WHERE campaign=? AND "
                               "recipient=?", (campaign, recipient)).fetchone()
        return row is not None and _skips(row[0], row[1], retry_unconfirmed)

    def sent_set(self, campaign: str, *, include_unconfirmed: bool = True) -> set[str]:
        """Pseudonyms a send will not deliver to again: the plan's `already-sent`, so that
        the plan counts what the send does (see `skip_set`)."""
        return self.skip_set(campaign, retry_unconfirmed=not include_unconfirmed)

    def skip_set(self, campaign: str, *, retry_unconfirmed: bool = False) -> set[str]:
        """Pseudonyms a resumed send must not deliver to: accepted (sent), refused for
        good (failed with a 5xx), and unconfirmed unless retry_unconfirmed. Pending rows
        and temporary failures (4xx, dropped connections) are sent again."""
        rows = self._db.execute(
            "SELECT recipient, state, code FROM deliveries WHERE campaign=? "
            "AND state IN ('sent','failed','unconfirmed','sending')", (campaign,))
        return {r for r, state, code in rows if _skips(state, code, retry_unconfirmed)}

    def counts(self, campaign: str) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for state, n in self._db.execute(
                "SELECT state, count(*) FROM deliveries WHERE campaign=? GROUP BY state",
                (campaign,)):
            out[state] = n
        return out

    def rows(self, campaign: str) -> list[tuple[str, str, int | None, int]]:
        """(recipient, state, code, attempts), for reports and tests."""
        return list(self._db.execute(
            "SELECT recipient, state, code, attempts FROM deliveries WHERE campaign=? "
            "ORDER BY recipient", (campaign,)))

    # --- writing ---------------------------------------------------------------

    def recover(self, campaign: str) -> int:
        """At the start of a send (under the lock): rows a dead send left in `sending`
        become `unconfirmed`. Returns how many."""
        with self._tx():
            cur = self._db.execute(
                "UPDATE deliveries SET state='unconfirmed', updated=? "
                "WHERE campaign=? AND state='sending'", (_now(), campaign))
        return cur.rowcount

    def apply(self, changes: Iterable[Change]) -> None:
        """Commit a batch of state changes as one durable transaction."""
        now = _now()
        with self._tx():
            for c in changes:
                if c.state == "sending":
                    self._db.execute(
                        "INSERT INTO deliveries(campaign, recipient, digest, state, attempts, "
                        "updated) VALUES (?,?,?,'sending',1,?) ON CONFLICT(campaign, recipient) "
                        "DO UPDATE SET state='sending', digest=excluded.digest, code=NULL, "
                        "reply=NULL, attempts=attempts+1, updated=excluded.updated",
                        (c.campaign, c.recipient, c.digest, now))
                elif c.state == "pending":
                    self._db.execute(
                        "INSERT INTO deliveries(campaign, recipient, digest, state, updated) "
                        "VALUES (?,?,?,'pending',?) ON CONFLICT(campaign, recipient) DO NOTHING",
                        (c.campaign, c.recipient, c.digest, now))
                else:
                    self._db.execute(
                        "UPDATE deliveries SET state=?, code=?, reply=?, updated=? "
                        "WHERE campaign=? AND recipient=?",
                        (c.state, c.code, c.reply, now, c.campaign, c.recipient))

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


class SendLock:
    """One send per campaign at a time: an exclusive flock on a file in the state
    folder. The kernel drops it when the process dies, so a killed send never
    leaves a stale lock behind."""

    def __init__(self, state_dir: Path, campaign: str) -> None:
        self.path = Path(state_dir) / f"send-{campaign}.lock"
        self.campaign = campaign
        self._fd: int | None = None

    def __enter__(self) -> SendLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise CheckFailed(
                f"campaign {self.campaign} is already being sent by another process "
                f"(pid {holder}; lock {self.path}); wait for it to finish, then run send "
                "again to resume") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
