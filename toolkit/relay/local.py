"""A local TLS relay on loopback: aiosmtpd in a background thread, with a
certificate made on the fly by trustme, storing mail in a Maildir.

Used by `campaign demo` (no server to install) and by the tests, which pass their
own handlers to make the server refuse, defer, drop or block.
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# aiosmtpd itself sets the deprecated attribute on every successful AUTH, and warns
logging.getLogger("mail.log").addFilter(
    lambda record: "login_data is deprecated" not in record.getMessage())


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


class StoringHandler:
    """Accepts every message; keeps it in memory and, given a folder, in a Maildir."""

    def __init__(self, maildir: Path | None = None) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._maildir = mailbox.Maildir(maildir, create=True) if maildir else None

    def store(self, envelope: Envelope) -> None:
        item = Received(envelope.mail_from or "", tuple(envelope.rcpt_tos),
                        bytes(envelope.original_content or envelope.content or b""))
        with self._lock:
            self.received.append(item)
            if self._maildir is not None:
                self._maildir.add(item.data)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.store(envelope)
        return "250 2.0.0 Ok: queued"


class LocalRelay:
    """`with LocalRelay(tls="starttls") as relay:` then connect to 127.0.0.1:relay.port,
    trusting relay.ca_file. `tls="none"` is a server that offers no STARTTLS (for tests)."""

    def __init__(self, *, handler: Any | None = None,
                 tls: Literal["starttls", "implicit", "none"] = "starttls",
                 ca: trustme.CA | None = None,
                 cert_names: tuple[str, ...] = ("127.0.0.1", "localhost"),
                 credentials: tuple[str, str] | None = None, workdir: Path | None = None) -> None:
        self.handler = handler if handler is not None else StoringHandler()
        self.tls = tls
        self.ca = ca or trustme.CA()
        self.cert = self.ca.issue_cert(*cert_names)
        self.credentials = credentials
        self.workdir = workdir
        self.port = 0
        self.auth_attempts: list[tuple[str, bool]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ca_file: Path | None = None

    @property
    def ca_file(self) -> Path:
        """The CA that signed the server certificate, as PEM (written on first use)."""
        if self._ca_file is None:
            if self.workdir is None:
                raise ValueError("LocalRelay needs a workdir to write its CA file")
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._ca_file = self.workdir / "relay-ca.pem"
            self.ca.cert_pem.write_to_path(str(self._ca_file))
        return self._ca_file

    def _server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.cert.configure_cert(ctx)
        return ctx

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = False
        login = ""
        if isinstance(auth_data, LoginPassword) and self.credentials is not None:
            login = auth_data.login.decode("utf-8", "replace")
            ok = (login, auth_data.password.decode("utf-8", "replace")) == self.credentials
        self.auth_attempts.append((login, ok))
        return AuthResult(success=ok, handled=False)

    def _factory(self) -> Callable[[], SMTP]:
        kwargs: dict[str, Any] = {"hostname": "relay.localhost", "ident": "campaign local relay"}
        if self.tls == "starttls":
            kwargs.update(tls_context=self._server_context(), require_starttls=True)
        if self.credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=True)
        return lambda: SMTP(self.handler, **kwargs)

    def start(self) -> LocalRelay:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []
        ssl_ctx = self._server_context() if self.tls == "implicit" else None
        factory = self._factory()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                server = loop.run_until_complete(
                    loop.create_server(factory, "127.0.0.1", 0, ssl=ssl_ctx))
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            server.close()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="local-relay", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def call(self, fn: Callable[[], Any]) -> None:
        """Run fn in the server's loop (e.g. to release a blocked handler)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> LocalRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
