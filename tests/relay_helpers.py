"""Test handlers for toolkit.relay.local.LocalRelay: a server that defers, refuses,
drops or blocks on cue, so that relay behaviour is tested against real SMTP."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from toolkit.relay.local import StoringHandler

MESSAGE = (b"From: care@clinic.example.org\r\nTo: pat@example.org\r\nSubject: test\r\n"
           b"Message-ID: <t1@clinic.example.org>\r\n\r\nhello\r\n.leading dot\r\n")


class ScriptedHandler(StoringHandler):
    """Replies from a script (one entry per DATA, then 250), and 550 for refused addresses."""

    def __init__(self, script: list[str] | None = None, refuse: tuple[str, ...] = (),
                 refuse_rcpt: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.script = list(script or [])
        self.refuse = refuse
        self.refuse_rcpt = refuse_rcpt
        self.data_calls = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_calls += 1
        if any(r in envelope.rcpt_tos for r in self.refuse):
            return "550 5.1.1 mailbox unavailable"
        if self.script:
            step = self.script.pop(0)
            if step == "drop":
                server.transport.abort()  # the connection dies with the message unanswered
                return "250 2.0.0 never seen"
            return step
        self.store(envelope)
        return "250 2.0.0 Ok: queued"


class BlockingHandler(StoringHandler):
    """Stores `limit` messages, then holds every further DATA unanswered (and unstored).
    `blocked` is set once `block_count` connections are held: the moment to kill."""

    def __init__(self, maildir: Path | None, *, limit: int, block_count: int) -> None:
        super().__init__(maildir)
        self.limit = limit
        self.block_count = block_count
        self.held = 0
        self.blocked = threading.Event()
        self.active = True
        self._release: asyncio.Event | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.active and len(self.received) >= self.limit:
            if self._release is None:
                self._release = asyncio.Event()
            self.held += 1
            if self.held >= self.block_count:
                self.blocked.set()
            await self._release.wait()
            return "451 4.3.0 released"
        self.store(envelope)
        return "250 2.0.0 Ok: queued"

    def release(self) -> None:
        self.active = False
        if self._release is not None:
            self._release.set()
