"""A fault-injecting relay for tests: toolkit.relay.local's aiosmtpd relay on loopback,
with a server that fails on cue and records whether each message it accepted came
over TLS.

The server does NOT insist on STARTTLS (AUTH is offered in plaintext too), so that
a client that skipped TLS would get its message through and be caught by `tls`
rather than saved by the server.

Per-recipient faults are steps, one per attempt (one RCPT), then normal delivery
(`add`), or one step for every attempt (`always`):
  "rcpt 451 4.2.0 ..." / "data 554 5.7.1 ..."  that reply at RCPT / to the final dot
  "drop-rcpt"         the connection dies at RCPT, before any data
  "drop-mid-data"     the connection dies after the first line of data
  "accept-then-drop"  the data is stored, then the connection dies before the reply
  "hold-rcpt" / "hold-data"  the reply never comes (the client's timeout must fire)
  "slow-data"         the reply to the final dot comes after `slow` seconds

Per-connection faults, for the next connections in order (`connections`), then
`every_connection` (None: normal):
  "silent"       accepts TCP, never greets
  "slow"         greets after the handler's `slow` seconds
  "refuse"       greets with 421
  "bad-starttls" answers STARTTLS with 220, then bytes that are not TLS
  "starttls-hangup"  answers STARTTLS with 220, then closes the connection mid-handshake
  "no-starttls"  does not offer STARTTLS (a downgrade)
  "expired"      STARTTLS with a certificate whose validity ended yesterday
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
import threading
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.smtp import SMTP, Envelope, Session
from send_helpers import CAMPAIGN, ENV, Sendable, contact, make_repo, write_contacts

from toolkit.demo import approve_all, point_relays
from toolkit.pseudonym import pseudonym
from toolkit.relay.local import LocalRelay, StoringHandler

# plaintext AUTH is this relay's point (see above): aiosmtpd logs a warning on each connection
logging.getLogger("mail.log").addFilter(
    lambda record: "auth_require_tls == False" not in record.getMessage())


def _drop(server: SMTP) -> None:
    """The connection dies here; the server reads no further (commands pipelined behind
    are not processed)."""
    server.transport.abort()
    server.transport = None


class FaultHandler(StoringHandler):
    def __init__(self) -> None:
        super().__init__()
        self.faults: dict[str, deque[str]] = {}
        self.sticky: dict[str, str] = {}  # a step for every attempt, after `faults`
        self.slow = 0.2
        self.pipelining = True  # advertised, as Postfix does: the client's pipelined path
        self.tls: list[bool] = []  # per stored message, in `received` order
        self.rcpt_calls: Counter[str] = Counter()

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.pipelining:  # aiosmtpd reads commands one by one, so it can say so
            responses.insert(-1, "250-PIPELINING")
        return responses

    def add(self, address: str, *steps: str) -> None:
        self.faults.setdefault(address, deque()).extend(steps)

    def always(self, address: str, step: str) -> None:
        self.sticky[address] = step

    def clear(self) -> None:
        self.faults.clear()
        self.sticky.clear()

    def delivered(self) -> Counter[str]:
        return Counter(r.rcpt_tos[0] for r in self.received)

    def keep(self, server: SMTP, envelope: Envelope) -> None:
        over_tls = server.transport.get_extra_info("ssl_object") is not None
        with self._lock:
            self.tls.append(over_tls)
        self.store(envelope)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        self.rcpt_calls[address] += 1
        steps = self.faults.get(address)
        step = steps.popleft() if steps else self.sticky.get(address, "")
        session.fault = step  # read again at DATA (FaultSMTP.smtp_DATA, handle_DATA)
        if step.startswith("rcpt "):
            return step.removeprefix("rcpt ")
        if step == "drop-rcpt":
            _drop(server)
            return "250 never seen"
        if step == "hold-rcpt":
            await asyncio.Event().wait()  # cancelled when the client closes
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        step = getattr(session, "fault", "")
        if step.startswith("data "):
            return step.removeprefix("data ")
        if step == "hold-data":
            await asyncio.Event().wait()
        if step == "slow-data":
            await asyncio.sleep(self.slow)  # the fault itself, not a wait for the test
        self.keep(server, envelope)
        if step == "accept-then-drop":
            _drop(server)
            return "250 never seen"
        return "250 2.0.0 Ok: queued"


class FaultSMTP(SMTP):
    def __init__(self, handler: Any, *, fault: str | None, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.fault = fault

    async def _handle_client(self) -> None:
        if self.fault == "silent":
            await asyncio.Event().wait()  # cancelled by connection_lost
        if self.fault == "slow":
            await asyncio.sleep(self.event_handler.slow)  # then greets
        if self.fault == "refuse":
            await self.push("421 4.3.2 service not available")
            self.transport.close()
            return
        await super()._handle_client()

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.fault in ("bad-starttls", "starttls-hangup"):
            await self.push("220 Ready to start TLS")
            await self._reader.read(1)  # the ClientHello: what follows answers it
            if self.fault == "starttls-hangup":
                self.transport.close()
                return
            self.transport.write(b"this is not a TLS handshake\r\n" * 4)
            await asyncio.Event().wait()  # until the client gives up and closes
        await super().smtp_STARTTLS(arg)

    async def smtp_DATA(self, arg: str) -> None:
        if getattr(self.session, "fault", "") == "drop-mid-data" and self.envelope.rcpt_tos:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")
            _drop(self)  # the rest of the data is not commands
            return
        await super().smtp_DATA(arg)


class FaultRelay(LocalRelay):
    """`with FaultRelay(workdir=...) as relay:` STARTTLS on 127.0.0.1:relay.port."""

    def __init__(self, *, handler: FaultHandler | None = None, **kwargs: Any) -> None:
        super().__init__(handler=handler or FaultHandler(), tls="starttls", **kwargs)
        self.connections: deque[str] = deque()
        self.every_connection: str | None = None
        self.opened: list[str | None] = []  # the fault each connection got, in order
        yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        self.expired = self.ca.issue_cert("127.0.0.1", "localhost",
                                          not_before=yesterday - dt.timedelta(days=90),
                                          not_after=yesterday)

    def _context(self, cert: Any) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        cert.configure_cert(ctx)
        return ctx

    def _factory(self) -> Callable[[], SMTP]:
        good, expired = self._context(self.cert), self._context(self.expired)
        lock = threading.Lock()

        def make() -> SMTP:
            with lock:
                fault = self.connections.popleft() if self.connections else self.every_connection
                self.opened.append(fault)
            tls = {"no-starttls": None, "expired": expired}.get(fault or "", good)
            with warnings.catch_warnings():  # plaintext AUTH is the point (see above)
                warnings.simplefilter("ignore")
                return FaultSMTP(self.handler, fault=fault, hostname="relay.localhost",
                                 ident="campaign fault relay", tls_context=tls,
                                 require_starttls=False, authenticator=self._authenticate,
                                 auth_required=True, auth_require_tls=False)
        return make


# --- a sendable repository pointed at a FaultRelay ----------------------------------------

FAST = {"timeout_seconds": 10, "retry_attempts": 3, "retry_delay_seconds": 0.01}


def tune_relays(root: Path, **keys: Any) -> None:
    path = root / "toolkit.yaml"
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    for relay in cfg["relays"].values():
        relay.update(keys)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")


@contextmanager
def fault_sendable(tmp_path: Path, *, n: int = 6, max_connections: int = 2,
                   handler: FaultHandler | None = None, pipelining: bool = True,
                   **relay_keys: Any) -> Iterator[Sendable]:
    """The scaffold campaign, approved, sending to `n` synthetic contacts through a
    FaultRelay; `relay_keys` override FAST in toolkit.yaml (before approval: the
    digest covers the relay's settings)."""
    root = make_repo(tmp_path / "repo")
    handler = handler or FaultHandler()
    handler.pipelining = pipelining
    with FaultRelay(handler=handler, credentials=(ENV["RELAY_USERNAME"], ENV["RELAY_PASSWORD"]),
                    workdir=tmp_path / "relay") as relay:
        point_relays(root, port=relay.port, ca_file=relay.ca_file,
                     max_connections=max_connections)
        tune_relays(root, **{**FAST, **relay_keys})
        approve_all(root, tmp_path / "keys")
        contacts = write_contacts(tmp_path / "contacts.jsonl", [contact(i) for i in range(n)])
        yield Sendable(root, relay, contacts, {**ENV, "CAMPAIGN_SEND_WORKERS": "0"})


def address(i: int) -> str:
    return contact(i)["email"]


def send_args(s: Sendable, *extra: str) -> list[str]:
    return ["send", CAMPAIGN, "--contacts", str(s.contacts), *extra]


def ledger(s: Sendable) -> dict[str, tuple[str, int | None, str | None]]:
    """address -> (state, code, reply) for every contact of `s` that has a row."""
    import json
    import sqlite3

    key = s.env["AUDIT_KEY"].encode("utf-8")
    emails = [json.loads(line)["email"] for line in s.contacts.read_text().splitlines()]
    db = sqlite3.connect(s.root / ".campaign" / "ledger.sqlite")
    try:
        rows = {r: (st, code, reply) for r, st, code, reply in db.execute(
            "SELECT recipient, state, code, reply FROM deliveries")}
    finally:
        db.close()
    return {e: rows[pseudonym(e, key)] for e in emails if pseudonym(e, key) in rows}


def states(s: Sendable) -> Counter[str]:
    return Counter(state for state, _, _ in ledger(s).values())


class KillSwitch(FaultHandler):
    """For kill tests: once `after` messages are stored, every further message is held
    at `stage` and never answered: "rcpt" (before its data), "data" (its data read, not
    stored) or "accepted" (stored, the 250 never sent). `tripped` is set once `hold`
    messages are held (one per connection): the moment to kill the sender."""

    STAGES = ("rcpt", "data", "accepted")

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.stage = ""
        self.after = self.hold = self.held = 0
        self.tripped = threading.Event()
        self.held_accepted: list[str] = []  # stored, never confirmed to the sender
        self._release = asyncio.Event()

    def arm(self, *, after: int, stage: str, hold: int) -> None:
        """From the test's thread, between sends."""
        assert stage in self.STAGES
        self.after, self.stage, self.hold, self.held = after, stage, hold, 0
        self.tripped = threading.Event()
        self._release = asyncio.Event()  # bound to the relay's loop at its first wait
        self.armed = True

    def disarm(self, relay: LocalRelay) -> None:
        self.armed = False
        relay.call(self._release.set)  # held handlers return (their connections are gone)

    def _holding(self, stage: str) -> bool:
        return self.armed and self.stage == stage and len(self.received) >= self.after

    async def _hold(self) -> None:
        self.held += 1
        if self.held >= self.hold:
            self.tripped.set()
        await self._release.wait()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self._holding("rcpt"):
            await self._hold()
            return "451 4.3.0 released"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._holding("data"):
            await self._hold()
            return "451 4.3.0 released"
        if self._holding("accepted"):
            self.keep(server, envelope)
            self.held_accepted.append(envelope.rcpt_tos[0])
            await self._hold()
            return "250 2.0.0 released"
        return await super().handle_DATA(server, session, envelope)
