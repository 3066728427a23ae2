"""RelaySettings and RetryPolicy from toolkit.yaml's `relays.<name>` and the environment."""

from __future__ import annotations

import os
from pathlib import Path

from toolkit.errors import UserError
from toolkit.models import Relay
from toolkit.relay.connection import RelaySettings
from toolkit.relay.pool import RetryPolicy
from toolkit.relay.tls import relay_tls_context


def settings_for(relay: Relay, *, root: Path, name: str = "default") -> RelaySettings:
    """Credentials only from the environment: a configured variable that is unset is an
    error (exit 2), never a silent unauthenticated send."""
    ca_file = None
    if relay.ca_file:
        ca_file = (root / relay.ca_file).resolve()
        if not ca_file.is_file():
            raise UserError(f"relays.{name}.ca_file: {relay.ca_file} does not exist",
                            where="toolkit.yaml", fix="point ca_file at a PEM bundle, or remove it")
    username = password = None
    for attr in ("username_env", "password_env"):
        env = getattr(relay, attr)
        if env and not os.environ.get(env):
            raise UserError(f"environment variable {env} (relays.{name}.{attr}) is not set",
                            fix=f"export {env}=... with the relay's credentials")
    if relay.username_env:
        username = os.environ[relay.username_env]
        password = os.environ.get(relay.password_env or "", "")
    return RelaySettings(host=relay.host, port=relay.port, tls=relay.tls,
                         tls_context=relay_tls_context(ca_file=ca_file), username=username,
                         password=password, timeout=relay.timeout_seconds)


def retry_for(relay: Relay) -> RetryPolicy:
    """`retry_attempts` and `retry_delay_seconds` (the first backoff, doubling)."""
    return RetryPolicy(max_attempts=relay.retry_attempts, base_delay=relay.retry_delay_seconds)
