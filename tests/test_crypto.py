"""Contact files encrypted at rest: format, wrong key, truncation and tampering."""

from __future__ import annotations

import base64
import io
import os
import shutil
import struct
from pathlib import Path

import pytest
from conftest import run_campaign
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from toolkit.contacts import open_source
from toolkit.contacts.crypto import (
    CHUNK,
    HEADER_LEN,
    MAGIC,
    TAG,
    DecryptingReader,
    data_key,
    encrypt_stream,
)
from toolkit.errors import UserError
from toolkit.models import FieldSpec

KEY = bytes(range(32))
HEX = KEY.hex()
FIELDS = {"age": FieldSpec(type="integer", class_="none")}
WRONG = "CAMPAIGN_DATA_KEY does not decrypt {}: wrong key or corrupted file"


def encrypt(data: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key)
    return out.getvalue()


def decrypt(tmp_path: Path, blob: bytes, key: bytes = KEY) -> bytes:
    path = tmp_path / "x.jsonl.enc"
    path.write_bytes(blob)
    with DecryptingReader(path, key) as r:
        return r.read()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_round_trip_and_layout(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    blob = encrypt(data)
    assert blob[:7] == MAGIC == b"CAMPENC" and blob[7] == 1
    # full chunks, then always one short final chunk (possibly empty)
    assert len(blob) == HEADER_LEN + size + TAG * (size // CHUNK + 1)
    assert decrypt(tmp_path, blob) == data


def test_the_format_is_what_docs_say(tmp_path: Path) -> None:
    """Decrypt with nothing but the documented layout and AES-GCM."""
    data = b"x" * (CHUNK + 5)
    blob = encrypt(data)
    header, prefix = blob[:HEADER_LEN], blob[8:HEADER_LEN]
    first = blob[HEADER_LEN : HEADER_LEN + CHUNK + TAG]
    last = blob[HEADER_LEN + CHUNK + TAG :]
    aead = AESGCM(KEY)
    got = aead.decrypt(prefix + struct.pack(">I", 0), first, header + b"\x00")
    got += aead.decrypt(prefix + struct.pack(">I", 1), last, header + b"\x01")
    assert got == data
    assert encrypt(data)[8:HEADER_LEN] != prefix  # a fresh random nonce prefix per file


@pytest.mark.parametrize(
    "damage",
    [
        "cut-at-chunk-boundary",
        "cut-mid-chunk",
        "flip-a-byte",
        "flip-header",
        "append",
        "swap-chunks",
        "drop-first-chunk",
    ],
)
def test_truncation_and_tampering_are_detected(tmp_path: Path, damage: str) -> None:
    blob = bytearray(encrypt(os.urandom(2 * CHUNK + 100)))
    c = CHUNK + TAG
    first, second = HEADER_LEN, HEADER_LEN + c
    bad = {
        "cut-at-chunk-boundary": blob[: second + c],
        "cut-mid-chunk": blob[:-5],
        "flip-a-byte": blob[:second] + bytes([blob[second] ^ 1]) + blob[second + 1 :],
        "flip-header": blob[:10] + bytes([blob[10] ^ 1]) + blob[11:],
        "append": blob + b"\x00" * 16,
        "swap-chunks": blob[:first]
        + blob[second : second + c]
        + blob[first:second]
        + blob[second + c :],
        "drop-first-chunk": blob[:first] + blob[second:],
    }[damage]
    path = tmp_path / "x.jsonl.enc"
    with pytest.raises(UserError) as err:
        decrypt(tmp_path, bytes(bad))
    assert err.value.message.startswith(WRONG.format(path))


def test_wrong_key(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="wrong key or corrupted file"):
        decrypt(tmp_path, encrypt(b'{"age": 1}\n'), key=bytes(32))


def test_not_an_encrypted_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl.enc"
    path.write_text('{"age": 1}\n')
    with pytest.raises(UserError, match=r"is not an encrypted contact file \(no CAMPENC header\)"):
        DecryptingReader(path, KEY)


def test_key_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    for text in (
        HEX,
        HEX.upper(),
        base64.b64encode(KEY).decode(),
        base64.urlsafe_b64encode(KEY).decode().rstrip("="),
    ):
        monkeypatch.setenv("CAMPAIGN_DATA_KEY", text)
        assert data_key() == KEY
    for bad in ("abc", base64.b64encode(KEY[:16]).decode(), "zz" * 32):
        monkeypatch.setenv("CAMPAIGN_DATA_KEY", bad)
        with pytest.raises(
            UserError, match="CAMPAIGN_DATA_KEY is not a 32-byte key as 64 hex digits or base64"
        ):
            data_key()
    monkeypatch.delenv("CAMPAIGN_DATA_KEY")
    with pytest.raises(UserError, match="environment variable CAMPAIGN_DATA_KEY is not set"):
        data_key()


def test_open_source_reads_encrypted_jsonl_and_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGN_DATA_KEY", HEX)
    lines = b"".join(b'{"age": %d}\n' % i for i in range(20000))  # several chunks
    (tmp_path / "c.jsonl.enc").write_bytes(encrypt(lines))
    got = list(open_source(str(tmp_path / "c.jsonl.enc"), FIELDS))
    assert [r.record for r in got] == [{"age": i} for i in range(20000)]
    (tmp_path / "c.csv.enc").write_bytes(encrypt(b"age\n1\nx\n"))
    assert [tuple(r) for r in open_source(str(tmp_path / "c.csv.enc"), FIELDS)] == [
        (2, {"age": 1}, None),
        (3, None, "key 'age': expected an integer"),
    ]


def test_cli_encrypt_decrypt_and_wrong_key(tmp_path: Path) -> None:
    src = tmp_path / "contacts.jsonl"
    src.write_text('{"email": "a@example.org"}\n' * 5000)
    enc = tmp_path / "contacts.jsonl.enc"
    env = {"CAMPAIGN_DATA_KEY": HEX}
    got = run_campaign("data", "encrypt", str(src), str(enc), env=env)
    assert got.returncode == 0, got.stderr
    assert enc.stat().st_mode & 0o777 == 0o600
    assert b"example.org" not in enc.read_bytes()
    out = tmp_path / "back.jsonl"
    got = run_campaign("data", "decrypt", str(enc), str(out), env=env)
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == src.read_bytes()

    wrong = {"CAMPAIGN_DATA_KEY": "22" * 32}
    out2 = tmp_path / "never.jsonl"
    got = run_campaign("data", "decrypt", str(enc), str(out2), env=wrong)
    assert got.returncode == 2
    assert got.stderr == (
        f"Error: {WRONG.format(enc)}\n"
        "  fix: set CAMPAIGN_DATA_KEY to the key the file was encrypted with\n"
    )
    assert not out2.exists() and not (tmp_path / "never.jsonl.part").exists()


def test_plan_with_a_wrong_key_is_exit_2_without_output(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parent.parent / "toolkit" / "scaffold", root)
    enc = tmp_path / "contacts.jsonl.enc"
    enc.write_bytes(encrypt(b'{"email": "a@example.org"}\n'))
    got = run_campaign(
        "plan",
        "appointment-reminder",
        "--contacts",
        str(enc),
        "--format",
        "json",
        root=root,
        env={"CAMPAIGN_DATA_KEY": "33" * 32},
    )
    assert got.returncode == 2
    assert WRONG.format(enc) in got.stderr
    assert got.stdout == "" and "Traceback" not in got.stderr


def test_cli_keygen_prints_a_usable_key(monkeypatch: pytest.MonkeyPatch) -> None:
    got = run_campaign("data", "keygen")
    assert got.returncode == 0
    assert "export it as CAMPAIGN_DATA_KEY" in got.stderr
    monkeypatch.setenv("CAMPAIGN_DATA_KEY", got.stdout.strip())
    assert len(data_key()) == 32


def test_encrypted_sqlite_is_read_from_a_private_temporary_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3
    import tempfile

    db = tmp_path / "c.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE contacts (age INTEGER)")
    con.executemany("INSERT INTO contacts VALUES (?)", [(1,), (2,)])
    con.commit()
    con.close()
    (tmp_path / "c.db.enc").write_bytes(encrypt(db.read_bytes()))
    monkeypatch.setenv("CAMPAIGN_DATA_KEY", HEX)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    it = open_source(f"sqlite:///{tmp_path / 'c.db.enc'}", FIELDS)
    [private] = list((tmp_path / "tmp").iterdir())
    assert private.stat().st_mode & 0o777 == 0o700
    assert [r.record for r in it] == [{"age": 1}, {"age": 2}]
    assert list((tmp_path / "tmp").iterdir()) == []  # removed once read
    monkeypatch.setenv("CAMPAIGN_DATA_KEY", "44" * 32)
    with pytest.raises(UserError, match="wrong key or corrupted file"):
        open_source(f"sqlite:///{tmp_path / 'c.db.enc'}", FIELDS)
    assert list((tmp_path / "tmp").iterdir()) == []
