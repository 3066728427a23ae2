"""Unsubscribe tokens: HMAC-SHA256 (key from `unsubscribe.secret_env`) over a
version, the recipient's pseudonym, the campaign and the suppression kind.

Format (URL-safe, no padding): "v1.<pseudonym>.<campaign>.<kind>.<mac>", where
<mac> is base64url of the first 16 bytes (128 bits) of the HMAC. No PHI and no
address: the pseudonym is itself a keyed hash. Verification needs no database
lookup, so the endpoint can run with nothing but the secret and the store.

A campaign id made only of URL-safe characters appears as is (readable in logs);
any other id is carried as "~" + base64url(UTF-8), so every folder name works.
Dots are allowed in a campaign id: the token is split from both ends.

Tokens do not expire by time: CAN-SPAM wants the opt-out working for at least
30 days after each send, and an unsubscribe honoured late harms nobody. They are
retired by retiring a version (VERSIONS) or by rotating the secret; during a
rotation the previous secret stays accepted (`<secret_env>_PREVIOUS`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.secrets import secret as required_secret

VERSION = "v1"
VERSIONS = frozenset({VERSION})  # versions still accepted; drop one to retire its tokens
KINDS = ("commercial", "fundraising", "all")
MAX_TOKEN_LENGTH = 512
# domain separation: the same key can never produce a valid token for another purpose
_CONTEXT = b"campaign-unsubscribe\x1f"
_PSEUDONYM = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_CAMPAIGN = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
_ENCODED_CAMPAIGN = re.compile(r"^~[A-Za-z0-9_-]{1,300}$")
_MAC = re.compile(r"^[A-Za-z0-9_-]{22}$")
_VERSION = re.compile(r"^v[0-9]{1,4}$")


class TokenError(ValueError):
    """The token is malformed, of an unknown version, or its MAC does not match."""


class UnsupportedVersion(TokenError):
    """A well-formed token of a version this toolkit no longer (or not yet) accepts."""


@dataclass(frozen=True)
class Token:
    pseudonym: str
    campaign: str
    kind: str
    version: str = VERSION


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _encode_campaign(campaign: str) -> str:
    if _CAMPAIGN.match(campaign):
        return campaign
    if not campaign:
        raise ValueError("campaign id is empty")
    return "~" + _b64(campaign.encode("utf-8"))


def _decode_campaign(field: str) -> str:
    if _CAMPAIGN.match(field):
        return field
    if not _ENCODED_CAMPAIGN.match(field):
        raise TokenError("malformed unsubscribe token")
    body = field[1:]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError("malformed unsubscribe token") from exc


def _mac(secret: bytes, version: str, pseudonym: str, campaign_field: str, kind: str) -> str:
    msg = _CONTEXT + "\x1f".join((version, pseudonym, campaign_field, kind)).encode("utf-8")
    return _b64(hmac.digest(secret, msg, "sha256")[:16])


def _secrets(secret: bytes | Sequence[bytes]) -> list[bytes]:
    if type(secret) is bytes and secret:  # the common case, checked at once
        return [secret]
    keys = [secret] if isinstance(secret, (bytes, bytearray)) else list(secret)
    if not keys or not all(isinstance(k, (bytes, bytearray)) and k for k in keys):
        raise ValueError("an unsubscribe secret must be non-empty bytes")
    return [bytes(k) for k in keys]


def make_token(secret: bytes | Sequence[bytes], *, pseudonym: str, campaign: str, kind: str) -> str:
    """A token for one recipient of one campaign. With a list of secrets, the first signs."""
    if kind not in KINDS:
        raise ValueError(f"unknown suppression kind {kind!r}")
    if not _PSEUDONYM.match(pseudonym):
        raise ValueError("pseudonym must be a URL-safe identifier (toolkit.pseudonym.pseudonym)")
    field = _encode_campaign(campaign)
    mac = _mac(_secrets(secret)[0], VERSION, pseudonym, field, kind)
    return f"{VERSION}.{pseudonym}.{field}.{kind}.{mac}"


def verify_token(secret: bytes | Sequence[bytes], token: str) -> Token:
    """The token's content if its MAC matches one of the secrets; TokenError otherwise.

    Messages are deliberately generic: a caller must not learn which part was wrong
    beyond "malformed", "unsupported version" or "does not verify".
    """
    keys = _secrets(secret)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise TokenError("malformed unsubscribe token")
    parts = token.split(".")
    if len(parts) < 5:
        raise TokenError("malformed unsubscribe token")
    version, pseudonym, kind, mac = parts[0], parts[1], parts[-2], parts[-1]
    field = ".".join(parts[2:-2])
    if not _VERSION.match(version):
        raise TokenError("malformed unsubscribe token")
    if version not in VERSIONS:
        raise UnsupportedVersion(f"unsupported unsubscribe token version {version!r}")
    if not _PSEUDONYM.match(pseudonym) or kind not in KINDS or not _MAC.match(mac):
        raise TokenError("malformed unsubscribe token")
    campaign = _decode_campaign(field)
    # compare against every key, without stopping early, so timing says nothing about which
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(mac, _mac(key, version, pseudonym, field, kind))
    if not ok:
        raise TokenError("unsubscribe token does not verify")
    return Token(pseudonym=pseudonym, campaign=campaign, kind=kind, version=version)


def unsubscribe_secrets(secret_env: str = "UNSUBSCRIBE_SECRET") -> list[bytes]:
    """The current secret (required) and, during a rotation, `<secret_env>_PREVIOUS`."""
    keys = [required_secret(secret_env, purpose="HMAC key for unsubscribe tokens")]
    previous = os.environ.get(f"{secret_env}_PREVIOUS")
    if previous:
        keys.append(previous.encode("utf-8"))
    return keys


def suppression_kind(*, base_purpose: str | None, commercial: bool) -> str:
    """The kind an unsubscribe from this campaign implies."""
    if base_purpose == "fundraising":
        return "fundraising"
    return "commercial" if commercial else "all"
