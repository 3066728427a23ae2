"""Up to max_connections reused connections, a token bucket for rate_per_second,
and retries with backoff for temporary failures.

A sender holds one connection for as long as it sends (a `Lane`), so that the next
message's envelope can go out behind the current message's data, in the same write
(see `RelayConnection.data`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from toolkit.relay.connection import (
    ConnectFailed,
    ConnectionLost,
    RelayConnection,
    RelaySettings,
    dot_stuff,
)
from toolkit.relay.errors import RelayUnavailableError


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped in delay and in attempts."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # jitter: connections do not retry in step


@dataclass(frozen=True)
class Outcome:
    """What became of one message. `unconfirmed`: the connection dropped after its
    data went out, on the last attempt, so the relay may or may not hold it."""

    status: Literal["sent", "failed", "unconfirmed"]
    code: int | None
    text: str
    attempts: int


class TokenBucket:
    def __init__(self, rate: float, *, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.burst
        self._last = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:  # no await between test and take: the loop is single-threaded
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.rate)

    def try_take(self) -> bool:
        """A token if one is there now, without waiting."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class RelayPool:
    """`async with RelayPool(settings, ...) as pool: await pool.send(...)` from up to
    max_connections tasks at once. Entering opens one connection, so that a relay
    that refuses TLS or credentials stops the send before any message data."""

    def __init__(self, settings: RelaySettings, *, max_connections: int, rate_per_second: float,
                 retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self._bucket = TokenBucket(rate_per_second)
        self._slots: asyncio.Queue[RelayConnection] = asyncio.Queue()
        self._all = [RelayConnection(settings) for _ in range(max_connections)]
        for conn in self._all:
            self._slots.put_nowait(conn)
        self.connections_opened = 0

    async def __aenter__(self) -> RelayPool:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._open(self._all[0], attempt=attempt)
                return self
            except ConnectFailed as exc:
                if attempt >= self.retry.max_attempts:
                    raise self._unavailable(exc, attempt) from None
            await asyncio.sleep(self.retry.delay(attempt))

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.gather(*(c.quit() for c in self._all), return_exceptions=True)

    def _unavailable(self, exc: ConnectFailed, attempt: int) -> RelayUnavailableError:
        s = self.settings
        return RelayUnavailableError(f"{exc}; gave up after {attempt} attempts", host=s.host,
                                     port=s.port, attempts=attempt)

    async def _open(self, conn: RelayConnection, *, attempt: int) -> None:
        await conn.open()  # setup errors (TLS, AUTH) propagate: retrying cannot fix them
        self.connections_opened += 1

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[Lane]:
        """A connection of the pool for the caller alone until it leaves the block."""
        conn = await self._slots.get()
        try:
            yield Lane(self, conn)
        finally:
            self._slots.put_nowait(conn)

    async def send(self, *, sender: str, recipient: str, data: bytes,
                   stuffed: bool = False) -> Outcome:
        """One message on whichever connection is free (no envelope carried on)."""
        async with self.lane() as lane:
            return await lane.send(sender=sender, recipient=recipient, data=data,
                                   stuffed=stuffed)


class Lane:
    """One connection of the pool, held by one sender for many messages."""

    def __init__(self, pool: RelayPool, conn: RelayConnection) -> None:
        self.pool = pool
        self.conn = conn
        self.carried = 0  # envelopes that went out behind an earlier message's data

    async def send(self, *, sender: str, recipient: str, data: bytes, stuffed: bool = False,
                   then: tuple[str, str] | None = None) -> Outcome:
        """Deliver one message, retrying as the pool's policy says.

        `then`: the envelope (sender, recipient) of the message this lane sends next,
        written behind this message's data when the connection pipelines and the rate
        allows; the next `send` for that envelope then only reads its replies. If this
        message must be sent again (a 4xx to its data), the connection is closed first:
        the next message's transaction, already opened behind it, can only be abandoned
        that way, and nothing of its data was sent."""
        pool, conn = self.pool, self.conn
        payload = data if stuffed else dot_stuff(data)
        attempt = 0
        while True:
            attempt += 1
            carried = conn.is_open and conn.pending == (sender, recipient)
            if not carried:
                if conn.pending is not None:  # written for a message that did not follow
                    conn.close()
                await pool._bucket.take()  # a carried envelope took its token when it went out
            reply = None
            try:
                if not conn.is_open:
                    try:
                        await pool._open(conn, attempt=attempt)
                    except ConnectFailed as exc:
                        if attempt >= pool.retry.max_attempts:
                            raise pool._unavailable(exc, attempt) from None
                if conn.is_open:
                    if carried:
                        self.carried += 1
                    reply = await conn.envelope(sender, recipient)
                    if reply is None:
                        follow = (then if then is not None and conn.can_carry(*then)
                                  and pool._bucket.try_take() else None)
                        reply = await conn.data(payload, then=follow)
            except ConnectionLost as exc:
                # after the data, the relay may hold the message: resending could deliver
                # it twice, so it is unconfirmed at once (resent on --retry-unconfirmed)
                if exc.after_data or attempt >= pool.retry.max_attempts:
                    status = "unconfirmed" if exc.after_data else "failed"
                    return Outcome(status, None, exc.message, attempt)
            if reply is not None:
                if reply.accepted:
                    return Outcome("sent", reply.code, reply.text, attempt)
                if not reply.temporary or attempt >= pool.retry.max_attempts:
                    return Outcome("failed", reply.code, reply.text, attempt)
                if conn.pending is not None:  # sent again: the next one's envelope is in the way
                    conn.close()
            await asyncio.sleep(pool.retry.delay(attempt))
