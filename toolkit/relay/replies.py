"""SMTP replies read off an established connection, in order, pipelining-safe.

aiosmtplib sets the connection up (TLS, STARTTLS, EHLO, AUTH); then this protocol
takes the transport over for the message traffic, because aiosmtplib reads one
reply per write and cannot pipeline (RFC 2920): MAIL, RCPT and DATA in one write
halve the writes per message, and on loopback each write costs the sender the
receiver's TCP work too.
"""

from __future__ import annotations

import asyncio
from collections import deque

MAX_REPLY = 64 * 1024


class ReplyError(ConnectionError):
    """The connection closed, timed out or spoke something that is not SMTP."""


class ReplyReader(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._lines: list[bytes] = []
        self._ready: deque[tuple[int, str]] = deque()
        self._waiters: deque[asyncio.Future[tuple[int, str]]] = deque()
        self._error: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # pragma: no cover
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > MAX_REPLY:
            self._fail(ReplyError("reply too long"))
            return
        while (end := self._buf.find(b"\n")) >= 0:
            line = bytes(self._buf[:end + 1])
            del self._buf[:end + 1]
            try:
                code = int(line[:3])
            except ValueError:
                self._fail(ReplyError("malformed SMTP reply"))
                return
            self._lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                text = b"\n".join(self._lines).decode("utf-8", "replace")
                self._lines = []
                self._deliver((code, text))

    def _deliver(self, reply: tuple[int, str]) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(reply)
                return
        self._ready.append(reply)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool:
        self._fail(ReplyError("connection closed by the server"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ReplyError(f"connection lost ({type(exc).__name__})" if exc
                              else "connection closed"))

    @property
    def usable(self) -> bool:
        return self._error is None

    async def reply(self, timeout: float) -> tuple[int, str]:
        if self._ready:
            return self._ready.popleft()
        if self._error is not None:
            raise self._error
        fut: asyncio.Future[tuple[int, str]] = self.loop.create_future()
        self._waiters.append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            # a reply we gave up on could pair with the next command: never reuse this
            self._fail(ReplyError("timed out waiting for the server"))
            raise self._error from None  # type: ignore[misc]
