"""Typed relay errors, with fields, in aiosmtplib's style.

A `RelaySetupError` means no message can go through this relay as configured
(TLS refused, certificate rejected, credentials refused): the send stops and
nothing is sent. Per-message outcomes are not exceptions: see `Outcome`.
"""

from __future__ import annotations


class RelayError(Exception):
    """Base class of every relay error."""


class RelaySetupError(RelayError):
    """The relay cannot be used as configured; retrying will not help."""

    def __init__(self, message: str, /, *, host: str, port: int) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.port = port


class StartTLSNotOfferedError(RelaySetupError):
    """The server did not advertise STARTTLS; we never fall back to plaintext."""


class TLSVerificationError(RelaySetupError):
    """The server's certificate or host name did not verify."""

    def __init__(self, message: str, /, *, host: str, port: int, reason: str) -> None:
        super().__init__(message, host=host, port=port)
        self.reason = reason


class RelayAuthError(RelaySetupError):
    """The server refused our credentials (or offers no AUTH while we have some)."""

    def __init__(self, message: str, /, *, host: str, port: int, code: int | None = None) -> None:
        super().__init__(message, host=host, port=port)
        self.code = code


class RelayUnavailableError(RelayError):
    """We could not connect (after retries): the send stops; the ledger keeps its place."""

    def __init__(self, message: str, /, *, host: str, port: int, attempts: int) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.port = port
        self.attempts = attempts
