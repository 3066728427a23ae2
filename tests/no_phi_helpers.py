"""Marker values for contact fields, and a scanner that finds them in whatever a command
left behind: as written, in other letter case, and under the encodings a value passes
through on its way into a file (URL, quoted-printable, RFC 2047, HTML entities, base64,
gzip; SQLite files both as raw pages and as a dump of every table and column)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import html
import quopri
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import yaml

TAG = "7f3a"
PREFIX = "PHIMARK"  # every string marker starts with it: a truncated value is still found
PHI_CLASSES = ("identifier", "clinical")


def marker(name: str) -> str:
    return f"{PREFIX}-{name}-{TAG}"


def email_marker(i: int) -> str:
    return f"phimark-email-{TAG}+{i}@example.org"


def _date_marker(k: int) -> dt.date:
    """Dates no output has a reason to show: 1900s birthdays and visits, one per field."""
    return dt.date(1901 + 3 * k, 1 + k % 12, 10 + k % 18)


@dataclass
class Markers:
    """What each PHI field of a schema carries in the test's contacts."""

    values: dict[str, Any] = field(default_factory=dict)  # field -> value for good records
    untyped: list[str] = field(default_factory=list)  # integer/number/boolean: no marker fits
    dates: dict[str, dt.date] = field(default_factory=dict)

    @classmethod
    def for_schema(cls, fields_yaml: Path, *, appointment: dt.datetime) -> Markers:
        fields = yaml.safe_load(fields_yaml.read_text(encoding="utf-8"))["fields"]
        m = cls()
        for k, (name, spec) in enumerate(fields.items()):
            if spec.get("class") not in PHI_CLASSES:
                continue
            t = spec["type"]
            if t in ("string", "email"):
                m.values[name] = marker(name)
            elif t == "list[string]":
                m.values[name] = [marker(name), marker(name + "-2")]
            elif t == "date":
                m.dates[name] = _date_marker(k)
                m.values[name] = m.dates[name].isoformat()
            elif t == "datetime":
                m.dates[name] = appointment.date() if name == "next_appointment" else \
                    _date_marker(k)
                when = appointment if name == "next_appointment" else dt.datetime.combine(
                    m.dates[name], dt.time(7, 13, 29), dt.UTC)
                m.values[name] = when.isoformat()
            else:
                m.untyped.append(name)
        return m

    def text_needles(self) -> list[tuple[str, bytes]]:
        """(label, lower-case bytes) searched in every text view of a file."""
        out = [("PHIMARK (any string field or email)", PREFIX.lower().encode())]
        for name, d in self.dates.items():
            for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%B %-d, %Y", "%b %-d, %Y",
                        "%d %b %Y", "%Y%m%d"):
                out.append((f"{name} as {fmt}", d.strftime(fmt).lower().encode()))
        return out

    def base64_needles(self) -> list[tuple[str, bytes]]:
        """(label, bytes) for the markers inside base64 text at any of the three offsets."""
        texts = [PREFIX + "-", PREFIX.lower() + "-"]
        texts += [v for v in self.values.values() if isinstance(v, str)]
        out = []
        for t in texts:
            for n in _b64_forms(t.encode()):
                out.append((f"base64 of {t!r}", n))
        return out


def _b64_forms(raw: bytes) -> Iterator[bytes]:
    """The base64 characters fixed by `raw` alone, at each alignment, standard and URL-safe."""
    for k in range(3):
        a = base64.b64encode(b"\x00" * k + raw + b"\x00\x00")
        b = base64.b64encode(b"\xff" * k + raw + b"\xff\xff")
        same = "".join("1" if x == y else "0" for x, y in zip(a, b, strict=True))
        start = same.index("1")
        end = same.index("0", start) if "0" in same[start:] else len(same)
        core = a[start:end]
        yield core
        yield core.translate(bytes.maketrans(b"+/", b"-_"))


_ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?([bBqQ])\?([^?\s]*)\?=")


def _decoded_words(data: bytes) -> bytes:
    """RFC 2047 encoded words, each decoded (B and Q), joined by newlines."""
    out = []
    for kind, text in _ENCODED_WORD.findall(data):
        try:
            if kind in b"bB":
                out.append(base64.b64decode(text + b"=" * (-len(text) % 4)))
            else:
                out.append(quopri.decodestring(text, header=True))
        except ValueError:
            continue
    return b"\n".join(out)


