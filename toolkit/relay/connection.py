"""One SMTP connection to the relay: TLS always (implicit or STARTTLS, never a
fallback), verified, then AUTH; then many messages over it.
"""

from __future__ import annotations

import asyncio
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
from toolkit.relay.replies import ReplyError, ReplyReader


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
    pipelining: bool | None = None  # None: when the server advertises it (tests force it)


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


_OK = ((250,), (250, 251), (354,))  # MAIL, RCPT, DATA
_NEEDS_SMTPUTF8 = ("5.6.7 the address needs SMTPUTF8 (RFC 6531), which the relay does not "
                   "offer")  # a local refusal, as the relay itself would give (RFC 6531 3.5)
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_UNCARRIABLE = re.compile(r"[\r\n\0<>]")  # in an address, would end or split the command


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
    # every line end is a CRLF exactly when the three counts agree: counting makes no
    # copies (the 20 KB messages workers build are all CRLF already)
    crlf = message.count(b"\r\n")
    if message.count(b"\n") != crlf or message.count(b"\r") != crlf:
        message = _LINE_ENDS.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if b"\r\n." in message:
        message = message.replace(b"\r\n.", b"\r\n..")
    if message.startswith(b"."):
        message = b"." + message
    return message + b".\r\n"


def _carriable(*addresses: str) -> bool:
    return not any(map(_UNCARRIABLE.search, addresses))


def _commands(sender: str, recipient: str) -> tuple[bytes, bytes, bytes]:
    utf8 = not (sender.isascii() and recipient.isascii())
    return (b"MAIL FROM:<" + sender.encode("utf-8") + (b"> SMTPUTF8\r\n" if utf8 else b">\r\n"),
            b"RCPT TO:<" + recipient.encode("utf-8") + b">\r\n", b"DATA\r\n")


