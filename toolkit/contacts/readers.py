"""One reader per source format; each yields SourceRecord(line, record, problem) in order.

Readers hold one record at a time. A problem names the key and what was expected,
never a value, because the value is contact data.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import orjson

from toolkit.contact import Bad, Normalizer
from toolkit.contacts.cells import cell_converters
from toolkit.errors import UserError


class SourceRecord(NamedTuple):
    line: int  # line of the record's start (JSONL, CSV) or row number (SQLite), 1-based
    record: dict[str, Any] | None  # normalized, or None when invalid
    problem: str | None  # why it is invalid: key names and expected types only


def _problem(p: tuple[str, str]) -> str:
    return f"key '{p[0]}': {p[1]}"


def _may_repeat_a_key(raw: bytes, rec: dict[str, Any]) -> bool:
    """False when the line certainly repeats no key: cheap tests before the exact one.

    The parsed record has no repeated key, so a line that is byte for byte its compact
    serialization has none either: true of files written by orjson, `json.dumps(...,
    separators=(",", ":"))` or JavaScript's JSON.stringify (one orjson.dumps, about a
    third of the parse). Otherwise, in a line without escapes every colon is a key's or
    one inside a string, so as many colons as the serialization has means no extra key."""
    try:
        compact = orjson.dumps(rec)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return True
    if compact == raw.rstrip(b"\r\n"):
        return False
    return b"\\" in raw or raw.count(b":") != compact.count(b":")


def _duplicate_key(raw: bytes) -> str | None:
    """The first key that an object of this JSON text repeats, at any level, or None.

    orjson (like every fast parser) keeps the last of two equal keys without a word; a
    record that says `"no_email": true` and then `"no_email": false` must not be read
    as either. The exact check re-parses with the standard library, so `read_jsonl`
    calls it only when a cheap count cannot rule duplicates out."""
    found: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d = dict(pairs)
        if len(d) != len(pairs) and not found:
            seen: set[str] = set()
            for k, _ in pairs:
                if k in seen:
                    found.append(k)
                    break
                seen.add(k)
        return d

    try:
        json.loads(raw, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):
        return None  # orjson read it; the checks after this one judge the record
    return found[0] if found else None


def read_jsonl(f: BinaryIO, norm: Normalizer) -> Iterator[SourceRecord]:
    """Records of a JSON-lines stream; closes `f` at the end (or when the caller stops)."""
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    first_problem = norm.first_problem
    new = tuple.__new__  # SourceRecord(...) without the Python-level __new__: hot loop
    line = 0
    try:
        for raw in f:
            line += 1
            try:
                rec = loads(raw)
            except decode_error:
                if line == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
                    raw = raw[3:]
                    try:
                        rec = loads(raw)
                    except decode_error:
                        rec = None
                else:
                    rec = None
                if rec is None:
                    if not raw.strip():
                        continue  # blank lines are not records
                    yield SourceRecord(line, None, "not valid JSON (one UTF-8 JSON object a line)")
                    continue
            if type(rec) is not dict:
                yield SourceRecord(line, None, "not a JSON object")
                continue
            if _may_repeat_a_key(raw, rec):
                dup = _duplicate_key(raw)
                if dup is not None:
                    yield SourceRecord(line, None, f"key '{dup[:40]}' appears more than once "
                                       "(which value was meant is unknown)")
                    continue
            # `""` in the raw line is the only way a value can be an empty string
            p = first_problem(rec, b'""' in raw)
            if p is None:
                yield new(SourceRecord, (line, rec, None))
            else:
                yield SourceRecord(line, None, _problem(p))

    finally:
        f.close()


def _check_columns(where: str, columns: list[str], types: dict[str, str]) -> None:
    seen: set[str] = set()
    for c in columns:
        if c not in types:
            raise UserError(
                f"column '{c[:40]}' is not a field in policy/fields.yaml nor a reserved key",
                where=where,
                fix="rename or drop the column, or declare the field in policy/fields.yaml",
            )
        if c in seen:
            raise UserError(f"column '{c[:40]}' appears twice", where=where, fix="keep one of them")
        seen.add(c)


def _from_cells(
    row: Any, columns: list[str], convs: list[Callable[[str], Any]], booleans: frozenset[str]
) -> dict[str, Any]:
    """A raw record from one row of cells; SQLite may give int/float cells as they are."""
    rec: dict[str, Any] = {}
    for key, conv, cell in zip(columns, convs, row, strict=True):
        if cell is None or cell == "":
            continue
        if type(cell) is str:
            try:
                rec[key] = conv(cell)
            except Bad as exc:
                raise _CellError(key, str(exc)) from None
        elif type(cell) is int and key in booleans and cell in (0, 1):
            rec[key] = bool(cell)
        elif type(cell) is bytes:
            raise _CellError(key, "expected text, found a BLOB")
        else:
            rec[key] = cell
    return rec


class _CellError(Exception):
    def __init__(self, key: str, message: str):
        self.key, self.message = key, message


def read_csv(
    f: BinaryIO, norm: Normalizer, types: dict[str, str], where: str
) -> Iterator[SourceRecord]:
    # bytes that are not UTF-8 become lone surrogates, found row by row below, so that
    # the error names the record's own line (a decoding error would surface at the
    # start of the 8 KB chunk the decoder was reading, lines earlier) and the rest goes on
    text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        yield from _csv_rows(text, norm, types, where)
    finally:
        text.close()


def _csv_rows(
    text: io.TextIOWrapper, norm: Normalizer, types: dict[str, str], where: str
) -> Iterator[SourceRecord]:
    reader = csv.reader(text, strict=True)
    try:
        columns = next(reader)
    except StopIteration:
        return
    except csv.Error:
        columns = None
    if columns is None or not _utf8(columns):
        raise UserError("the header row is not valid UTF-8 CSV", where=f"{where}:1",
                        fix="save the file as UTF-8 CSV") from None
    columns = [c.strip() for c in columns]
    _check_columns(f"{where}:1", columns, types)
    all_convs = cell_converters(types)
    convs = [all_convs[c] for c in columns]
    booleans = frozenset(k for k, t in types.items() if t == "boolean")
    first_problem = norm.first_problem
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield SourceRecord(start, None, "malformed CSV row (unbalanced quotes?)")
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if not row:
            continue
        if not _utf8(row):
            yield SourceRecord(line, None, "not valid UTF-8 (save the file as UTF-8)")
            continue
        if len(row) != len(columns):
            yield SourceRecord(line, None, f"expected {len(columns)} cells, found {len(row)}")
            continue
        try:
            rec = _from_cells(row, columns, convs, booleans)
        except _CellError as exc:
            yield SourceRecord(line, None, f"key '{exc.key}': {exc.message}")
            continue
        p = first_problem(rec, False)  # empty cells were left out
        yield SourceRecord(line, None, _problem(p)) if p else SourceRecord(line, rec, None)


def _utf8(cells: list[str]) -> bool:
    """No cell holds a byte that was not UTF-8 (a lone surrogate, see read_csv)."""
    try:
        "".join(cells).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_sqlite(
    path: Path, table: str, norm: Normalizer, types: dict[str, str], where: str
) -> Iterator[SourceRecord]:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        cols = [r[1] for r in con.execute(f'PRAGMA table_info("{_ident(table)}")')]
    except sqlite3.Error:
        raise UserError("cannot open as a SQLite database", where=where) from None
    try:
        if not cols:
            raise UserError(
                f"no table '{table}' in the database",
                where=where,
                fix="name the table with sqlite:///PATH?table=NAME (default: contacts)",
            )
        _check_columns(f"{where} table {table}", cols, types)
        all_convs = cell_converters(types)
        convs = [all_convs[c] for c in cols]
        booleans = frozenset(k for k, t in types.items() if t == "boolean")
        first_problem = norm.first_problem
        select = ", ".join(f'"{_ident(c)}"' for c in cols)
        try:
            cur = con.execute(f'SELECT {select} FROM "{_ident(table)}" ORDER BY rowid')
        except sqlite3.OperationalError:  # a WITHOUT ROWID table keeps its primary-key order
            cur = con.execute(f'SELECT {select} FROM "{_ident(table)}"')
        for n, row in enumerate(cur, 1):
            try:
                rec = _from_cells(row, cols, convs, booleans)
            except _CellError as exc:
                yield SourceRecord(n, None, f"key '{exc.key}': {exc.message}")
                continue
            p = first_problem(rec, False)  # empty cells were left out
            yield SourceRecord(n, None, _problem(p)) if p else SourceRecord(n, rec, None)
    except sqlite3.DatabaseError:
        raise UserError(
            "the database cannot be read (corrupt or not SQLite)", where=where
        ) from None
    finally:
        con.close()


def _ident(name: str) -> str:
    return name.replace('"', '""')
