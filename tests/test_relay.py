"""The relay layer against a real aiosmtpd server with TLS (trustme) on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import trustme
from relay_helpers import MESSAGE, ScriptedHandler

from toolkit.relay import (
    RelayAuthError,
    RelayPool,
    RelaySettings,
    RetryPolicy,
    StartTLSNotOfferedError,
    TLSVerificationError,
    relay_tls_context,
)
from toolkit.relay.local import LocalRelay

FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002)


def settings(relay: LocalRelay, *, tls: str | None = None, ca_file: Path | None = None,
             host: str = "127.0.0.1", creds: tuple[str, str] | None = None,
             pipelining: bool | None = None) -> RelaySettings:
    tls = tls or ("implicit" if relay.tls == "implicit" else "starttls")
    return RelaySettings(host=host, port=relay.port, tls=tls,
                         tls_context=relay_tls_context(ca_file=ca_file or relay.ca_file),
                         username=creds[0] if creds else None, password=creds[1] if creds else None,
                         timeout=10, pipelining=pipelining)


# aiosmtpd does not advertise PIPELINING but reads commands one by one from its stream,
# so forcing it exercises the pipelined path (Postfix, in test_postfix.py, advertises it)
PIPELINING = pytest.mark.parametrize("pipelining", [False, True], ids=["serial", "pipelined"])


def send_all(s: RelaySettings, recipients: list[str], *, connections: int = 2,
             rate: float = 10_000, data: bytes = MESSAGE) -> tuple[list, int]:
    async def go() -> tuple[list, int]:
        async with RelayPool(s, max_connections=connections, rate_per_second=rate,
                             retry=FAST) as pool:
            outcomes = await asyncio.gather(*(
                pool.send(sender="bounce@clinic.example.org", recipient=r, data=data)
                for r in recipients))
            return outcomes, pool.connections_opened
    return asyncio.run(go())


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_delivers_over_tls_reusing_connections(tmp_path: Path, mode: str) -> None:
    with LocalRelay(tls=mode, workdir=tmp_path) as relay:
        rcpts = [f"p{i}@example.org" for i in range(20)]
        outcomes, opened = send_all(settings(relay), rcpts, connections=2)
    assert [o.status for o in outcomes] == ["sent"] * 20
    assert all(o.code == 250 and o.attempts == 1 for o in outcomes)
    assert opened <= 2  # 20 messages over at most 2 connections
    got = relay.handler.received
    assert sorted(r.rcpt_tos[0] for r in got) == sorted(rcpts)
    assert got[0].data == MESSAGE  # bytes intact, dot-stuffing undone by the server
    assert got[0].mail_from == "bounce@clinic.example.org"


def test_refuses_server_without_starttls(tmp_path: Path) -> None:
    with LocalRelay(tls="none", workdir=tmp_path) as relay, \
            pytest.raises(StartTLSNotOfferedError) as err:
        send_all(settings(relay, tls="starttls"), ["a@example.org"])
    assert str(err.value) == (f"relay 127.0.0.1:{relay.port} does not offer STARTTLS; "
                              "refusing to send without TLS")
    assert relay.handler.received == []


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_refuses_untrusted_certificate(tmp_path: Path, mode: str) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with LocalRelay(tls=mode, workdir=tmp_path) as relay, \
            pytest.raises(TLSVerificationError) as err:
        send_all(settings(relay, ca_file=other_ca), ["a@example.org"])
    assert err.value.reason == "unable to get local issuer certificate"
    assert str(err.value) == (f"relay 127.0.0.1:{relay.port}: TLS certificate not accepted "
                              "(unable to get local issuer certificate); "
                              "check relays.<name>.host and ca_file")
    assert relay.handler.received == []


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_refuses_wrong_host_name(tmp_path: Path, mode: str) -> None:
    with LocalRelay(tls=mode, workdir=tmp_path, cert_names=("relay.other.example",)) as relay, \
            pytest.raises(TLSVerificationError) as err:
        send_all(settings(relay), ["a@example.org"])
    assert err.value.reason.startswith("IP address mismatch")
    assert relay.handler.received == []


@PIPELINING
def test_451_then_success(tmp_path: Path, pipelining: bool) -> None:
    handler = ScriptedHandler(["451 4.3.0 try again later"])
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, _ = send_all(settings(relay, pipelining=pipelining), ["a@example.org"],
                               connections=1)
    assert outcomes[0].status == "sent"
    assert outcomes[0].attempts == 2
    assert len(handler.received) == 1


@PIPELINING
def test_4xx_gives_up_after_the_cap(tmp_path: Path, pipelining: bool) -> None:
    handler = ScriptedHandler(["451 4.3.0 later"] * 5)
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, _ = send_all(settings(relay, pipelining=pipelining), ["a@example.org"],
                               connections=1)
    assert (outcomes[0].status, outcomes[0].code, outcomes[0].attempts) == ("failed", 451, 3)
    assert handler.received == []


@PIPELINING
def test_550_recorded_as_failed_with_reply(tmp_path: Path, pipelining: bool) -> None:
    handler = ScriptedHandler(refuse=("gone@example.org",))
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, _ = send_all(settings(relay, pipelining=pipelining),
                               ["gone@example.org", "ok@example.org"], connections=1)
    assert (outcomes[0].status, outcomes[0].code) == ("failed", 550)
    assert outcomes[0].text == "5.1.1 mailbox unavailable"
    assert outcomes[0].attempts == 1  # permanent: never retried
    assert outcomes[1].status == "sent"  # the connection survives a refusal
    assert [r.rcpt_tos for r in handler.received] == [("ok@example.org",)]


@PIPELINING
def test_connection_dropped_after_the_data_is_unconfirmed_not_resent(tmp_path: Path,
                                                                     pipelining: bool) -> None:
    # the relay may have taken the message before the drop: resending could deliver it
    # twice, so it is unconfirmed (resent only on `send --retry-unconfirmed`)
    handler = ScriptedHandler(["drop"])
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, opened = send_all(settings(relay, pipelining=pipelining),
                                    ["a@example.org", "b@example.org"], connections=1)
    assert [(o.status, o.attempts) for o in outcomes] == [("unconfirmed", 1), ("sent", 1)]
    assert opened == 2  # the next message on a new connection
    assert [r.rcpt_tos for r in handler.received] == [("b@example.org",)]


def test_auth_with_credentials(tmp_path: Path) -> None:
    with LocalRelay(workdir=tmp_path, credentials=("relay-user", "s3cret")) as relay:
        outcomes, _ = send_all(settings(relay, creds=("relay-user", "s3cret")), ["a@example.org"])
    assert outcomes[0].status == "sent"
    assert relay.auth_attempts == [("relay-user", True)]


def test_auth_refused_is_a_setup_error_with_nothing_sent(tmp_path: Path) -> None:
    with LocalRelay(workdir=tmp_path, credentials=("relay-user", "s3cret")) as relay, \
            pytest.raises(RelayAuthError) as err:
        send_all(settings(relay, creds=("relay-user", "wrong")), ["a@example.org"])
    assert err.value.code == 535
    assert relay.handler.received == []


def test_rate_per_second_is_respected(tmp_path: Path) -> None:
    import time

    with LocalRelay(workdir=tmp_path) as relay:
        start = time.monotonic()
        outcomes, _ = send_all(settings(relay), [f"p{i}@example.org" for i in range(12)],
                               connections=4, rate=50)
        elapsed = time.monotonic() - start
    assert all(o.status == "sent" for o in outcomes)
    assert elapsed >= 0.14  # a burst of 5 tokens, then 50/s: 7 more messages take 140 ms


def test_unreachable_relay_is_unavailable_after_the_retries(tmp_path: Path) -> None:
    import socket

    from toolkit.relay import RelayUnavailableError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    dead = RelaySettings(host="127.0.0.1", port=port, tls="starttls",
                         tls_context=relay_tls_context(ca_file=ca), timeout=5)
    with pytest.raises(RelayUnavailableError) as err:
        send_all(dead, ["a@example.org"])
    assert err.value.attempts == FAST.max_attempts
    assert str(err.value) == (f"relay 127.0.0.1:{port}: cannot connect (SMTPConnectError); "
                              "gave up after 3 attempts")


@PIPELINING
def test_recipient_refused_at_rcpt_resets_and_keeps_the_connection(tmp_path: Path,
                                                                   pipelining: bool) -> None:
    handler = ScriptedHandler(refuse_rcpt=("gone@example.org",))
    with LocalRelay(handler=handler, workdir=tmp_path) as relay:
        outcomes, opened = send_all(settings(relay, pipelining=pipelining),
                                    ["gone@example.org", "ok@example.org"], connections=1)
    assert [(o.status, o.code) for o in outcomes] == [("failed", 550), ("sent", 250)]
    assert outcomes[0].text == "5.1.1 no such user"
    assert opened == 1
    assert [r.rcpt_tos for r in handler.received] == [("ok@example.org",)]
