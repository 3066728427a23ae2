"""The one TLS context every relay connection uses: verifying, TLS 1.2 or newer."""

from __future__ import annotations

import ssl
from pathlib import Path


def relay_tls_context(*, ca_file: str | Path | None = None) -> ssl.SSLContext:
    """System trust store plus `ca_file` (an extra bundle for a private relay);
    certificate and host name always checked."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        ctx.load_verify_locations(cafile=str(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context sets both, but they are the point of this module: keep them explicit
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