def views(data: bytes) -> Iterator[tuple[str, bytes]]:
    """The forms a value may take in `data`, lower-cased (base64 is searched separately)."""
    yield "raw", data.lower()
    yield "url-decoded", unquote_to_bytes(data).lower()
    yield "quoted-printable", quopri.decodestring(data).lower()
    yield "rfc2047", _decoded_words(data).lower()
    try:
        text = data.decode("utf-8", "replace")
        yield "html-unescaped", html.unescape(text).lower().encode()
    except ValueError:
        pass


@dataclass
class Hit:
    where: str
    view: str
    label: str
    context: str


@dataclass
class Scan:
    """Everything scanned, for the figures, and every marker found."""

    markers: Markers
    hits: list[Hit] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    streams: int = 0
    stream_bytes: int = 0
    sqlite_tables: int = 0
    sqlite_rows: int = 0

    def text(self, where: str, data: bytes, *, allowed: Iterable[str] = ()) -> None:
        """Scan one blob; `allowed` exact strings (case-insensitive) are cut out first."""
        cut = [a.lower().encode() for a in allowed]
        for view, v in views(data):
            for a in cut:
                v = v.replace(a, b"")
            for label, needle in self.markers.text_needles():
                self._find(where, view, label, needle, v)
        flat = re.sub(rb"[\r\n]+", b"", data)
        for a in allowed:
            for n in _b64_forms(a.encode()):
                flat = flat.replace(n, b"")
        for label, needle in self.markers.base64_needles():
            self._find(where, "base64", label, needle, flat)
        if data[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError, EOFError):
                self.text(where + " (gunzipped)", gzip.decompress(data), allowed=allowed)

    def _find(self, where: str, view: str, label: str, needle: bytes, hay: bytes) -> None:
        i = hay.find(needle)
        if i >= 0:
            ctx = hay[max(0, i - 60): i + len(needle) + 60].decode("utf-8", "replace")
            self.hits.append(Hit(where, view, label, ctx))

    def stream(self, where: str, text: str) -> None:
        self.streams += 1
        data = text.encode("utf-8", "surrogateescape")
        self.stream_bytes += len(data)
        self.text(where, data)

    def file(self, path: Path, where: str, *, allowed: Iterable[str] = ()) -> None:
        data = path.read_bytes()
        self.files += 1
        self.bytes += len(data)
        self.text(where, data, allowed=allowed)
        if data.startswith(b"SQLite format 3\x00"):
            self.text(where + " (SQL dump)", self.dump(path), allowed=allowed)

    def dump(self, path: Path) -> bytes:
        """Every table, every column, every row, as text (read-only: WAL content included)."""
        lines: list[str] = []
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")]
            for t in tables:
                self.sqlite_tables += 1
                cur = con.execute(f'SELECT * FROM "{t}"')
                cols = [d[0] for d in cur.description]
                lines.append(f"table {t}: {cols}")
                for row in cur:
                    self.sqlite_rows += 1
                    lines.append(repr(row))
                    for v in row:  # a BLOB as the text it may hold
                        if isinstance(v, bytes):
                            lines += [v.decode("utf-8", "replace"),
                                      v.decode("utf-16-le", "replace"),
                                      v.decode("utf-16-be", "replace")]
        finally:
            con.close()
        return "\n".join(lines).encode("utf-8", "surrogateescape")

    def tree(self, top: Path, *, skip: Iterable[Path] = (), skip_suffix: dict[Path, str] | None
             = None, allowed: dict[str, list[str]] | None = None) -> None:
        """Every file under `top` except `skip` (files or folders) and, in the folders of
        `skip_suffix`, files with that suffix; file names are scanned too. `allowed` maps
        a file name to exact strings that may appear in it (and in its -wal/-journal)."""
        skipped = [p.resolve() for p in skip]
        for path in sorted(top.rglob("*")):
            rp = path.resolve()
            if any(rp == s or rp.is_relative_to(s) for s in skipped):
                continue
            if skip_suffix and any(rp.parent == d.resolve() and rp.name.endswith(sfx)
                                   for d, sfx in skip_suffix.items()):
                continue
            rel = str(path.relative_to(top))
            self.text(f"file name {rel}", rel.encode())
            if path.is_file() and not path.is_symlink():
                base = re.sub(r"-(wal|shm|journal)$", "", path.name)
                self.file(path, rel, allowed=(allowed or {}).get(base, ()))
