"""Ed25519 approver keys: generate, store, load, and the `ed25519:<base64>` public line.

The private key is stored as unencrypted PKCS#8 PEM (what `openssl pkey` reads),
in a file created with mode 0600 and never overwritten. The public key travels
as one line, `ed25519:<base64 of the raw 32 bytes>`, which is what
policy/approvers.yaml lists and what approval records carry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from toolkit.errors import UserError

PREFIX = "ed25519:"


class KeyFormatError(ValueError):
    """A key that cannot be parsed; the message says why (never the key material)."""


def public_line(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public_line(line: str) -> Ed25519PublicKey:
    text = line.strip()
    if not text.startswith(PREFIX):
        raise KeyFormatError("a public key is written 'ed25519:<base64 of the raw 32-byte key>'")
    try:
        raw = base64.b64decode(text[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("the public key is not valid base64") from None
    if len(raw) != 32:
        raise KeyFormatError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def fingerprint(line: str) -> str:
    """A short, stable name for a public key (used in record file names)."""
    raw = parse_public_line(line).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()[:16]


def verify(line: str, signature: bytes, message: bytes) -> bool:
    try:
        parse_public_line(line).verify(signature, message)
    except (InvalidSignature, KeyFormatError):
        return False
    return True


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    """A private key from PEM text, or from base64 of the raw 32-byte seed (handy in CI secrets)."""
    text = text.strip()
    if text.startswith(PREFIX):
        raise KeyFormatError("this is a public key; pass the private key file (without .pub)")
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError):
            raise KeyFormatError(
                "the PEM private key cannot be read (encrypted or damaged?)"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFormatError(
                "the private key is not an Ed25519 key; create one with `campaign keygen`"
            )
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(
            "expected a PEM private key or base64 of a raw 32-byte Ed25519 key"
        ) from None
    if len(raw) != 32:
        raise KeyFormatError(f"a raw Ed25519 private key is 32 bytes, this one is {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise UserError(
            f"{path}: no such key file", fix="create one with `campaign keygen --out FILE`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the key file ({type(exc).__name__})") from None
    try:
        key = private_key_from_text(text)
    except KeyFormatError as exc:
        raise UserError(
            f"{path}: {exc}", fix="pass the private key file written by `campaign keygen`"
        ) from None
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        import click

        click.echo(
            f"warning: {path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`",
            err=True,
        )
    return key


def write_keypair(out: Path) -> str:
    """Create a new key at `out` (0600, never overwriting) and its public line at `out`.pub."""
    pub_path = out.with_name(out.name + ".pub")
    for p in (out, pub_path):
        if p.exists():
            raise UserError(
                f"{p} already exists; refusing to overwrite a key",
                fix="choose another --out path, or move the old key away first",
            )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    line = public_line(key)
    try:
        # O_EXCL: a key file that appeared meanwhile is never clobbered; 0600 from birth
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UserError(
            f"{out} already exists; refusing to overwrite a key", fix="choose another --out path"
        ) from None
    except OSError as exc:
        raise UserError(f"{out}: cannot create the key file ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    pub_path.write_text(line + "\n", encoding="ascii")
    return line


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None
