"""`campaign data encrypt|decrypt|keygen`: contact files encrypted at rest (docs/contacts.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import click

from toolkit.contacts.crypto import (
    KEY_ENV,
    DecryptingReader,
    data_key,
    encrypt_stream,
    new_key_text,
)
from toolkit.errors import UserError


@contextmanager
def _write_private(out: Path) -> Iterator[BinaryIO]:
    """Write OUT with mode 0600 (it may hold contact data), all or nothing: the bytes go
    to OUT.part, which replaces OUT only when the block finishes without an error."""
    tmp = out.with_name(out.name + ".part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _check(src: Path, out: Path) -> None:
    if not src.is_file():
        raise UserError(f"{src} does not exist")
    if out.exists() and out.resolve() == src.resolve():
        raise UserError(
            "IN and OUT are the same file", fix="write to a new file, then replace the old one"
        )


@click.group()
def data() -> None:
    """Encrypt and decrypt contact files (AES-256-GCM, key in CAMPAIGN_DATA_KEY)."""


@data.command()
@click.argument("src", metavar="IN", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out", metavar="OUT", type=click.Path(dir_okay=False, path_type=Path))
def encrypt(src: Path, out: Path) -> None:
    """Encrypt IN to OUT (name it like contacts.jsonl.enc)."""
    _check(src, out)
    key = data_key()
    with open(src, "rb") as f, _write_private(out) as g:
        encrypt_stream(f, g, key)
    click.echo(f"encrypted {src} -> {out}", err=True)


@data.command()
@click.argument("src", metavar="IN", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out", metavar="OUT", type=click.Path(dir_okay=False, path_type=Path))
def decrypt(src: Path, out: Path) -> None:
    """Decrypt IN to OUT (mode 0600); a wrong key or a tampered file writes nothing."""
    _check(src, out)
    key = data_key()
    with DecryptingReader(src, key) as r, _write_private(out) as g:
        while chunk := r.read(1024 * 1024):
            g.write(chunk)
    click.echo(f"decrypted {src} -> {out}", err=True)


@data.command()
def keygen() -> None:
    """Print a new random key for CAMPAIGN_DATA_KEY (base64 of 32 bytes)."""
    click.echo(new_key_text())
    click.echo(f"store it in a secret store and export it as {KEY_ENV}", err=True)
