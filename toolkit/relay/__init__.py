"""The wire: TLS-only SMTP to the relay, pooled, rate-limited, retried.

What a message is lives elsewhere (toolkit/message.py, toolkit/send/); this package
sees only envelope addresses and bytes.
"""

from __future__ import annotations

from toolkit.relay.config import settings_for
from toolkit.relay.connection import RelayConnection, RelaySettings, Reply
from toolkit.relay.errors import (
    RelayAuthError,
    RelayError,
    RelaySetupError,
    RelayUnavailableError,
    StartTLSNotOfferedError,
    TLSVerificationError,
)
from toolkit.relay.pool import Lane, Outcome, RelayPool, RetryPolicy, TokenBucket
from toolkit.relay.tls import relay_tls_context

__all__ = [
    "Lane",
    "Outcome",
    "RelayAuthError",
    "RelayConnection",
    "RelayError",
    "RelayPool",
    "RelaySettings",
    "RelaySetupError",
    "RelayUnavailableError",
    "Reply",
    "RetryPolicy",
    "StartTLSNotOfferedError",
    "TLSVerificationError",
    "TokenBucket",
    "relay_tls_context",
    "settings_for",
]
