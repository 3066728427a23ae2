"""The tamper-evident audit log (docs/audit.md).

Append-only JSON lines at toolkit.yaml `audit.path`. Each entry is

    {"seq", "time", "event", "fields", "prev", "hash", "mac"}

where `hash` is SHA-256 over the canonical JSON of seq, time, event, fields and
prev (the previous entry's hash), and `mac` is HMAC-SHA256 with the audit key
over the same bytes. Editing an entry breaks its hash; recomputing the hash
without the key breaks its mac; removing, inserting or reordering entries
breaks `seq` and `prev`. A truncated tail leaves a valid chain, so the chain
head (last seq and hash, with its own mac) is also kept in a head file in the
state folder, which `verify_log` compares with the log.

Recipients appear only as keyed pseudonyms: `append` refuses a `recipient` that
is not one, and replaces any other address in free text (a refusal reason, a
relay reply) unless it is at one of the organization's verified domains.

Durability: every entry (or group of entries, `append_many`) is written with one
os.write on an O_APPEND file under an exclusive lock, so it survives a crash of this
process. fsync (and the head update) happens on every entry except `recipient` ones,
which are synced in batches (every SYNC_EVERY entries or SYNC_SECONDS) and at close.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson

from toolkit.models import Repo
from toolkit.pseudonym import pseudonym

EVENTS = ("lint", "build", "approve", "verify", "send-start", "recipient", "refusal", "send-end")
GENESIS = "0" * 64
HEAD_NAME = "audit-head.json"
SYNC_EVERY = 1024
SYNC_SECONDS = 1.0
_BATCHED = frozenset({"recipient"})
_EMAIL = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+\.[A-Za-z]{2,}")
_PSEUDONYM = re.compile(r"r_[a-z2-7]{32}")
REDACTED = "[address removed]"


class AuditError(click.ClickException):
    """The audit log cannot be written or is damaged; a send must stop (exit 1)."""

    exit_code = 1


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


_SCALARS = frozenset({str, int, bool, type(None)})


def _canonical_fields(fields: dict[str, Any]) -> bytes:
    """`_canonical(fields)`, through orjson when every value is a plain scalar (a
    `recipient` entry): the same bytes (sorted keys, no spaces, UTF-8, the same escapes;
    tests/test_audit_fast.py compares them), several times faster. Floats and nested
    values take json: their spellings could differ."""
    if all(type(v) in _SCALARS for v in fields.values()):
        try:
            return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):  # an int beyond 64 bits
            pass
    return _canonical(fields)


def _entry_line(key: bytes, seq: int, time_: str, event: str, fields: dict[str, Any],
                prev: str) -> tuple[str, str, bytes]:
    """(hash, mac, line) of an entry, encoding each part once and splicing: the body
    `entry_hash` covers and the line `_canonical(entry)` writes are the same parts in
    sorted-key order, the line with hash and mac between fields and prev."""
    ev, fb, pv, tm = _canonical(event), _canonical_fields(fields), _canonical(prev), _canonical(
        time_)
    sq = str(seq).encode("ascii")
    body = b'{"event":' + ev + b',"fields":' + fb + b',"prev":' + pv + b',"seq":' + sq \
        + b',"time":' + tm + b"}"
    h = hashlib.sha256(b"audit:v1\n" + body).hexdigest()
    m = entry_mac(key, h)
    line = (b'{"event":' + ev + b',"fields":' + fb + b',"hash":"' + h.encode("ascii")
            + b'","mac":"' + m.encode("ascii") + b'","prev":' + pv + b',"seq":' + sq
            + b',"time":' + tm + b"}\n")
    return h, m, line


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: entry.get(k) for k in ("seq", "time", "event", "fields", "prev")}
    return hashlib.sha256(b"audit:v1\n" + _canonical(body)).hexdigest()


def entry_mac(key: bytes, entry_hash_hex: str) -> str:
    return hmac.new(
        key, b"audit-entry:v1\n" + entry_hash_hex.encode("ascii"), hashlib.sha256
    ).hexdigest()


def head_mac(key: bytes, seq: int, hash_hex: str) -> str:
    return hmac.new(
        key, f"audit-head:v1\n{seq}\n{hash_hex}".encode("ascii"), hashlib.sha256
    ).hexdigest()


def _scrub(value: Any, path: str, allowed: tuple[str, ...]) -> Any:
    """The value with every address outside the organization's domains replaced.

    Free text (a refusal reason quoting a lint finding, a relay reply) may quote an
    address; the organization's own (sender, reply-to) are not PHI and stay.
    """
    if isinstance(value, str):
        if "@" not in value:
            return value

        def redact(m: re.Match[str]) -> str:
            domain = m.group(0).rsplit("@", 1)[1].lower()
            return m.group(0) if domain in allowed else REDACTED

        return _EMAIL.sub(redact, value)
    if isinstance(value, dict):
        return {str(k): _scrub(v, f"{path}.{k}", allowed) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, f"{path}[{i}]", allowed) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise AuditError(
        f"audit field '{path}' has type {type(value).__name__}; use text, numbers or lists"
    )


def log_path(repo: Repo) -> Path:
    rel = repo.config.audit.path if repo.config else ".campaign/audit.jsonl"
    return repo.root / rel


def head_path(repo: Repo) -> Path:
    from toolkit.state import state_dir

    return state_dir(repo, create=False) / HEAD_NAME


def key_env(repo: Repo) -> str:
    return repo.config.audit.key_env if repo.config else "AUDIT_KEY"


def _last_line(fd: int, size: int) -> bytes | None:
    """The last complete line of the file (without its newline), reading backwards in blocks."""
    if size == 0:
        return None
    block = 8192
    end = size
    buf = b""
    while end > 0:
        start = max(0, end - block)
        buf = os.pread(fd, end - start, start) + buf
        end = start
        body = buf[:-1] if buf.endswith(b"\n") else buf
        nl = body.rfind(b"\n")
        if nl >= 0:
            return body[nl + 1 :]
    return buf.rstrip(b"\n")


@dataclass
class _Tail:
    seq: int
    hash: str
    size: int


class AuditLog:
    """An open audit log. Use `AuditLog.open(repo)`; every `append` either lands or raises."""

    def __init__(self, path: Path, head: Path, key: bytes, allowed_domains: tuple[str, ...] = ()):
        self.path = path
        self.head = head
        self.key = key
        self.allowed_domains = tuple(d.lower() for d in allowed_domains)
        self._fd: int | None = None
        self._tail: _Tail | None = None
        self._unsynced = 0
        self._last_sync = time.monotonic()

    @classmethod
    def open(cls, repo: Repo) -> AuditLog:
        """Open for appending; the audit key must be set (sends require it)."""
        from toolkit.secrets import secret

        key = secret(key_env(repo), purpose="audit log HMAC key (also keys recipient pseudonyms)")
        domains = repo.config.organization.verified_domains if repo.config else ()
        log = cls(log_path(repo), head_path(repo), key, domains)
        log._open()
        return log

    @classmethod
    def at(
        cls,
        path: Path,
        head: Path,
        key: bytes,
        allowed_domains: tuple[str, ...] = (),
    ) -> AuditLog:
        """Open a log at an explicit place (tests, tools); `open(repo)` is the usual way."""
        log = cls(path, head, key, allowed_domains)
        log._open()
        return log

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.head.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot open the audit log ({exc.strerror})") from None

    def pseudonym(self, email: str) -> str:
        return pseudonym(email, self.key)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------

    def _read_tail(self, size: int) -> _Tail:
        assert self._fd is not None
        rfd = os.open(self.path, os.O_RDONLY)
        try:
            line = _last_line(rfd, size)
        finally:
            os.close(rfd)
        if line is None:
            return _Tail(0, GENESIS, 0)
        try:
            last = json.loads(line)
            seq, h = int(last["seq"]), str(last["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditError(
                f"{self.path}: the last entry is damaged; run `campaign audit verify` "
                "and have the security officer investigate before anything is sent"
            ) from None
        if entry_hash(last) != h or not hmac.compare_digest(
            entry_mac(self.key, h), str(last.get("mac"))
        ):
            raise AuditError(
                f"{self.path}: the last entry (seq {seq}) does not verify; "
                "run `campaign audit verify` before anything is sent"
            )
        return _Tail(seq, h, size)

    def append(self, event: str, /, **fields: Any) -> dict[str, Any]:
        """Append one entry; raises AuditError if it cannot be written (a send must stop)."""
        return self.append_many(event, [fields])[0]

    def append_many(self, event: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append one entry per fields dict, in order, with one lock and one write: all
        of them land or none does (AuditError). The send writes its `recipient` entries
        in groups this way, each group before the ledger outcomes it accounts for."""
        if event not in EVENTS:
            raise AuditError(f"unknown audit event '{event}' (known: {', '.join(EVENTS)})")
        checked = []
        for fields in items:
            recipient = fields.get("recipient")
            if recipient is not None and not (
                isinstance(recipient, str) and _PSEUDONYM.fullmatch(recipient)
            ):
                # a bug in the caller: refuse loudly rather than keep or silently mangle it
                raise AuditError(
                    "refusing to write a recipient that is not a pseudonym into the audit "
                    "log; log recipients as AuditLog.pseudonym(address)"
                )
            checked.append(_scrub(fields, "fields", self.allowed_domains))
        if self._fd is None:
            raise AuditError("the audit log is closed")
        if not checked:
            return []
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(self._fd).st_size
                # another process may have appended since our last entry: re-read the tail
                tail = (
                    self._tail if self._tail and self._tail.size == size else self._read_tail(size)
                )
                now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
                time_ = now.replace("+00:00", "Z")
                entries: list[dict[str, Any]] = []
                lines: list[bytes] = []
                seq, prev = tail.seq, tail.hash
                for fields in checked:
                    seq += 1
                    h, m, line = _entry_line(self.key, seq, time_, event, fields, prev)
                    entries.append({"seq": seq, "time": time_, "event": event, "fields": fields,
                                    "prev": prev, "hash": h, "mac": m})
                    lines.append(line)
                    prev = h
                data = b"".join(lines)
                try:
                    written = os.write(self._fd, data)
                    if written != len(data):
                        raise OSError(28, "short write to the audit log")
                except OSError:
                    # leave no partial entry behind (disk full): the chain stays appendable
                    # once space is freed, and the entries that failed are simply not there
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._fd, size)
                    raise
                self._tail = _Tail(seq, prev, size + len(data))
                self._unsynced += len(entries)
                if (
                    event not in _BATCHED
                    or self._unsynced >= SYNC_EVERY
                    or time.monotonic() - self._last_sync >= SYNC_SECONDS
                ):
                    self._sync_locked()
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise AuditError(
                f"{self.path}: audit write failed ({exc.strerror or exc}); "
                "stopping: nothing more is sent without an audit trail"
            ) from None
        return entries

    def _sync_locked(self) -> None:
        assert self._fd is not None and self._tail is not None
        os.fsync(self._fd)
        head = {
            "seq": self._tail.seq,
            "hash": self._tail.hash,
            "mac": head_mac(self.key, self._tail.seq, self._tail.hash),
            "log": self.path.name,
        }
        tmp = self.head.with_name(self.head.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(_canonical(head) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.head)
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def sync(self) -> None:
        """fsync the log and record the chain head; raises AuditError on failure."""
        if self._fd is None or self._tail is None or self._unsynced == 0:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if (
                    os.fstat(self._fd).st_size == self._tail.size
                ):  # else a newer writer owns the head
                    self._sync_locked()
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise AuditError(f"{self.path}: audit sync failed ({exc.strerror or exc})") from None

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self.sync()
        finally:
            os.close(self._fd)
            self._fd = None


# lint and build are routine and run anywhere (laptops, pre-commit, forks): their audit
# entries are best effort. approve and verify decide what may be sent: theirs must land.
_BEST_EFFORT = frozenset({"lint", "build"})


def audit_event(repo: Repo, event: str, /, **fields: Any) -> None:
    """Record a lint/build/approve/verify event when the audit key is set.

    Without the key (a laptop, a fork's pull request) nothing is recorded and the
    command keeps working (approve and verify say so on stderr). A failed write
    raises AuditError for approve and verify, and only warns for lint and build.
    `send` opens the log itself with `AuditLog.open` and refuses to run without the key.
    """
    if not os.environ.get(key_env(repo)):
        if event not in _BEST_EFFORT:
            click.echo(
                f"note: {key_env(repo)} is not set; this {event} is not recorded in the audit log",
                err=True,
            )
        return
    try:
        with AuditLog.open(repo) as log:
            log.append(event, **fields)
    except AuditError as exc:
        if event not in _BEST_EFFORT:
            raise
        click.echo(f"warning: {exc.message}", err=True)
