"""The real `campaign send` against a relay that advertises PIPELINING, so that each
message's envelope rides behind the data of the one before it (one write per message):
the send's guarantees hold unchanged. A kill leaves at most one unconfirmed message per
connection; faults around the final dot leave every other recipient served once.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.smtp import SMTP, Envelope, Session
from conftest import run_campaign
from relay_helpers import BlockingHandler, ScriptedHandler
from send_helpers import (
    CAMPAIGN,
    contact,
    kill_when_blocked,
    ledger_states,
    sendable,
    write_contacts,
)

from toolkit.demo import approve_all


class Pipelining:
    """Says PIPELINING in its EHLO (aiosmtpd reads commands in order from its stream, so
    it serves pipelined ones; it only does not advertise it), and counts the messages
    whose data arrived with the next envelope behind it, in the same read."""

    carried = 0

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a handler's EHLO hook
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # the reader's buffer: what came in beyond the final dot (asyncio internals, for
        # the test only)
        if b"MAIL FROM:" in bytes(server._reader._buffer):  # type: ignore[attr-defined]
            self.carried += 1
        return await super().handle_DATA(server, session, envelope)  # type: ignore[misc]


class PipeliningScripted(Pipelining, ScriptedHandler):
    pass


class PipeliningBlocking(Pipelining, BlockingHandler):
    pass


def quick_retries(root: Path, tmp_path: Path) -> None:
    path = root / "toolkit.yaml"
    cfg = yaml.safe_load(path.read_text())
    for relay in cfg["relays"].values():
        relay.update(retry_attempts=3, retry_delay_seconds=0.01)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    approve_all(root, tmp_path / "keys")  # toolkit.yaml is part of the digest


def send(s: Any, *extra: str) -> subprocess.CompletedProcess[str]:
    r = run_campaign("send", CAMPAIGN, "--contacts", str(s.contacts), *extra, root=s.root,
                     env=s.env)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_envelopes_ride_behind_the_data_and_everyone_gets_one(tmp_path: Path) -> None:
    n = 30
    handler = PipeliningScripted()
    with sendable(tmp_path, n=n, handler=handler, max_connections=2) as s:
        r = send(s)
        assert r.returncode == 0, r.stderr
        assert f"sent {n}, failed 0, unconfirmed 0" in r.stdout
        per_recipient = Counter(m.rcpt_tos[0] for m in s.received)
        assert per_recipient == Counter({f"patient{i}@example.org": 1 for i in range(n)})
        assert ledger_states(s.root) == {"sent": n}
        # most messages' envelopes went out behind the data before them (the first of
        # each connection's cannot, nor one whose follower was not yet rendered)
        assert handler.carried >= n // 2, handler.carried
        assert run_campaign("audit", "verify", root=s.root, env=s.env).returncode == 0


def test_faults_at_the_dot_with_envelopes_behind_it(tmp_path: Path) -> None:
    # one data deferred (sent again on a new connection: the envelope behind it is
    # abandoned), one refused for good, one dropped unanswered (unconfirmed); the
    # envelopes in flight behind them belong to messages that are then sent once
    n = 24
    handler = PipeliningScripted(["451 4.3.0 try again later", "550 5.7.1 refused", "drop"])
    with sendable(tmp_path, n=n, handler=handler, max_connections=2, approve=False) as s:
        quick_retries(s.root, tmp_path)
        r = send(s)
        assert r.returncode == 0, r.stderr
        assert f"sent {n - 2}, failed 1, unconfirmed 1" in r.stdout
        assert "  failed 1: 550 5.7.1 refused" in r.stdout
        per_recipient = Counter(m.rcpt_tos[0] for m in s.received)
        assert len(per_recipient) == n - 2 and set(per_recipient.values()) == {1}
        assert ledger_states(s.root) == {"sent": n - 2, "failed": 1, "unconfirmed": 1}

        again = send(s, "--retry-unconfirmed")  # the refused one stays refused (5xx)
        assert "sent 1, failed 0, unconfirmed 0" in again.stdout
        per_recipient = Counter(m.rcpt_tos[0] for m in s.received)
        assert len(per_recipient) == n - 1 and set(per_recipient.values()) == {1}
        assert run_campaign("audit", "verify", root=s.root, env=s.env).returncode == 0


def test_killed_send_with_envelopes_behind_the_data(tmp_path: Path) -> None:
    """As tests/test_send_kill.py, with every message after the first on a connection
    carried: at the kill each connection has one message unanswered and the next one's
    envelope behind it; only the unanswered ones are `sending`, the next ones were never
    started and are sent by the resume, once."""
    n, limit, connections = 40, 10, 3
    handler = PipeliningBlocking(None, limit=limit, block_count=connections)
    with sendable(tmp_path, n=n, handler=handler, max_connections=connections) as s:
        args = ["send", CAMPAIGN, "--contacts", str(s.contacts)]
        at_kill = kill_when_blocked(s, handler, args)
        assert at_kill["sent"] == limit
        assert at_kill["sending"] == connections  # one in flight per connection, no more
        assert handler.carried >= 1
        s.relay.call(handler.release)

        resumed = run_campaign(*args, root=s.root, env=s.env)
        assert resumed.returncode == 0, resumed.stderr
        assert f"sent {n - limit - connections}, failed 0, unconfirmed 0" in resumed.stdout
        per_recipient = Counter(m.rcpt_tos[0] for m in s.received)
        assert set(per_recipient.values()) == {1}  # nobody twice
        assert len(per_recipient) == n - connections
        assert ledger_states(s.root) == {"sent": n - connections, "unconfirmed": connections}

        retried = run_campaign(*args, "--retry-unconfirmed", root=s.root, env=s.env)
        assert f"sent {connections}, failed 0" in retried.stdout
        per_recipient = Counter(m.rcpt_tos[0] for m in s.received)
    assert len(per_recipient) == n and set(per_recipient.values()) == {1}


def test_render_failure_between_carried_messages(tmp_path: Path) -> None:
    # a recipient that cannot be rendered sits between two that can: it is never
    # carried (it has no data), fails with its reason, and the others go once each
    records = [contact(i) for i in range(6)]
    records[2]["first_name"] = None  # the subject needs it
    handler = PipeliningScripted()
    with sendable(tmp_path, handler=handler, max_connections=1, records=records) as s:
        write_contacts(s.contacts, records)
        r = send(s)
        assert r.returncode == 0, r.stderr
        assert "sent 5, failed 1, unconfirmed 0" in r.stdout
        per_recipient = Counter(m.rcpt_tos[0] for m in s.received)
        assert len(per_recipient) == 5 and set(per_recipient.values()) == {1}
        assert "patient2@example.org" not in per_recipient
