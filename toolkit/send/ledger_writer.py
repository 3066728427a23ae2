"""Group commit for the ledger: state changes from many connections, each awaited
until durable, committed together by one thread.

Every caller waits for the commit that holds its change before it goes on (no
message data before its `sending` is on disk; no next message on a connection
before the last one's `sent` is). Changes that arrive while a commit (an fsync) is
in progress share the next one, so 16 connections cost far fewer than 16 fsyncs.
"""

from __future__ import annotations

import asyncio
import queue
import threading

from toolkit.ledger import Change, Ledger

_STOP = object()


class LedgerWriter:
    def __init__(self, ledger: Ledger, loop: asyncio.AbstractEventLoop) -> None:
        self.ledger = ledger
        self.loop = loop
        self.commits = 0
        self.changes = 0
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, changes: list[Change]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = self.loop.create_future()
        self._q.put((changes, fut))
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
            batch = [c for changes, _ in items for c in changes]
            error: BaseException | None = None
            try:
                self.ledger.apply(batch)
                self.commits += 1
                self.changes += len(batch)
            except BaseException as exc:  # reported to every waiter: the send must stop
                error = exc
            # one wake-up of the event loop per commit, not per change
            self.loop.call_soon_threadsafe(_settle, [fut for _, fut in items], error)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futures:
        if fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)
