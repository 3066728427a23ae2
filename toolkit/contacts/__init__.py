"""Contact sources (DESIGN.md §2 "Contact sources"), streamed one record at a time.

`open_source(spec, fields)` takes what `--contacts` takes:

- `PATH.jsonl` (or `.ndjson`): one JSON object a line;
- `PATH.csv`: a header row of field names, then one contact a row (docs/contacts.md);
- `sqlite:///PATH[?table=NAME]`: a table (default `contacts`) with one column a field;
  three slashes then a relative path, four for an absolute one (as SQLAlchemy);
- any of those files with a further `.enc` suffix: AES-256-GCM, key in CAMPAIGN_DATA_KEY.

Every record is validated against policy/fields.yaml and the reserved keys; a bad
one comes back with `record=None` and a problem that names keys, never values.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from toolkit.contact import Normalizer, field_types
from toolkit.contacts.crypto import DecryptingReader, data_key, open_plain
from toolkit.contacts.readers import SourceRecord, read_csv, read_jsonl, read_sqlite
from toolkit.errors import UserError
from toolkit.models import FieldSpec

__all__ = ["SourceRecord", "describe", "open_source"]

DEFAULT_TABLE = "contacts"


def _parse(spec: str) -> tuple[str, Path, str | None]:
    """(kind, path, table) where kind is jsonl, csv or sqlite."""
    if spec.startswith("sqlite:"):
        parts = urlsplit(spec)
        if not spec.startswith("sqlite:///") or not parts.path.lstrip("/"):
            raise UserError(
                f"bad SQLite URL '{spec}'",
                fix="use sqlite:///relative/path.db or sqlite:////absolute/path.db",
            )
        path = Path(unquote(parts.path[1:]))  # drop the slash that ends the empty host
        table = parse_qs(parts.query).get("table", [DEFAULT_TABLE])[0]
        return "sqlite", path, table
    path = Path(spec)
    name = path.name[:-4] if path.name.endswith(".enc") else path.name
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix in ("jsonl", "ndjson"):
        return "jsonl", path, None
    if suffix == "csv":
        return "csv", path, None
    raise UserError(
        f"cannot tell the format of contact source '{spec}'",
        fix="use a .jsonl or .csv file (optionally .enc), or a sqlite:/// URL",
    )


def describe(spec: str) -> str:
    """The source as shown in messages: its path, without query strings."""
    _, path, _ = _parse(spec)
    return str(path)


def open_source(spec: str, fields: Mapping[str, FieldSpec]) -> Iterator[SourceRecord]:
    """Check that the source opens (raising UserError now), then stream its records."""
    kind, path, table = _parse(spec)
    if not path.is_file():
        raise UserError(f"contact source {path} does not exist", fix="check the --contacts path")
    norm = Normalizer(fields)
    types = field_types(fields)
    where = str(path)
    if kind == "sqlite":
        return _sqlite(path, table or DEFAULT_TABLE, norm, types, where)
    f = open_plain(path)
    try:
        if path.name.endswith(".enc"):
            f.peek(1)  # decrypts the first chunk: a wrong key fails here, before any record
    except BaseException:
        f.close()
        raise
    if kind == "jsonl":
        return read_jsonl(f, norm)  # the readers close f when done
    return read_csv(f, norm, types, where)


def _sqlite(
    path: Path, table: str, norm: Normalizer, types: dict[str, str], where: str
) -> Iterator[SourceRecord]:
    if not path.name.endswith(".enc"):
        return read_sqlite(path, table, norm, types, where)
    # SQLite needs a file to read: decrypt to a private temporary folder, removed after.
    reader = DecryptingReader(path, data_key())
    tmp = tempfile.mkdtemp(prefix="campaign-contacts-")
    os.chmod(tmp, 0o700)
    plain = Path(tmp) / "contacts.db"
    try:
        with reader, open(plain, "wb") as out:
            os.chmod(plain, 0o600)
            shutil.copyfileobj(reader, out, 1024 * 1024)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _removing(tmp, read_sqlite(plain, table, norm, types, where))


def _removing(tmp: str, it: Iterator[SourceRecord]) -> Iterator[SourceRecord]:
    try:
        yield from it
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
