"""Keyed pseudonyms for recipients: the only form in which a recipient appears in
the ledger, the audit log, unsubscribe tokens and token-based suppressions.

HMAC-SHA256 with the audit key over the lower-cased address, so the same address
gives the same pseudonym everywhere, and nobody without the key can test a guess.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def normalize_address(email: str) -> str:
    return email.strip().lower()


def pseudonym(email: str, key: bytes) -> str:
    message = b"recipient:v1:" + normalize_address(email).encode("utf-8")
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return "r_" + base64.b32encode(digest[:20]).decode("ascii").lower()