def _envelope(sender: str, recipient: str) -> bytes:
    return b"".join(_commands(sender, recipient))


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
        self._transport: asyncio.Transport | None = None
        self._reader: ReplyReader | None = None
        self.pipelining = False
        self.smtputf8 = False  # the server takes non-ASCII addresses (RFC 6531)
        self._pending: tuple[str, str] | None = None
        self._in_data = False  # 354 received, the data not yet written
        self.messages = 0  # delivered over the current TCP connection (reuse, for tests and stats)

    @property
    def is_open(self) -> bool:
        return (self._transport is not None and not self._transport.is_closing()
                and self._reader is not None and self._reader.usable)

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
            pipelining = (smtp.supports_extension("pipelining") if s.pipelining is None
                          else s.pipelining)
            smtputf8 = smtp.supports_extension("smtputf8")
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
        # from here on, message traffic goes through our reply reader (see replies.py)
        transport = smtp.transport
        assert transport is not None
        reader = ReplyReader(asyncio.get_running_loop())
        reader.transport = transport
        transport.set_protocol(reader)
        self._smtp, self._transport, self._reader = smtp, transport, reader
        self.pipelining = pipelining
        self.smtputf8 = smtputf8
        self._pending = None
        self._in_data = False
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

    def _utf8_ok(self, sender: str, recipient: str) -> bool:
        return self.smtputf8 or (sender.isascii() and recipient.isascii())

    def can_carry(self, sender: str, recipient: str) -> bool:
        """Whether `data(then=(sender, recipient))` would write that envelope."""
        envelope = (sender, recipient)
        return self.pipelining and _carriable(*envelope) and self._utf8_ok(*envelope)

    @property
    def pending(self) -> tuple[str, str] | None:
        """The envelope (sender, recipient) written behind the last message's data
        (`data(then=...)`), whose replies are not read yet."""
        return self._pending

    async def deliver(self, sender: str, recipient: str, data: bytes, *,
                      stuffed: bool = False, then: tuple[str, str] | None = None) -> Reply:
        """One message: `envelope`, then `data`. A refusal is a Reply; a drop or timeout
        is ConnectionLost.

        `stuffed` data is already the DATA payload (see `dot_stuff`), so that the
        sending process does not pay for line-end and dot handling: workers do it."""
        reply = await self.envelope(sender, recipient)
        if reply is not None:
            return reply
        return await self.data(data if stuffed else dot_stuff(data), then=then)

    async def envelope(self, sender: str, recipient: str) -> Reply | None:
        """MAIL, RCPT and DATA (in one write when the server pipelines). None: the server
        answered 354 and waits for this message's data (`data`); a Reply: refused, and the
        transaction reset (or the connection closed when that is the only safe way).

        When this envelope already went out behind the last message's data (`pending`),
        only its replies are read: the message costs no write of its own here."""
        transport, reader = self._transport, self._reader
        assert transport is not None and reader is not None, "open() first"
        pending, self._pending = self._pending, None
        assert pending in (None, (sender, recipient)), "a pipelined envelope for another message"
        if pending is None and not _carriable(sender, recipient):
            return Reply(501, "address contains characters SMTP cannot carry")
        if pending is None and not self._utf8_ok(sender, recipient):
            return Reply(553, _NEEDS_SMTPUTF8)
        timeout = self.settings.timeout
        try:
            replies: list[tuple[int, str]] = []
            if pending is not None:
                replies = [await reader.reply(timeout) for _ in _OK]
            elif self.pipelining:
                transport.write(_envelope(sender, recipient))
                replies = [await reader.reply(timeout) for _ in _OK]
            else:
                for command, ok in zip(_commands(sender, recipient), _OK, strict=True):
                    transport.write(command)
                    replies.append(await reader.reply(timeout))
                    if replies[-1][0] not in ok:
                        break
        except ReplyError as exc:
            self.close()
            raise ConnectionLost(str(exc), after_data=False) from None
        for (code, text), ok in zip(replies, _OK, strict=False):
            if code not in ok:
                await self._abort(code, data_accepted=replies[-1][0] == 354)
                return Reply(code, text)
        self._in_data = True
        return None

    async def data(self, payload: bytes, *, then: tuple[str, str] | None = None) -> Reply:
        """The DATA payload of the message `envelope` opened (dot-stuffed, final dot
        included) and the server's reply to it.

        `then`, the next message's envelope (sender, recipient), goes out in the same
        write, behind the final dot, when the server pipelines (RFC 2920 allows commands
        after the end of the data in one group; the replies come back in order): the next
        message then needs one write instead of two. Only the envelope: the next
        message's data waits for its own `data` call (its ledger row must be durable
        first). Its replies are read by its `envelope` call; if this connection drops,
        that message was never started."""
        transport, reader = self._transport, self._reader
        assert transport is not None and reader is not None, "open() first"
        assert self._in_data, "envelope() first"
        self._in_data = False
        if then is not None and self.can_carry(*then):
            transport.writelines((payload, _envelope(*then)))  # one TLS flush, one send
            self._pending = then
        else:
            transport.write(payload)
        try:
            code, text = await reader.reply(self.settings.timeout)
        except ReplyError as exc:
            self.close()
            raise ConnectionLost(str(exc), after_data=True) from None
        if code == 421:
            self.close()
        elif 200 <= code < 300:
            self.messages += 1
        return Reply(code, text)

    async def _abort(self, code: int, *, data_accepted: bool) -> None:
        """After a refused MAIL, RCPT or DATA: reset the transaction, or drop the
        connection when that is the only safe way (421; DATA accepted anyway)."""
        if code == 421 or data_accepted or self._transport is None or self._reader is None:
            self.close()
            return
        try:
            self._transport.write(b"RSET\r\n")
            if (await self._reader.reply(self.settings.timeout))[0] != 250:
                self.close()
        except ReplyError:
            self.close()

    def close(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        elif self._transport is not None:
            self._transport.close()
        self._smtp = self._transport = self._reader = None
        self._pending = None
        self._in_data = False

    async def quit(self) -> None:
        # in (or possibly in, with a pipelined envelope's 354 unread) the data phase, QUIT
        # would be taken as message content: closing abandons the unfinished message
        if (self.is_open and self._pending is None and not self._in_data
                and self._transport is not None and self._reader is not None):
            with contextlib.suppress(ReplyError):
                self._transport.write(b"QUIT\r\n")
                await self._reader.reply(min(5.0, self.settings.timeout))
        self.close()
