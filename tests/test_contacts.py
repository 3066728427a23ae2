"""Contact sources: JSON lines, CSV and SQLite, validated against the schema, streamed."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from toolkit.contact import Normalizer, normalize_contact
from toolkit.contacts import open_source
from toolkit.errors import UserError
from toolkit.models import FieldSpec

FIELDS = {
    name: FieldSpec(type=type_, class_="none")
    for name, type_ in {
        "first_name": "string",
        "age": "integer",
        "score": "number",
        "active": "boolean",
        "born": "date",
        "visit": "datetime",
        "codes": "list[string]",
    }.items()
}


def read(spec: str | Path) -> list[tuple[int, dict | None, str | None]]:
    return [tuple(r) for r in open_source(str(spec), FIELDS)]  # type: ignore[misc]


def test_jsonl_records_are_normalized(tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    src.write_text(
        '{"id": 7, "email": "a@example.org", "age": 40, "score": 1, "active": true,'
        ' "born": "1986-03-01", "visit": "2026-06-10T09:00:00", "codes": ["E11"],'
        ' "first_name": "", "no_email": false,'
        ' "authorizations": [{"scope": "x", "granted_on": "2026-01-01", "expires_on": null}]}\n'
    )
    [(line, rec, problem)] = read(src)
    assert (line, problem) == (1, None)
    assert rec == {
        "id": "7",
        "email": "a@example.org",
        "age": 40,
        "score": 1,
        "active": True,
        "born": dt.date(1986, 3, 1),
        "visit": dt.datetime(2026, 6, 10, 9, 0, tzinfo=dt.UTC),  # naive is UTC
        "codes": ("E11",),
        "first_name": None,  # "" is unknown, like null
        "no_email": False,
        "authorizations": (
            {
                "scope": "x",
                "granted_on": dt.date(2026, 1, 1),
                "expires_on": None,
                "revoked_on": None,
            },
        ),
    }


def test_bad_jsonl_records_are_reported_by_line_and_key_and_the_rest_go_on(tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    lines = [
        '{"email": "ok1@example.org"}',
        "{not json",
        "",
        '["a list"]',
        '{"age": "forty-two"}',
        '{"age": true}',
        '{"age": 4.5}',
        '{"born": "03/01/1986"}',
        '{"visit": "soon"}',
        '{"codes": ["E11", 5]}',
        '{"codes": "E11"}',
        '{"ssn_like_secret": "x"}',
        '{"active": "yes"}',
        '{"no_email": 1}',
        '{"authorizations": [{"scope": "x", "until": "2027-01-01"}]}',
        '{"authorizations": [{"granted_on": "2026-01-01"}]}',
        '{"id": [1]}',
        "NOT-UTF-8",
        '{"email": "ok2@example.org"}',
    ]
    src.write_bytes("\n".join(lines).encode("utf-8").replace(b"NOT-UTF-8", b'{"a": "\xff\xfe"}'))
    got = read(src)
    assert [(line, problem) for line, _, problem in got] == [
        (1, None),
        (2, "not valid JSON (one UTF-8 JSON object a line)"),
        (4, "not a JSON object"),
        (5, "key 'age': expected an integer"),
        (6, "key 'age': expected an integer"),
        (7, "key 'age': expected an integer"),
        (8, "key 'born': expected an ISO-8601 date (YYYY-MM-DD)"),
        (9, "key 'visit': expected an ISO-8601 date-time"),
        (10, "key 'codes': expected a list of strings"),
        (11, "key 'codes': expected a list of strings"),
        (12, "key 'ssn_like_secret': not a field in policy/fields.yaml nor a reserved key"),
        (13, "key 'active': expected true or false"),
        (14, "key 'no_email': expected true or false"),
        (15, "key 'authorizations': unknown authorization key 'until'"),
        (16, "key 'authorizations': each authorization needs a scope"),
        (17, "key 'id': expected a string or integer id"),
        (18, "not valid JSON (one UTF-8 JSON object a line)"),
        (19, None),
    ]
    assert [r for _, r, p in got if p is None] == [
        {"email": "ok1@example.org"},
        {"email": "ok2@example.org"},
    ]


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    src.write_bytes(b'\xef\xbb\xbf{"age": 3}\n')
    assert read(src) == [(1, {"age": 3}, None)]


def test_the_same_shape_with_a_bad_value_is_still_caught(tmp_path: Path) -> None:
    # the normalizer caches work by record shape; a bad date in a known shape must still fail
    src = tmp_path / "c.jsonl"
    src.write_text('{"born": "2000-01-01"}\n{"born": "2000-13-01"}\n{"born": "2000-01-02"}\n')
    assert [p for _, _, p in read(src)] == [
        None,
        "key 'born': expected an ISO-8601 date (YYYY-MM-DD)",
        None,
    ]


CSV_TEXT = (
    "id,email,age,score,active,born,visit,codes,authorizations,no_email,smime_certificate\n"
    '1,a@example.org,40,2.5,yes,1986-03-01,2026-06-10T09:00:00Z,E11|I10,"[{""scope"": ""x"", '
    '""granted_on"": ""2026-01-01""}]",false,'
    '"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"\n'
    "2,,,,,,,,,,\n"
    "3,c@example.org,forty,,,,,,,,\n"
    "4,d@example.org,1,2,3\n"
    "5,e@example.org,5,1e3,0,,,E11,not json,TRUE,\n"
    "6,f@example.org,6,nan,,,,,,,\n"
)


def test_csv_conventions(tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_text(CSV_TEXT)
    got = read(src)
    assert got[0] == (
        2,
        {
            "id": "1",
            "email": "a@example.org",
            "age": 40,
            "score": 2.5,
            "active": True,
            "born": dt.date(1986, 3, 1),
            "visit": dt.datetime(2026, 6, 10, 9, 0, tzinfo=dt.UTC),
            "codes": ("E11", "I10"),
            "authorizations": (
                {
                    "scope": "x",
                    "granted_on": dt.date(2026, 1, 1),
                    "expires_on": None,
                    "revoked_on": None,
                },
            ),
            "no_email": False,
            "smime_certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        },
        None,
    )
    # a record spanning lines keeps the line it starts on; empty cells are null (absent)
    assert got[1] == (5, {"id": "2"}, None)
    assert got[2] == (6, None, "key 'age': expected an integer")
    assert got[3] == (7, None, "expected 11 cells, found 5")
    assert got[4] == (
        8,
        None,
        "key 'authorizations': expected a JSON list of {scope, granted_on, expires_on, revoked_on}",
    )
    assert got[5] == (9, None, "key 'score': expected a number")


def test_csv_unknown_or_repeated_columns_are_an_error(tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_text("email,favourite_colour\na@example.org,teal\n")
    with pytest.raises(UserError) as err:
        read(src)
    assert err.value.message == (
        f"{src}:1: column 'favourite_colour' is not a field in policy/fields.yaml"
        " nor a reserved key\n"
        "  fix: rename or drop the column, or declare the field in policy/fields.yaml"
    )
    src.write_text("email,age,email\n")
    with pytest.raises(UserError, match="column 'email' appears twice"):
        read(src)


def test_sqlite_table(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE contacts"
        " (email TEXT, age INTEGER, active INTEGER, codes TEXT, score REAL, born TEXT)"
    )
    con.execute("CREATE TABLE other (email TEXT)")
    con.executemany(
        "INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("a@example.org", 40, 1, "E11|I10", 2.5, "1986-03-01"),
            ("b@example.org", "41", 0, None, None, ""),
            ("c@example.org", "old", 2, None, None, None),
            ("d@example.org", None, None, None, None, None),
        ],
    )
    con.execute("INSERT INTO other VALUES ('z@example.org')")
    con.commit()
    con.close()
    got = read(f"sqlite:///{db}")
    assert got == [
        (
            1,
            {
                "email": "a@example.org",
                "age": 40,
                "active": True,
                "codes": ("E11", "I10"),
                "score": 2.5,
                "born": dt.date(1986, 3, 1),
            },
            None,
        ),
        (2, {"email": "b@example.org", "age": 41, "active": False}, None),
        (3, None, "key 'age': expected an integer"),
        (4, {"email": "d@example.org"}, None),
    ]
    assert read(f"sqlite:///{db}?table=other") == [(1, {"email": "z@example.org"}, None)]
    with pytest.raises(UserError, match="no table 'missing' in the database"):
        read(f"sqlite:///{db}?table=missing")


def test_sqlite_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    con = sqlite3.connect(tmp_path / "rel.db")
    con.execute("CREATE TABLE contacts (email TEXT)")
    con.commit()
    con.close()
    monkeypatch.chdir(tmp_path)
    assert read("sqlite:///rel.db") == []


def test_not_sqlite(tmp_path: Path) -> None:
    bad = tmp_path / "c.db"
    bad.write_text("not a database at all" * 100)
    with pytest.raises(UserError) as err:
        read(f"sqlite:///{bad}")
    assert err.value.message == f"{bad}: cannot open as a SQLite database"


def test_sources_stream(tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    src.write_text('{"age": 1}\n' * 3)
    it = open_source(str(src), FIELDS)
    assert iter(it) is it  # a generator: one record at a time, never a list
    assert next(it) == (1, {"age": 1}, None)
    assert sum(1 for _ in it) == 2


def test_normalize_contact_keeps_its_signature_and_reports_every_problem() -> None:
    rec, problems = normalize_contact(
        {"age": "x", "born": "bad", "first_name": "A", "zzz": 1}, FIELDS
    )
    assert rec == {"first_name": "A"}
    assert problems == [
        ("age", "expected an integer"),
        ("born", "expected an ISO-8601 date (YYYY-MM-DD)"),
        ("zzz", "not a field in policy/fields.yaml nor a reserved key"),
    ]
    # YAML gives dates and datetimes as objects (personas)
    rec, problems = normalize_contact(
        {"born": dt.date(2000, 1, 1), "visit": dt.date(2026, 1, 1)}, FIELDS
    )
    assert problems == [] and rec["visit"] == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_the_shape_cache_stays_bounded() -> None:
    norm = Normalizer(FIELDS)
    for i in range(Normalizer._MAX_SHAPES + 10):
        norm.first_problem({f"k{i}": 1})
    assert len(norm._shapes) <= Normalizer._MAX_SHAPES
