"""S/MIME encryption to one recipient: cryptography's PKCS7 envelope (AES-256-CBC
content encryption, RSA key transport), base64 in an application/pkcs7-mime body.

The outer headers stay readable (the relay needs them); the inner MIME entity,
text and HTML, is what gets encrypted.
"""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7


class CertificateError(ValueError):
    """The recipient's certificate cannot be used (never quoted: it is contact data)."""


def load_certificate(pem: str | bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii") if isinstance(pem, str) else pem)
    except ValueError:
        raise CertificateError("smime_certificate is not a PEM X.509 certificate") from None


def envelope(inner_entity: bytes, certificate: x509.Certificate) -> tuple[bytes, bytes]:
    """(headers, body) replacing the entity's own Content-Type: an enveloped-data part."""
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(inner_entity).add_recipient(certificate)
    if hasattr(builder, "set_content_encryption_algorithm"):  # cryptography >= 45
        builder = builder.set_content_encryption_algorithm(algorithms.AES256)
    der = builder.encrypt(Encoding.DER, [])
    b64 = base64.encodebytes(der).replace(b"\n", b"\r\n")
    headers = (b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; '
               b'name="smime.p7m"\r\n'
               b'Content-Disposition: attachment; filename="smime.p7m"\r\n'
               b"Content-Transfer-Encoding: base64\r\n")
    return headers, b64
