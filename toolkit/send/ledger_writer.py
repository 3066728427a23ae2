"""Group commit for the ledger: state changes from many connections, each awaited
until durable, committed together by one thread.

Every caller waits for the commit that holds its change before it goes on (no
message data before its `sending` is on disk; no next message on a connection
before the last one's `sent` is). Changes that arrive while a commit (an fsync) is
in progress share the next one, so 16 connections cost far fewer than 16 fsyncs.

The audit log's `recipient` entries ride along: a change may carry the audit entries
that account for it, and the thread writes every entry of a group (one lock, one
write) before it commits the group's changes, so each recipient's audit entry is in
the log before its ledger outcome, as before. A failed audit write commits nothing
and is reported to every waiter: the send stops. Doing this here, not on the event
loop's thread, also takes the JSON, the HMAC and four system calls per message off
that thread, which each had to win the GIL back from this one.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

from toolkit.audit import AuditLog
from toolkit.ledger import Change, Ledger

_STOP = object()


class LedgerWriter:
    def __init__(self, ledger: Ledger, loop: asyncio.AbstractEventLoop,
                 audit: AuditLog | None = None) -> None:
        self.ledger = ledger
        self.audit = audit
        self.loop = loop
        self.commits = 0
        self.changes = 0
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, changes: list[Change],
               audit: list[dict[str, Any]] | None = None) -> asyncio.Future[None]:
        """`audit`: fields of `recipient` audit entries written before `changes` commit."""
        fut: asyncio.Future[None] = self.loop.create_future()
        self._q.put((changes, audit, fut))
        return fut

    def close(self) -> None:
        self._q.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._q.get()]
            while True:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            if _STOP in items:
                stop = True
                items = [i for i in items if i is not _STOP]
            if not items:
                continue
            batch = [c for changes, _, _ in items for c in changes]
            entries = [e for _, audit, _ in items if audit for e in audit]
            error: BaseException | None = None
            try:
                if entries:
                    assert self.audit is not None, "audit entries need the writer's AuditLog"
                    self.audit.append_many("recipient", entries)
                self.ledger.apply(batch)
                self.commits += 1
                self.changes += len(batch)
            except BaseException as exc:  # reported to every waiter: the send must stop
                error = exc
            # one wake-up of the event loop per commit, not per change
            self.loop.call_soon_threadsafe(_settle, [fut for _, _, fut in items], error)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futures:
        if fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)
