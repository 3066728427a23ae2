"""Is a contact's S/MIME certificate usable to encrypt to them (HIPAA-SEC-002)?

Usable: a PEM X.509 certificate with an RSA key (what cryptography's PKCS7 envelope
encrypts to), valid at the evaluation time, whose key usage (when present) allows key
encipherment, whose extended key usage (when present) allows email protection, and
whose subject alternative names (when they list email addresses) include the
recipient's. Parsed certificates are remembered by hash in a bounded cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

_CACHE_MAX = 2048


@dataclass(frozen=True)
class _Facts:
    ok: bool  # parses, RSA key, usages allow email encryption
    not_before: dt.datetime
    not_after: dt.datetime
    emails: frozenset[str]


_BAD = _Facts(
    False,
    dt.datetime.min.replace(tzinfo=dt.UTC),
    dt.datetime.min.replace(tzinfo=dt.UTC),
    frozenset(),
)
_cache: dict[bytes, _Facts] = {}


def _facts(pem: str) -> _Facts:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return _BAD
    ok = isinstance(cert.public_key(), rsa.RSAPublicKey)
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        ok = ok and ku.key_encipherment
    except x509.ExtensionNotFound:
        pass
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        ok = ok and (
            ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
            or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
        )
    except x509.ExtensionNotFound:
        pass
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        emails = frozenset(e.lower() for e in san.get_values_for_type(x509.RFC822Name))
    except x509.ExtensionNotFound:
        emails = frozenset()
    except ValueError:
        return _BAD
    return _Facts(ok, cert.not_valid_before_utc, cert.not_valid_after_utc, emails)


def usable_certificate(pem: str, address: str, at: dt.datetime) -> bool:
    digest = hashlib.sha256(pem.encode("utf-8", "surrogatepass")).digest()
    facts = _cache.get(digest)
    if facts is None:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        facts = _cache[digest] = _facts(pem)
    if not facts.ok or not (facts.not_before <= at <= facts.not_after):
        return False
    return not facts.emails or address.strip().lower() in facts.emails
