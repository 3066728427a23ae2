"""One SMTP connection to the relay: TLS always (implicit or STARTTLS, never a
fallback), verified, then AUTH; then many messages over it.
"""

from __future__ import annotations

import contextlib
import re
import ssl
from dataclasses import dataclass, field

import aiosmtplib

from toolkit.relay.errors import (
    RelayAuthError,
    RelayError,
    StartTLSNotOfferedError,
    TLSVerificationError,
)


@dataclass(frozen=True)
class RelaySettings:
    host: str
    port: int
    tls: str  # "starttls" | "implicit"
    tls_context: ssl.SSLContext = field(repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    local_hostname: str | None = "campaign.localhost"


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.code < 300

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500


_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


class ConnectionLost(RelayError):
    """The connection dropped or timed out; whether the last message arrived is unknown
    only when the drop came after its data was sent (`after_data`)."""

    def __init__(self, message: str, /, *, after_data: bool) -> None:
        super().__init__(message)
        self.message = message
        self.after_data = after_data


class ConnectFailed(RelayError):
    """A transient failure to open a connection (refused, timeout, greeting refused)."""


def dot_stuff(message: bytes) -> bytes:
    """The DATA payload of a message: CRLF line ends, a leading dot doubled on every
    line (RFC 5321 4.5.2), and the terminating dot line."""
    if b"\n" in message.replace(b"\r\n", b"") or b"\r" in message.replace(b"\r\n", b""):
        message = _LINE_ENDS.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def _verification_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class RelayConnection:
    """Not shared between tasks: the pool hands each one to a single sender at a time."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self.messages = 0  # delivered over the current TCP connection (reuse, for tests and stats)

    @property
    def is_open(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    async def open(self) -> None:
        s = self.settings
        where = f"relay {s.host}:{s.port}"
        smtp = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=s.tls == "implicit",
                               start_tls=False, tls_context=s.tls_context, timeout=s.timeout,
                               local_hostname=s.local_hostname)
        try:
            await smtp.connect()
            if s.tls == "starttls":
                await smtp.ehlo()
                if not smtp.supports_extension("starttls"):
                    raise StartTLSNotOfferedError(
                        f"{where} does not offer STARTTLS; refusing to send without TLS",
                        host=s.host, port=s.port)
                await smtp.starttls(server_hostname=s.host)
            # a belt to the braces above: never talk MAIL FROM over a plaintext transport
            if smtp.get_transport_info("sslcontext") is None:
                raise StartTLSNotOfferedError(f"{where}: connection is not encrypted",
                                              host=s.host, port=s.port)
            await smtp.ehlo()
            if s.username is not None:
                await self._login(smtp)
        except RelayError:
            smtp.close()
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            bad = _verification_failure(exc)
            if bad is not None:
                raise TLSVerificationError(
                    f"{where}: TLS certificate not accepted ({bad.verify_message}); "
                    "check relays.<name>.host and ca_file", host=s.host, port=s.port,
                    reason=str(bad.verify_message)) from None
            if isinstance(exc, ssl.SSLError):
                raise TLSVerificationError(f"{where}: TLS handshake failed ({exc.reason})",
                                           host=s.host, port=s.port,
                                           reason=str(exc.reason)) from None
            raise ConnectFailed(f"{where}: cannot connect ({type(exc).__name__})") from exc
        self._smtp = smtp
        self.messages = 0

    async def _login(self, smtp: aiosmtplib.SMTP) -> None:
        s = self.settings
        if not smtp.supports_extension("auth"):
            raise RelayAuthError(
                f"relay {s.host}:{s.port} offers no AUTH but credentials are configured",
                host=s.host, port=s.port)
        try:
            await smtp.login(s.username or "", s.password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise RelayAuthError(f"relay {s.host}:{s.port} refused the credentials ({exc.code})",
                                 host=s.host, port=s.port, code=exc.code) from None

    async def deliver(self, sender: str, recipient: str, data: bytes, *,
                      stuffed: bool = False) -> Reply:
        """One message: MAIL, RCPT, DATA. A refusal is a Reply; a drop is ConnectionLost.

        `stuffed` data is already the DATA payload (see `dot_stuff`), so that the
        sending process does not pay for line-end and dot handling: workers do it."""
        smtp = self._smtp
        assert smtp is not None, "open() first"
        payload = data if stuffed else dot_stuff(data)
        in_data = False
        try:
            for command, ok in ((b"MAIL FROM:<" + sender.encode("utf-8") + b">", (250,)),
                                (b"RCPT TO:<" + recipient.encode("utf-8") + b">", (250, 251)),
                                (b"DATA", (354,))):
                response = await smtp.execute_command(command)
                if response.code not in ok:
                    await self._reset(response.code)
                    return Reply(response.code, response.message)
            in_data = True
            assert smtp.protocol is not None
            # no await between the write and the read: the reply cannot slip past us
            smtp.protocol.write(payload)
            response = await smtp.protocol.read_response(timeout=self.settings.timeout)
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.close()
            raise ConnectionLost(f"connection lost ({type(exc).__name__})",
                                 after_data=in_data) from None
        if response.code == 421:
            self.close()
        elif 200 <= response.code < 300:
            self.messages += 1
        return Reply(response.code, response.message)

    async def _reset(self, code: int) -> None:
        if code == 421:  # the server is closing this connection
            self.close()
            return
        try:
            assert self._smtp is not None
            await self._smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None

    async def quit(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._smtp.quit()
        self.close()
