"""The endpoint's side of the suppression store: one writer thread, group commit.

SQLite objects must stay in the thread that made them, and SQLite has one writer
anyway, so every store call runs on one dedicated thread. Requests that arrive
while a write is in progress are gathered and written together in the next
transaction (group commit): under load, one fsync serves many unsubscribes.
A request is answered only after the transaction holding it has committed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from toolkit.suppression import SuppressionStore

T = TypeVar("T")
Row = tuple[str, str, str]  # pseudonym, kind, source


class SuppressionWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="suppression")
        self._store: SuppressionStore | None = None
        self._pending: list[tuple[Row, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def _get(self) -> SuppressionStore:
        if self._store is None:
            from toolkit.suppression import SuppressionStore

            self._store = SuppressionStore(self.path)
        return self._store

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def suppress(self, pseudonym: str, kind: str, source: str) -> None:
        """Returns once the suppression is committed; raises what the store raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(((pseudonym, kind, source), done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            rows = [row for row, _ in batch]
            try:
                await self._run(lambda rows=rows: self._write(rows))  # type: ignore[misc]
            except Exception as exc:  # every waiter learns of it; the client may retry
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    def _write(self, rows: list[Row]) -> None:
        groups: dict[tuple[str, str], list[tuple[str | None, str | None]]] = defaultdict(list)
        for pseudonym, kind, source in rows:
            groups[(kind, source)].append((None, pseudonym))
        store = self._get()
        for (kind, source), entries in groups.items():
            store.add_many(entries, kind=kind, source=source)

    async def writable(self) -> bool:
        """Can the store take a write? Takes the write lock and releases it, writing nothing."""

        def probe() -> bool:
            self._get()  # creates the file and schema on first use
            con = sqlite3.connect(self.path, timeout=5)
            try:
                con.execute("BEGIN IMMEDIATE")
                con.rollback()
                return True
            finally:
                con.close()

        try:
            return await self._run(probe)
        except (sqlite3.Error, OSError):
            return False

    def close(self) -> None:
        def close_store() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        self._executor.submit(close_store)
        self._executor.shutdown(wait=True)
