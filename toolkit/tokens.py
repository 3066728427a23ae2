"""Unsubscribe tokens: HMAC-SHA256 (key from `unsubscribe.secret_env`) over a
version, the recipient's pseudonym, the campaign and the suppression kind.

Format (URL-safe, no padding): "v1.<pseudonym>.<campaign>.<kind>.<mac>", where
<mac> is base64url of the first 16 bytes of the HMAC. No PHI and no address:
the pseudonym is itself a keyed hash. Verification needs no database lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

VERSION = "v1"
KINDS = ("commercial", "fundraising", "all")
_PART = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class TokenError(ValueError):
    """The token is malformed, of an unknown version, or its MAC does not match."""


@dataclass(frozen=True)
class Token:
    pseudonym: str
    campaign: str
    kind: str
    version: str = VERSION


def _mac(secret: bytes, version: str, pseudonym: str, campaign: str, kind: str) -> str:
    msg = "\x1f".join((version, pseudonym, campaign, kind)).encode("utf-8")
    return base64.urlsafe_b64encode(hmac.new(secret, msg, hashlib.sha256).digest()[:16]).rstrip(b"=").decode("ascii")


def make_token(secret: bytes, *, pseudonym: str, campaign: str, kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown suppression kind {kind!r}")
    for part in (pseudonym, campaign):
        if not _PART.match(part):
            raise ValueError("pseudonym and campaign must be URL-safe identifiers")
    return f"{VERSION}.{pseudonym}.{campaign}.{kind}.{_mac(secret, VERSION, pseudonym, campaign, kind)}"


def verify_token(secret: bytes, token: str) -> Token:
    parts = token.split(".")
    if len(parts) != 5 or not all(_PART.match(p) for p in parts):
        raise TokenError("malformed unsubscribe token")
    version, pseudonym, campaign, kind, mac = parts
    if version != VERSION:
        raise TokenError(f"unsupported unsubscribe token version {version!r}")
    if kind not in KINDS:
        raise TokenError("malformed unsubscribe token")
    if not hmac.compare_digest(mac, _mac(secret, version, pseudonym, campaign, kind)):
        raise TokenError("unsubscribe token does not verify")
    return Token(pseudonym=pseudonym, campaign=campaign, kind=kind, version=version)


def suppression_kind(*, base_purpose: str | None, commercial: bool) -> str:
    """The kind an unsubscribe from this campaign implies."""
    if base_purpose == "fundraising":
        return "fundraising"
    return "commercial" if commercial else "all"
