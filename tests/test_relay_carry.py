"""The next message's envelope carried behind the current message's data (one write per
message, RFC 2920), against a real aiosmtpd server with TLS on 127.0.0.1: every fault
around the final dot leaves each message delivered once, and the carried envelope
never counts as a message sent.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session
from relay_helpers import MESSAGE, ScriptedHandler

from toolkit.relay import Outcome, RelayPool, RelaySettings, RetryPolicy, relay_tls_context
from toolkit.relay.local import LocalRelay

FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002)
FROM = "bounce@clinic.example.org"


class RcptScript(ScriptedHandler):
    """ScriptedHandler that also answers RCPT for some addresses from a script of its own
    (one reply per RCPT of that address, then the normal 250), and "store-then-drop" in
    its data script: the message stored, the connection dropped before the reply."""

    def __init__(self, script: list[str] | None = None, *,
                 rcpt: dict[str, list[str]] | None = None, **kwargs: tuple[str, ...]) -> None:
        super().__init__(script, **kwargs)
        self.rcpt = {k: list(v) for k, v in (rcpt or {}).items()}

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.rcpt.get(address):
            return self.rcpt[address].pop(0)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.script and self.script[0] == "store-then-drop":
            self.script.pop(0)
            self.data_calls += 1
            self.store(envelope)
            server.transport.abort()  # stored, and the reply never leaves
            return "250 2.0.0 never seen"
        return await super().handle_DATA(server, session, envelope)


def settings(relay: LocalRelay, *, pipelining: bool = True) -> RelaySettings:
    return RelaySettings(host="127.0.0.1", port=relay.port, tls="starttls",
                         tls_context=relay_tls_context(ca_file=relay.ca_file), timeout=10,
                         pipelining=pipelining)


def run_lane(s: RelaySettings, recipients: list[str], *, rate: float = 10_000,
             stop_after: int | None = None) -> tuple[list[Outcome], int, int]:
    """Send `recipients` in order over one lane, each carrying the next one's envelope, as
    the send's senders do. `stop_after`: leave after that many, the next envelope carried
    but its message never sent (as when a send stops). -> outcomes, carried, connections."""
    async def go() -> tuple[list[Outcome], int, int]:
        pool = RelayPool(s, max_connections=1, rate_per_second=rate, retry=FAST)
        async with pool, pool.lane() as lane:
            outcomes = []
            for i, r in enumerate(recipients[:stop_after]):
                then = (FROM, recipients[i + 1]) if i + 1 < len(recipients) else None
                outcomes.append(await lane.send(sender=FROM, recipient=r, data=MESSAGE,
                                                then=then))
            return outcomes, lane.carried, pool.connections_opened
    return asyncio.run(go())


def got(handler: ScriptedHandler) -> list[str]:
    return [r.rcpt_tos[0] for r in handler.received]


def rcpts(n: int) -> list[str]:
    return [f"p{i}@example.org" for i in range(n)]


def test_each_message_after_the_first_rides_behind_the_one_before(tmp_path: Path) -> None:
    handler = RcptScript()
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, carried, opened = run_lane(settings(relay), rcpts(6))
    assert [(o.status, o.code, o.attempts) for o in outcomes] == [("sent", 250, 1)] * 6
    assert (carried, opened) == (5, 1)
    assert got(handler) == rcpts(6)
    assert handler.received[3].data == MESSAGE


def test_without_pipelining_nothing_is_carried(tmp_path: Path) -> None:
    handler = RcptScript()
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, carried, opened = run_lane(settings(relay, pipelining=False), rcpts(4))
    assert [o.status for o in outcomes] == ["sent"] * 4
    assert (carried, opened) == (0, 1)
    assert got(handler) == rcpts(4)


def test_4xx_to_the_data_sends_it_again_and_the_carried_one_once(tmp_path: Path) -> None:
    # p0's data is deferred while p1's envelope is already behind it: p0 is sent again on a
    # new connection (closing abandons p1's opened transaction), p1 goes after, once
    handler = RcptScript(["451 4.3.0 try again later"])
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, carried, opened = run_lane(settings(relay), rcpts(3))
    assert [(o.status, o.attempts) for o in outcomes] == [("sent", 2), ("sent", 1), ("sent", 1)]
    assert opened == 2
    assert carried == 2  # p1 behind p0's second attempt, p2 behind p1
    assert got(handler) == rcpts(3)
    assert handler.data_calls == 4


def test_4xx_to_the_data_on_the_last_attempt_keeps_the_carried_envelope(tmp_path: Path) -> None:
    handler = RcptScript(["451 4.3.0 later"] * FAST.max_attempts)
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, carried, opened = run_lane(settings(relay), rcpts(2))
    assert [(o.status, o.code, o.attempts) for o in outcomes] == [("failed", 451, 3),
                                                                  ("sent", 250, 1)]
    assert (carried, opened) == (1, 3)
    assert got(handler) == ["p1@example.org"]


def test_5xx_to_the_data_keeps_the_connection_and_the_carried_envelope(tmp_path: Path) -> None:
    handler = RcptScript(refuse=("p0@example.org",))
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, carried, opened = run_lane(settings(relay), rcpts(3))
    assert [(o.status, o.code) for o in outcomes] == [("failed", 550), ("sent", 250),
                                                      ("sent", 250)]
    assert outcomes[0].text == "5.1.1 mailbox unavailable"
    assert (carried, opened) == (2, 1)
    assert got(handler) == ["p1@example.org", "p2@example.org"]


def test_drop_after_the_dot_leaves_it_unconfirmed_and_the_carried_one_goes_once(
        tmp_path: Path) -> None:
    # the connection dies with p0's data unanswered and p1's envelope in flight: p0 may or
    # may not be with the relay (unconfirmed, not sent again); p1 was never started: it
    # goes once, on a new connection, and p2 rides behind it
    handler = RcptScript(["drop"])
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, carried, opened = run_lane(settings(relay), rcpts(3))
    assert [(o.status, o.code, o.attempts) for o in outcomes] == [
        ("unconfirmed", None, 1), ("sent", 250, 1), ("sent", 250, 1)]
    assert (carried, opened) == (1, 2)
    assert got(handler) == ["p1@example.org", "p2@example.org"]


def test_stored_then_dropped_is_unconfirmed_and_nothing_is_doubled(tmp_path: Path) -> None:
    handler = RcptScript(["store-then-drop"])
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, carried, opened = run_lane(settings(relay), rcpts(3))
    assert [(o.status, o.attempts) for o in outcomes] == [("unconfirmed", 1), ("sent", 1),
                                                          ("sent", 1)]
    assert (carried, opened) == (1, 2)
    assert got(handler) == rcpts(3)  # p0 once (it was stored), p1 once


def test_carried_envelope_refused_at_rcpt_resets_and_the_next_one_goes(tmp_path: Path) -> None:
    handler = RcptScript(refuse_rcpt=("p1@example.org",))
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, carried, opened = run_lane(settings(relay), rcpts(3))
    assert [(o.status, o.code) for o in outcomes] == [("sent", 250), ("failed", 550),
                                                      ("sent", 250)]
    assert outcomes[1].text == "5.1.1 no such user"
    assert outcomes[1].attempts == 1
    # p2 rode behind p1's data? p1 had none: p2's envelope went out on its own
    assert (carried, opened) == (1, 1)
    assert got(handler) == ["p0@example.org", "p2@example.org"]


def test_carried_envelope_deferred_at_rcpt_is_retried(tmp_path: Path) -> None:
    handler = RcptScript(rcpt={"p1@example.org": ["451 4.7.1 greylisted"]})
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, carried, opened = run_lane(settings(relay), rcpts(3))
    assert [(o.status, o.attempts) for o in outcomes] == [("sent", 1), ("sent", 2), ("sent", 1)]
    assert (carried, opened) == (2, 1)
    assert got(handler) == rcpts(3)


def test_a_carried_envelope_whose_message_never_follows_sends_nothing(tmp_path: Path) -> None:
    # the sender stops after p0 (the send failed elsewhere): p1's envelope is out, the
    # server waits for its data; leaving closes the connection (no QUIT, which would be
    # read as message content) and the server has p0 only
    handler = RcptScript()
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, carried, opened = run_lane(settings(relay), rcpts(3), stop_after=1)
    assert [o.status for o in outcomes] == ["sent"]
    assert (carried, opened) == (0, 1)
    assert got(handler) == ["p0@example.org"]
    assert handler.data_calls == 1


def test_an_envelope_for_another_message_is_not_taken_for_this_one(tmp_path: Path) -> None:
    async def go(s: RelaySettings) -> list[Outcome]:
        pool = RelayPool(s, max_connections=1, rate_per_second=10_000, retry=FAST)
        async with pool, pool.lane() as lane:
            first = await lane.send(sender=FROM, recipient="p0@example.org", data=MESSAGE,
                                    then=(FROM, "p1@example.org"))
            other = await lane.send(sender=FROM, recipient="p2@example.org", data=MESSAGE)
            return [first, other]

    handler = RcptScript()
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes = asyncio.run(go(settings(relay)))
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert got(handler) == ["p0@example.org", "p2@example.org"]  # p1's envelope abandoned


def test_no_token_no_carrying(tmp_path: Path) -> None:
    # rate 2/s, a burst of 1: the first message takes the only token, so the second one's
    # envelope cannot ride behind its data; it waits for its token as a message must
    handler = RcptScript()
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        start = time.monotonic()
        outcomes, carried, _ = run_lane(settings(relay), rcpts(2), rate=2)
        elapsed = time.monotonic() - start
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert carried == 0
    assert elapsed >= 0.4
