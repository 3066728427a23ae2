"""The real `campaign send` against a relay that fails in every way (tests/fault_relay.py).

For every fault: each recipient ends sent, failed with a reason, or reported
unconfirmed, in the ledger and in the summary line; a second send completes what is
left; and every message the relay accepted came over TLS.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_campaign
from fault_relay import FaultHandler, address, fault_sendable, ledger, send_args, states
from send_helpers import Sendable

from toolkit.loader import load_repo
from toolkit.relay.config import retry_for, settings_for

N = 6
# the relay advertises PIPELINING by default (the client then writes MAIL, RCPT and DATA
# together, and the next envelope behind a message's data); some faults run both ways
PIPELINING = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "serial"])


def send(s: Sendable, *extra: str) -> tuple[int, str]:
    r = run_campaign(*send_args(s, *extra), root=s.root, env=s.env)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stdout


def handler(s: Sendable) -> FaultHandler:
    h = s.relay.handler
    assert isinstance(h, FaultHandler)
    return h


def settled(s: Sendable, *, unconfirmed: int = 0) -> None:
    """After faults are cleared: one more send (with --retry-unconfirmed when some were
    reported unconfirmed) completes the campaign."""
    handler(s).clear()
    s.relay.every_connection = None  # type: ignore[attr-defined]
    s.relay.connections.clear()  # type: ignore[attr-defined]
    assert states(s)["unconfirmed"] == unconfirmed
    code, out = send(s, *(["--retry-unconfirmed"] if unconfirmed else []))
    assert code == 0, out
    # nothing left: a next send would skip every recipient
    assert set(states(s)) <= {"sent", "failed"}
    assert all(code is not None and code >= 500 for st, code, _ in ledger(s).values()
               if st == "failed")  # only permanent refusals stay failed


def all_tls(s: Sendable) -> None:
    assert handler(s).tls and all(handler(s).tls)  # no message without TLS


def everyone_once_over_tls(s: Sendable) -> None:
    """Every recipient received exactly one message, and every message came over TLS."""
    assert handler(s).delivered() == Counter({address(i): 1 for i in range(N)})
    all_tls(s)


@PIPELINING
def test_per_recipient_4xx_and_5xx(tmp_path: Path, pipelining: bool) -> None:
    with fault_sendable(tmp_path, n=N, pipelining=pipelining) as s:
        h = handler(s)
        h.add(address(0), "rcpt 550 5.1.1 no such user")
        h.add(address(1), "data 554 5.7.1 rejected by policy")
        h.always(address(2), "rcpt 451 4.2.0 mailbox busy")
        h.add(address(3), "data 452 4.3.1 insufficient storage")  # once, then accepted
        h.add(address(4), "data 421 4.3.2 closing")  # closes the connection; retried
        code, out = send(s)
        assert code == 0, out
        assert "sent 3, failed 3, unconfirmed 0" in out
        assert "  failed 1: 550 5.1.1 no such user" in out
        assert "  failed 1: 554 5.7.1 rejected by policy" in out
        assert "  failed 1: 451 4.2.0 mailbox busy" in out
        rows = ledger(s)
        assert rows[address(0)] == ("failed", 550, "5.1.1 no such user")
        assert rows[address(1)] == ("failed", 554, "5.7.1 rejected by policy")
        assert rows[address(2)] == ("failed", 451, "4.2.0 mailbox busy")
        assert [rows[address(i)][0] for i in (3, 4, 5)] == ["sent"] * 3
        assert h.rcpt_calls[address(2)] == 3  # retry_attempts
        assert h.rcpt_calls[address(0)] == 1  # a 5xx is never retried

        settled(s)
        assert states(s) == {"sent": 4, "failed": 2}  # the 4xx one went on the second send
        assert h.delivered() == Counter({address(i): 1 for i in range(2, N)})
        all_tls(s)


@PIPELINING
def test_connection_dropped_before_data(tmp_path: Path, pipelining: bool) -> None:
    with fault_sendable(tmp_path, n=N, pipelining=pipelining) as s:
        h = handler(s)
        h.add(address(1), "drop-rcpt")  # once: retried on a new connection
        # every attempt: failed, sent again later (when pipelined, a drop may also hit its
        # envelope written behind the last message's data: no attempt of its own)
        h.always(address(2), "drop-rcpt")
        code, out = send(s)
        assert code == 0, out
        assert "sent 5, failed 1, unconfirmed 0" in out
        state, code_, reason = ledger(s)[address(2)]
        assert (state, code_) == ("failed", None) and reason
        assert f"  failed 1: {reason}" in out
        assert ledger(s)[address(1)][0] == "sent"
        settled(s)
        everyone_once_over_tls(s)


def test_connection_dropped_during_data_is_unconfirmed(tmp_path: Path) -> None:
    """The client cannot tell a drop in the middle of the data from one after the relay
    took it: unconfirmed, sent again only on --retry-unconfirmed (here the relay had
    not taken it, so that makes one delivery)."""
    with fault_sendable(tmp_path, n=N) as s:
        h = handler(s)
        h.add(address(1), "drop-mid-data")
        code, out = send(s)
        assert code == 0, out
        assert "sent 5, failed 0, unconfirmed 1" in out
        assert ledger(s)[address(1)][0] == "unconfirmed"
        assert address(1) not in h.delivered()
        settled(s, unconfirmed=1)
        everyone_once_over_tls(s)


@PIPELINING
def test_accepted_then_dropped_before_the_reply_is_unconfirmed(tmp_path: Path,
                                                               pipelining: bool) -> None:
    """The relay holds the message but the answer never arrives: unconfirmed, never
    resent automatically. The one duplicate here is the operator's choice to resend
    with --retry-unconfirmed."""
    with fault_sendable(tmp_path, n=N, pipelining=pipelining) as s:
        h = handler(s)
        h.add(address(1), "accept-then-drop")
        code, out = send(s)
        assert code == 0, out
        assert "sent 5, failed 0, unconfirmed 1" in out
        assert ledger(s)[address(1)][0] == "unconfirmed"
        assert h.delivered() == Counter({address(i): 1 for i in range(N)})
        code, out = send(s)
        assert code == 0 and "sent 0, failed 0, unconfirmed 0" in out  # not resent
        settled(s, unconfirmed=1)
        assert h.delivered() == Counter({address(i): 2 if i == 1 else 1 for i in range(N)})
        all_tls(s)


def test_slow_replies_within_the_timeout(tmp_path: Path) -> None:
    with fault_sendable(tmp_path, n=N, timeout_seconds=10) as s:
        s.relay.every_connection = "slow"  # type: ignore[attr-defined]
        h = handler(s)
        for i in range(N):
            h.add(address(i), "slow-data")
        code, out = send(s)
        assert code == 0, out
        assert f"sent {N}, failed 0, unconfirmed 0" in out
        assert set(h.rcpt_calls.values()) == {1}  # no attempt given up on
        assert set(s.relay.opened) == {"slow"}  # type: ignore[attr-defined]
        everyone_once_over_tls(s)


def test_replies_that_never_come_time_out(tmp_path: Path) -> None:
    with fault_sendable(tmp_path, n=N, timeout_seconds=1) as s:
        h = handler(s)
        h.add(address(1), "hold-rcpt")  # before the data: retried on a new connection
        h.add(address(2), "hold-data")  # after it: unconfirmed
        start = time.monotonic()
        code, out = send(s)
        assert time.monotonic() - start < 20  # the configured 1 s, not the default 30 s
        assert code == 0, out
        assert "sent 5, failed 0, unconfirmed 1" in out
        assert ledger(s)[address(2)][0] == "unconfirmed"
        assert h.rcpt_calls[address(1)] == 2
        settled(s, unconfirmed=1)
        everyone_once_over_tls(s)


def test_greeting_that_never_comes(tmp_path: Path) -> None:
    with fault_sendable(tmp_path, n=N, timeout_seconds=0.5, retry_attempts=2) as s:
        s.relay.every_connection = "silent"  # type: ignore[attr-defined]
        start = time.monotonic()
        code, out = send(s)
        assert time.monotonic() - start < 20
        assert code == 1, out
        assert (f"  stopped early: relay 127.0.0.1:{s.relay.port}: cannot connect "
                "(SMTPConnectTimeoutError); gave up after 2 attempts; run send again to resume"
                in out)
        assert "sent 0, failed 0, unconfirmed 0" in out
        assert s.relay.opened == ["silent", "silent"]  # type: ignore[attr-defined]
        assert states(s) == {}
        settled(s)
        everyone_once_over_tls(s)


def test_relay_lost_mid_send_leaves_nothing_sending(tmp_path: Path) -> None:
    """The second connection is refused while the first holds a message: the send stops
    early, and the message in flight on the first is reported unconfirmed now, not
    left `sending` for the next send to find."""
    with fault_sendable(tmp_path, n=N, retry_attempts=1) as s:
        s.relay.connections.append(None)  # type: ignore[attr-defined]
        s.relay.every_connection = "refuse"  # type: ignore[attr-defined]
        handler(s).add(address(0), "hold-data")
        code, out = send(s)
        assert code == 1, out
        assert "  stopped early: relay 127.0.0.1:" in out
        rows = ledger(s)
        assert rows[address(0)][0] == "unconfirmed"
        # the message in hand on the refused connection (which one depends on how the
        # senders took them): failed without a code, sent again by the next send
        assert [r[:2] for r in rows.values() if r[0] == "failed"] == [("failed", None)]
        assert "sending" not in states(s)
        assert "sent 0, failed 1, unconfirmed 1" in out
        settled(s, unconfirmed=1)
        everyone_once_over_tls(s)


def test_starttls_handshake_that_fails(tmp_path: Path) -> None:
    with fault_sendable(tmp_path, n=N) as s:
        s.relay.every_connection = "bad-starttls"  # type: ignore[attr-defined]
        r = run_campaign(*send_args(s), root=s.root, env=s.env)
        assert r.returncode == 1
        assert r.stderr.strip() == (
            f"Error: refusing to send appointment-reminder: relay 127.0.0.1:{s.relay.port}: "
            "TLS handshake failed (WRONG_VERSION_NUMBER); nothing was sent")
        assert states(s) == {} and handler(s).received == []
        settled(s)
        everyone_once_over_tls(s)


def test_starttls_hangup_in_the_handshake(tmp_path: Path) -> None:
    with fault_sendable(tmp_path, n=N) as s:
        s.relay.every_connection = "starttls-hangup"  # type: ignore[attr-defined]
        code, out = send(s)
        # a failed connection, retried, then the send stops; never a plaintext fallback
        assert code == 1, out
        assert (f"  stopped early: relay 127.0.0.1:{s.relay.port}: cannot connect "
                "(SMTPServerDisconnected); gave up after 3 attempts; run send again to resume"
                in out)
        assert s.relay.opened == ["starttls-hangup"] * 3  # type: ignore[attr-defined]
        assert states(s) == {} and handler(s).received == []
        settled(s)
        everyone_once_over_tls(s)


def test_expired_certificate(tmp_path: Path) -> None:
    with fault_sendable(tmp_path, n=N) as s:
        s.relay.every_connection = "expired"  # type: ignore[attr-defined]
        r = run_campaign(*send_args(s), root=s.root, env=s.env)
        assert r.returncode == 1
        assert r.stderr.strip() == (
            f"Error: refusing to send appointment-reminder: relay 127.0.0.1:{s.relay.port}: TLS "
            "certificate not accepted (certificate has expired); check relays.<name>.host "
            "and ca_file; nothing was sent")
        assert states(s) == {} and handler(s).received == []
        settled(s)
        everyone_once_over_tls(s)


@pytest.mark.parametrize(("fault", "reason"), [
    ("expired", "TLS certificate not accepted (certificate has expired); check "
                "relays.<name>.host and ca_file"),
    ("no-starttls", "does not offer STARTTLS; refusing to send without TLS"),
])
def test_tls_lost_mid_send(tmp_path: Path, fault: str, reason: str) -> None:
    """After two messages the connection drops, and the relay's next connection has an
    expired certificate or no STARTTLS: the send stops; nothing goes in plaintext."""
    with fault_sendable(tmp_path, n=N, max_connections=1) as s:
        s.relay.connections.append(None)  # type: ignore[attr-defined]
        s.relay.every_connection = fault  # type: ignore[attr-defined]
        handler(s).add(address(2), "drop-rcpt")
        r = run_campaign(*send_args(s), root=s.root, env=s.env)
        assert r.returncode == 1
        sep = ":" if fault == "expired" else ""
        assert r.stderr.strip() == (
            f"Error: refusing to send appointment-reminder: relay 127.0.0.1:{s.relay.port}{sep} "
            f"{reason}; stopped after 2 sent; run send again to resume once the relay is "
            "fixed")
        rows = ledger(s)
        assert [rows[address(i)][0] for i in (0, 1)] == ["sent", "sent"]
        assert rows[address(2)][:2] == ("failed", None)
        assert "sending" not in states(s)
        settled(s)
        everyone_once_over_tls(s)


def test_tls_refused_on_a_new_connection_while_another_holds_a_message(
        tmp_path: Path) -> None:
    with fault_sendable(tmp_path, n=N) as s:
        s.relay.connections.append(None)  # type: ignore[attr-defined]
        s.relay.every_connection = "expired"  # type: ignore[attr-defined]
        handler(s).add(address(0), "hold-data")
        r = run_campaign(*send_args(s), root=s.root, env=s.env)
        assert r.returncode == 1
        assert r.stderr.strip() == (
            f"Error: refusing to send appointment-reminder: relay 127.0.0.1:{s.relay.port}: "
            "TLS certificate not accepted (certificate has expired); check "
            "relays.<name>.host and ca_file; stopped after 0 sent, 1 unconfirmed; run send "
            "again to resume once the relay is fixed")
        rows = ledger(s)
        assert rows[address(0)][0] == "unconfirmed"
        # the message in hand on the refused connection (which one depends on how the
        # senders took them): failed without a code, sent again by the next send
        assert [r[:2] for r in rows.values() if r[0] == "failed"] == [("failed", None)]
        assert "sending" not in states(s)
        settled(s, unconfirmed=1)
        everyone_once_over_tls(s)


def test_timeout_and_retries_come_from_toolkit_yaml(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with fault_sendable(tmp_path, timeout_seconds=2.5, retry_attempts=7,
                        retry_delay_seconds=0.25) as s:
        repo, _ = load_repo(s.root)
        for name, value in s.env.items():
            monkeypatch.setenv(name, value)
    assert repo.config is not None
    relay = repo.config.relays["default"]
    assert settings_for(relay, root=s.root).timeout == 2.5
    policy = retry_for(relay)
    assert (policy.max_attempts, policy.base_delay) == (7, 0.25)
    defaults = type(relay)(host="relay.example.org")
    assert (defaults.timeout_seconds, defaults.retry_attempts,
            defaults.retry_delay_seconds) == (30, 5, 0.5)
