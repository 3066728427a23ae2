"""Gate rules: per matched record, the first exclusion reason that applies (DESIGN.md §3).

The order is the plan JSON's: invalid-email, confidential-no-email, suppressed,
no-authorization, authorization-expired, authorization-revoked, no-smime-certificate,
unencrypted-not-consented, duplicate, already-sent. `Gates.check(record)` is stateful
only for `duplicate`: a record that passes becomes a recipient, and a later record with
the same address (case-insensitively) is a duplicate. `plan` and `send` use the same
class, so a send re-checks every recipient exactly as the plan counted it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from toolkit.addresses import SeenSet, is_valid_address
from toolkit.pseudonym import normalize_address, pseudonym
from toolkit.smime_check import usable_certificate
from toolkit.suppression import Matcher

REASONS = (
    "invalid-email",
    "confidential-no-email",
    "suppressed",
    "no-authorization",
    "authorization-expired",
    "authorization-revoked",
    "no-smime-certificate",
    "unencrypted-not-consented",
    "duplicate",
    "already-sent",
)


def authorization_reason(auths: Any, scope: str, day: dt.date) -> str | None:
    """None when some authorization of `scope` is in force on `day`, else why not.

    Held: granted on or before `day` (or no grant date). In force: held, not expired
    (`expires_on` after `day`) and not revoked (`revoked_on` after `day`). When none is
    in force: no-authorization if none is held, else authorization-expired if any held
    one has expired, else authorization-revoked.
    """
    held = expired = False
    for a in auths or ():
        granted = a["granted_on"]
        if a["scope"] != scope or (granted is not None and granted > day):
            continue
        held = True
        expires, revoked = a["expires_on"], a["revoked_on"]
        is_expired = expires is not None and expires <= day
        if not is_expired and (revoked is None or revoked > day):
            return None
        expired = expired or is_expired
    if not held:
        return "no-authorization"
    return "authorization-expired" if expired else "authorization-revoked"


@dataclass(frozen=True)
class GateConfig:
    """What the gates need to know about the campaign and the moment."""

    at: dt.datetime
    suppression: Matcher
    authorization_scope: str | None = None
    encryption: str = "tls-required"  # tls-required | smime-preferred | smime-required
    require_unencrypted_consent: bool = False
    pseudonym_key: bytes | None = None  # needed when suppression or already_sent use pseudonyms
    already_sent: Callable[[str], bool] | None = None  # pseudonym -> sent before


class Gates:
    def __init__(self, config: GateConfig):
        self.config = config
        at = config.at if config.at.tzinfo else config.at.replace(tzinfo=dt.UTC)
        self._at = at
        self._day = at.astimezone(dt.UTC).date()
        self._seen = SeenSet()
        self._addresses = config.suppression.addresses
        self._pseudonyms = config.suppression.pseudonyms
        needs_key = bool(self._pseudonyms) or config.already_sent is not None
        if needs_key and config.pseudonym_key is None:
            raise ValueError(
                "a pseudonym key is needed for pseudonym suppressions and already-sent"
            )

    def pseudonym_of(self, record: Mapping[str, Any]) -> str:
        assert self.config.pseudonym_key is not None
        return pseudonym(record["email"], self.config.pseudonym_key)

    def uses_smime(self, record: Mapping[str, Any]) -> bool:
        """Would this recipient's message be S/MIME-encrypted (given the campaign's delivery)?"""
        if self.config.encryption == "tls-required":
            return False
        cert = record.get("smime_certificate")
        return cert is not None and usable_certificate(cert, record["email"], self._at)

    def check(self, record: Mapping[str, Any]) -> str | None:
        """The first exclusion reason for a matched, normalized record; None admits it."""
        cfg = self.config
        email = record.get("email")
        if email is None or not is_valid_address(email):
            return "invalid-email"
        if record.get("no_email") is True:
            return "confidential-no-email"
        address = normalize_address(email)
        pseudo: str | None = None
        if address in self._addresses:
            return "suppressed"
        if self._pseudonyms:
            pseudo = self.pseudonym_of(record)
            if pseudo in self._pseudonyms:
                return "suppressed"
        if cfg.authorization_scope is not None:
            reason = authorization_reason(
                record.get("authorizations"), cfg.authorization_scope, self._day
            )
            if reason is not None:
                return reason
        if cfg.encryption != "tls-required" or cfg.require_unencrypted_consent:
            smime = self.uses_smime(record)
            if cfg.encryption == "smime-required" and not smime:
                return "no-smime-certificate"
            if (
                cfg.require_unencrypted_consent
                and not smime
                and record.get("unencrypted_email_ok") is not True
            ):
                return "unencrypted-not-consented"
        key = hash(address) & _MASK64
        if key in self._seen:
            return "duplicate"
        if cfg.already_sent is not None:
            if pseudo is None:
                pseudo = self.pseudonym_of(record)
            if cfg.already_sent(pseudo):
                return "already-sent"
        self._seen.add(key)
        return None


# Duplicates are tracked by 64-bit fingerprints: Python's string hash, which is SipHash
# keyed with a random per-process secret (unless PYTHONHASHSEED is set), costs nothing
# extra (the hash is cached on the string) and makes a false duplicate about as likely
# as a random 64-bit collision: under 1 in 30 million at a million recipients.
_MASK64 = (1 << 64) - 1
