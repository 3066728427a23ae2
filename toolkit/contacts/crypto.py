"""Contact files encrypted at rest: AES-256-GCM in 64 KiB chunks, so large files stream.

File layout (docs/contacts.md):

    magic "CAMPENC" (7 bytes) | version 0x01 | nonce prefix (8 random bytes)
    then chunks: AES-256-GCM(plaintext chunk) = ciphertext || 16-byte tag

Every chunk but the last holds exactly CHUNK plaintext bytes; the last holds fewer
(possibly none), so a reader knows which chunk should be the last. Chunk i is sealed
with nonce = prefix || i (4 bytes, big-endian) and associated data = header || final
flag (1 byte), so reordering, dropping or appending chunks, cutting the file at a
chunk boundary, or editing the header all fail authentication.

The key (CAMPAIGN_DATA_KEY) is 32 bytes given as 64 hex digits or as base64.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from toolkit.errors import UserError

KEY_ENV = "CAMPAIGN_DATA_KEY"
MAGIC = b"CAMPENC"
VERSION = 1
PREFIX_LEN = 8
HEADER_LEN = len(MAGIC) + 1 + PREFIX_LEN
CHUNK = 64 * 1024
TAG = 16
MAX_CHUNKS = 2**32


def data_key() -> bytes:
    """The 32-byte key from CAMPAIGN_DATA_KEY (hex or base64), or a clear exit-2 error."""
    raw = os.environ.get(KEY_ENV, "").strip()
    if not raw:
        raise UserError(
            f"environment variable {KEY_ENV} is not set; it holds the key of encrypted contacts",
            fix=f"export {KEY_ENV}=... (32 random bytes as hex or base64: `campaign data keygen`)",
        )
    key: bytes | None = None
    if len(raw) == 64:
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            key = None
    if key is None:
        padded = raw + "=" * (-len(raw) % 4)
        alt = b"-_" if ("-" in raw or "_" in raw) else None  # base64url is fine too
        try:
            key = base64.b64decode(padded, altchars=alt, validate=True)
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != 32:
        raise UserError(
            f"{KEY_ENV} is not a 32-byte key as 64 hex digits or base64",
            fix="generate one with `campaign data keygen`",
        )
    return key


def new_key_text() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")


def _nonce(prefix: bytes, i: int) -> bytes:
    return prefix + struct.pack(">I", i)


def encrypt_stream(src: BinaryIO, dst: BinaryIO, key: bytes) -> None:
    aead = AESGCM(key)
    prefix = os.urandom(PREFIX_LEN)
    header = MAGIC + bytes([VERSION]) + prefix
    dst.write(header)
    i = 0
    chunk = _read_full(src, CHUNK)
    while True:
        # read one ahead: a full chunk is the last only if nothing follows it, and then
        # an empty final chunk is written, so that every file ends with a short chunk
        final = len(chunk) < CHUNK
        dst.write(aead.encrypt(_nonce(prefix, i), chunk, header + (b"\x01" if final else b"\x00")))
        if final:
            return
        i += 1
        if i >= MAX_CHUNKS:
            raise UserError("file too large to encrypt in this format (over 256 TiB)")
        chunk = _read_full(src, CHUNK)


def _read_full(f: BinaryIO, n: int) -> bytes:
    parts = []
    while n > 0:
        b = f.read(n)
        if not b:
            break
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


class DecryptingReader(io.RawIOBase):
    """A readable stream of the plaintext; raises UserError on a wrong key or tampering."""

    def __init__(self, path: Path, key: bytes):
        self.path = path
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        header = _read_full(self._f, HEADER_LEN)
        if len(header) < HEADER_LEN or header[: len(MAGIC)] != MAGIC:
            self._f.close()
            raise UserError(
                f"{path} is not an encrypted contact file (no CAMPENC header)",
                fix="encrypt it with `campaign data encrypt IN OUT`, or drop the .enc suffix",
            )
        if header[len(MAGIC)] != VERSION:
            self._f.close()
            raise UserError(
                f"{path}: unsupported encryption format version {header[len(MAGIC)]}",
                fix="decrypt it with the toolkit version that wrote it",
            )
        self._header = header
        self._prefix = header[len(MAGIC) + 1 :]
        self._aead = AESGCM(key)
        self._i = 0
        self._buf = b""
        self._pos = 0
        self._done = False

    def _fail(self) -> UserError:
        return UserError(
            f"{KEY_ENV} does not decrypt {self.path}: wrong key or corrupted file",
            fix=f"set {KEY_ENV} to the key the file was encrypted with",
        )

    def _next_chunk(self) -> None:
        sealed = _read_full(self._f, CHUNK + TAG)
        final = len(sealed) < CHUNK + TAG
        if final and not sealed:
            raise self._fail()  # cut at a chunk boundary: the final chunk is missing
        try:
            self._buf = self._aead.decrypt(
                _nonce(self._prefix, self._i),
                sealed,
                self._header + (b"\x01" if final else b"\x00"),
            )
        except InvalidTag:
            raise self._fail() from None
        self._pos = 0
        self._i += 1
        if final:
            if self._f.read(1):
                raise self._fail()
            self._done = True

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._pos >= len(self._buf):
            if self._done:
                return 0
            self._next_chunk()
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def open_plain(path: Path) -> BinaryIO:
    """A buffered binary stream of the file's plaintext: decrypted when it ends in .enc."""
    if path.name.endswith(".enc"):
        return io.BufferedReader(DecryptingReader(path, data_key()), buffer_size=CHUNK)
    return open(path, "rb")  # the caller closes it


def iter_plain(path: Path) -> Iterator[bytes]:
    with open_plain(path) as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                return
            yield b
