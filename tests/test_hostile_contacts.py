"""Hostile contact data (issue 8, item 4): exports of other systems, read by the real CLI.

Every bad record is reported by file and line (never its content), counted as invalid,
and never sent; the rest of the file goes on. Every delivered message parses back with
Python's email parser without defects and with exactly the expected headers, whatever
the names and addresses hold: CR/LF, RFC 2047 encoded words, non-ASCII, HTML, a megabyte.
docs/contacts.md and docs/sending.md ("Addresses and header values") say what is decided.
"""

from __future__ import annotations

import base64
import email
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from conftest import run_campaign
from send_helpers import (
    CAMPAIGN,
    ENV,
    Sendable,
    contact,
    make_repo,
    sendable,
    write_contacts,
)

from toolkit.demo import approve_all, point_relays
from toolkit.relay.local import LocalRelay, StoringHandler

MARK = "MARKER-PHI"  # in every hostile value: must never reach an error, a plan or a log
HEADERS = ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "List-Unsubscribe",
           "List-Unsubscribe-Post", "MIME-Version", "Content-Type"]


def plan(root: Path, source: Path) -> tuple[int, dict[str, Any] | None, str, str]:
    r = run_campaign("plan", CAMPAIGN, "--contacts", str(source), "--format", "json",
                     root=root, env=ENV)
    data = json.loads(r.stdout) if r.returncode == 0 else None
    return r.returncode, data, r.stdout, r.stderr


def send(s: Sendable, *args: str, contacts: Path | None = None):
    return run_campaign("send", CAMPAIGN, "--contacts", str(contacts or s.contacts), *args,
                        root=s.root, env=s.env)


def clean(r) -> None:
    """No traceback and no contact content anywhere in what the command printed."""
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    assert MARK not in out, out


def line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def parse(raw: bytes) -> email.message.EmailMessage:
    """Parsed with the SMTPUTF8 policy; the message and all its parts free of defects."""
    msg = email.message_from_bytes(raw, policy=policy.SMTPUTF8)
    assert msg.defects == []
    for part in msg.walk():
        assert part.defects == [], part.defects
    assert [k for k, _ in msg.raw_items()] == HEADERS
    assert max(len(x) for x in raw.split(b"\r\n")) <= 998
    return msg


def header_bytes(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"


# --- bad records in JSON lines ----------------------------------------------------------

def _hostile_jsonl(tmp_path: Path) -> tuple[Path, list[str]]:
    """A JSON-lines export with one hostile record a line; the expected stderr lines."""
    good = [contact(0), contact(1)]
    bad = contact(9, first_name=f"{MARK}-dup")
    dup = json.dumps(bad)[:-1] + ', "no_email": true, "no_email": false}'
    nested = json.dumps({**contact(10, first_name=MARK), "authorizations": []})[:-3] + (
        '[{"scope": "partner-offers", "scope": "other", "granted_on": "2026-01-01"}]}')
    escaped = json.dumps(contact(11, first_name=MARK, no_email=True))[:-1] + (
        ', "no_\\u0065mail": false}')
    deep = '{"id": "c-0012", "first_name": "' + MARK + '", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    lines: list[tuple[bytes, str | None]] = [
        (line(good[0]), None),
        (f'{{"id": "c-0002", "first_name": "{MARK}", '.encode(), "not valid JSON (one UTF-8 "
         "JSON object a line)"),
        (f'["{MARK}"]\n'.encode(), "not a JSON object"),
        (f'{{"id": "c-0003", "first_name": "{MARK}"}} trailing\n'.encode(), "not valid JSON "
         "(one UTF-8 JSON object a line)"),
        (f'{{"id": "c-0004", "age": NaN, "first_name": "{MARK}"}}\n'.encode(), "not valid JSON "
         "(one UTF-8 JSON object a line)"),
        (f'{{"id": "c-0005", "first_name": "{MARK} '.encode() + b'\xff\xfe"}\n',
         "not valid JSON (one UTF-8 JSON object a line)"),
        (f'{{"id": "c-0006", "first_name": "{MARK} \\ud800"}}\n'.encode(), "not valid JSON "
         "(one UTF-8 JSON object a line)"),
        (deep.encode() + b"\n", "not valid JSON (one UTF-8 JSON object a line)"),
        (dup.encode() + b"\n", "key 'no_email' appears more than once (which value was meant "
         "is unknown)"),
        (nested.encode() + b"\n", "key 'scope' appears more than once (which value was meant "
         "is unknown)"),
        (escaped.encode() + b"\n", "key 'no_email' appears more than once (which value was meant "
         "is unknown)"),
        (line(contact(13, first_name=MARK, no_email="yes")), "key 'no_email': expected true or "
         "false"),
        (line(contact(14, first_name=MARK, unencrypted_email_ok=1)), "key 'unencrypted_email_ok'"
         ": expected true or false"),
        (line(contact(15, first_name=MARK, authorizations="partner-offers")), "key "
         "'authorizations': expected a list of {scope, granted_on, expires_on, revoked_on}"),
        (line(contact(16, first_name=MARK, authorizations=[{"scope": "partner-offers",
                                                             "granted_on": 5}])),
         "key 'authorizations': expected an ISO-8601 date (YYYY-MM-DD)"),
        (line(contact(17, first_name=MARK, deceased="false")), "key 'deceased': expected true "
         "or false"),
        (line(contact(18, first_name=MARK, email=42)), "key 'email': expected a string"),
        (line(contact(19, first_name=MARK, id=True)), "key 'id': expected a string or integer "
         "id"),
        (line(contact(20, first_name=MARK, **{MARK.lower(): 1})), f"key '{MARK.lower()}': not "
         "a field in policy/fields.yaml nor a reserved key"),
        (b"\n", None),  # blank lines are not records
        (line(good[1]), None),
    ]
    src = tmp_path / "hostile.jsonl"
    src.write_bytes(b"".join(raw if raw.endswith(b"\n") else raw + b"\n" for raw, _ in lines))
    expected = [f"{src}:{n}: invalid record: {problem}"
                for n, (_, problem) in enumerate(lines, 1) if problem]
    return src, expected


def test_bad_json_records_are_reported_by_line_and_the_rest_is_planned(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    src, expected = _hostile_jsonl(tmp_path)
    code, data, out, err = plan(root, src)
    assert code == 0, err
    assert err.splitlines() == expected
    assert data is not None
    assert (data["contacts_read"], data["invalid_records"], data["recipients"]) == (20, 18, 2)
    assert "Traceback" not in err and MARK not in out + err


def test_send_skips_bad_json_records_and_sends_the_rest(tmp_path: Path) -> None:
    src, expected = _hostile_jsonl(tmp_path)
    with sendable(tmp_path) as s:
        r = send(s, contacts=src)
        got = sorted(m.rcpt_tos for m in s.received)
    assert r.returncode == 0, r.stderr
    clean(r)
    assert "sent 2, failed 0, unconfirmed 0" in r.stdout
    assert "18 invalid" in r.stdout
    # the record that said no_email true, then false, was not sent either way
    assert got == [("patient0@example.org",), ("patient1@example.org",)]
    assert [x for x in r.stderr.splitlines() if ": invalid record: " in x] == expected


# --- bad CSV ------------------------------------------------------------------------------

CSV_HEAD = "id,email,first_name,age,language,care_status,next_appointment,deceased,no_email\n"


def csv_row(i: int, **extra: Any) -> str:
    c = {**contact(i), "no_email": "false", **extra}
    cells = [str(c[k]).lower() if isinstance(c[k], bool) else str(c[k])
             for k in CSV_HEAD.strip().split(",")]
    return ",".join(cells) + "\n"


def test_bad_csv_records_are_reported_by_their_own_line(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    padding = "".join(csv_row(i) for i in range(100, 260))  # > 8 KB: past the first chunk
    rows = [
        (csv_row(0), None),
        (csv_row(1, first_name=f'"{MARK}"x'), "malformed CSV row (unbalanced quotes?)"),
        (csv_row(2, first_name=f"{MARK}").rstrip("\n") + ",extra\n", "expected 9 cells, found 10"),
        (csv_row(3, first_name=MARK, no_email="maybe"), "key 'no_email': expected true or false"),
        (csv_row(4, first_name=MARK, deceased="2"), "key 'deceased': expected true or false"),
        (csv_row(5, first_name=MARK, age="forty"), "key 'age': expected an integer"),
        (csv_row(6, first_name=MARK, next_appointment="soon"), "key 'next_appointment': "
         "expected an ISO-8601 date-time"),
    ]
    text = CSV_HEAD + "".join(r for r, _ in rows) + padding
    bad_line = text.count("\n") + 1
    data = (text.encode() + csv_row(7, first_name=f"{MARK} \udcff").encode("utf-8",
            "surrogateescape") + csv_row(8, first_name='"Multi\nline, quoted"').encode()
            + csv_row(9).encode())
    src = tmp_path / "hostile.csv"
    src.write_bytes(data)
    code, plan_data, out, err = plan(root, src)
    assert code == 0, err
    expected = [f"{src}:{n}: invalid record: {p}" for n, (_, p) in enumerate(rows, 2) if p]
    expected.append(f"{src}:{bad_line}: invalid record: not valid UTF-8 (save the file as UTF-8)")
    assert err.splitlines() == expected
    assert plan_data is not None
    assert plan_data["invalid_records"] == 7
    assert plan_data["recipients"] == len(rows) + 160 + 3 - 7
    assert MARK not in out + err and "Traceback" not in err
    # the line of a record that follows a quoted cell spanning lines is still exact
    cut = tmp_path / "utf8.csv"
    cut.write_bytes(CSV_HEAD.encode() + csv_row(8, first_name='"Multi\nline"').encode()
                    + csv_row(7, first_name=f"{MARK} \udcff").encode("utf-8", "surrogateescape"))
    code, _, _, err = plan(root, cut)
    assert (code, err) == (0, f"{cut}:4: invalid record: not valid UTF-8 (save the file as "
                              "UTF-8)\n")


@pytest.mark.parametrize(("data", "message"), [
    (b"id,email,first_\xffname\n1,a@example.org,A\n", "{src}:1: the header row is not valid UTF-8"
     " CSV\n  fix: save the file as UTF-8 CSV"),
    (b'id,email,"first_name\n1,a@example.org,A\n', "{src}:1: the header row is not valid UTF-8 "
     "CSV\n  fix: save the file as UTF-8 CSV"),
    (b"id,email,email\n1,a@example.org,b@example.org\n", "{src}:1: column 'email' appears twice"
     "\n  fix: keep one of them"),
    (b"id,email,MARKER-PHI\n1,a@example.org,b\n", "{src}:1: column 'MARKER-PHI' is not a field "
     "in policy/fields.yaml nor a reserved key"),
])
def test_a_bad_csv_header_stops_before_anything_is_sent(tmp_path: Path, data: bytes,
                                                         message: str) -> None:
    src = tmp_path / "contacts.csv"
    src.write_bytes(data)
    with sendable(tmp_path) as s:
        r = send(s, contacts=src)
        received = list(s.received)
    assert r.returncode == 2
    assert r.stderr.startswith("Error: " + message.format(src=src)), r.stderr
    assert "Traceback" not in r.stderr
    assert received == []
    assert r.stdout == ""


def test_an_unterminated_quote_makes_one_invalid_record(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    src = tmp_path / "open.csv"
    src.write_text(CSV_HEAD + csv_row(0) + csv_row(1, first_name=f'"{MARK}') + csv_row(2))
    code, data, out, err = plan(root, src)
    # the open quote swallows the rest of the file into one cell: one invalid record
    assert code == 0
    assert err == f"{src}:3: invalid record: malformed CSV row (unbalanced quotes?)\n"
    assert data is not None and (data["invalid_records"], data["recipients"]) == (1, 1)
    assert MARK not in out + err


# --- header values from contact data ------------------------------------------------------

def _ew(charset_text: bytes, kind: str = "b") -> str:
    if kind == "b":
        return f"=?utf-8?b?{base64.b64encode(charset_text).decode()}?="
    return "=?utf-8?q?" + "".join(f"={c:02X}" for c in charset_text) + "?="


NAMES = {
    # a CR/LF, NUL and Unicode line separators: spaces, never a new header
    "patient0@example.org": ("Eve\r\nBcc: victim@example.org\r\n\r\nbody\x00\u2028x",
                             "Eve Bcc: victim@example.org body x"),
    # an encoded word holding CR/LF: CVE-2024-6923 in Python's email package
    "patient1@example.org": (_ew(b"x\r\nBcc: victim@example.org\r\n"),
                             _ew(b"x\r\nBcc: victim@example.org\r\n")),
    "patient2@example.org": (_ew(b"y\r\nBcc: victim@example.org", "q"),
                             _ew(b"y\r\nBcc: victim@example.org", "q")),
    # non-ASCII: RFC 2047 on the wire, decoded exactly
    "patient3@example.org": ("Zoë Ångström 山田 😀", "Zoë Ångström 山田 😀"),
    # HTML and template syntax: literal text in the subject
    "patient4@example.org": ('<script>alert(1)</script>"><img src=x onerror=alert(1)>{{ 7*7 }}',
                             '<script>alert(1)</script>"><img src=x onerror=alert(1)>{{ 7*7 }}'),
    # a long name with no space to fold at
    "patient5@example.org": ("N" * 300, "N" * 300),
}
# an address whose local part is an encoded word: valid for email-validator, but parsers
# decode it (Python's email package, aiosmtpd), CR/LF included: refused as invalid-email
EW_ADDRESS = _ew(b"z\r\nBcc: victim-with-a-long-address@example.org\r\n") + "@example.org"


def test_header_values_from_contacts_never_add_a_header(tmp_path: Path) -> None:
    records = [contact(i, first_name=NAMES[f"patient{i}@example.org"][0]) for i in range(6)]
    records.append(contact(6, email=EW_ADDRESS))
    records.append(contact(7, email="patient7@example.org\r\nBcc: victim@example.org"))
    with sendable(tmp_path, records=records) as s:
        r = send(s)
        got = {m.rcpt_tos[0]: m.data for m in s.received}
    assert r.returncode == 0, r.stderr
    assert "sent 6, failed 0" in r.stdout
    assert "excluded invalid-email 2" in r.stdout
    assert set(got) == set(NAMES)
    for to, raw in got.items():
        msg = parse(raw)
        head = header_bytes(raw)
        assert b"\nBcc" not in head and b"\nbody" not in head
        assert head.isascii()
        assert msg["To"] == to
        if to in NAMES:
            assert msg["Subject"] == f"Hello {NAMES[to][1]}, your visit"
    # the encoded words went out encoded, so they read back as the literal text
    for to in ("patient1@example.org", "patient2@example.org"):
        assert NAMES[to][0].encode() not in header_bytes(got[to])
        assert b"Subject: =?utf-8?" in header_bytes(got[to])
    assert (b"Subject: =?utf-8?b?SGVsbG8gWm/DqyDDhW5nc3Ryw7ZtIOWxseeUsCDwn5iALCB5b3VyIHZp?=\r\n"
            b" =?utf-8?b?c2l0?=\r\n" in header_bytes(got["patient3@example.org"]))


def test_html_and_script_in_fields_are_escaped_in_the_html_part(tmp_path: Path) -> None:
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(1)>{{ 7*7 }}&amp;'
    with sendable(tmp_path, records=[contact(0, first_name=evil)]) as s:
        r = send(s)
        (raw,) = [m.data for m in s.received]
    assert r.returncode == 0, r.stderr
    msg = parse(raw)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<script" not in html and "<img src=x" not in html and "49" not in html
    assert ("&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"
            "{{ 7*7 }}&amp;amp;") in html
    # the text part is text/plain: the literal characters are harmless there
    assert "Hello <script>alert(1)</script>\"><img src=x onerror=alert(1)>{{ 7*7 }}&amp;," in text
    assert msg["Subject"] == f"Hello {evil}, your visit"


def test_the_text_part_keeps_entities_and_links_as_written() -> None:
    """inscriptis unescapes text that lxml already decoded: the text part read `&lt;b&gt;`
    as `<b>`, and `&region=` in a link as `®ion=` (toolkit/plaintext.py escapes once more)."""
    from toolkit.plaintext import html_to_text, whole_text

    html = ('<html><body><div><table role="presentation"><tr><td><p>A &amp;amp; B '
            '&amp;lt;b&amp;gt; &amp; C <a href="https://clinic.example.org/?lang=en&amp;'
            'region=us&amp;para=3">more</a></p></td></tr></table></div></body></html>')
    expected = "A &amp; B &lt;b&gt; & C more (https://clinic.example.org/?lang=en&region=us&para=3)\n"
    assert html_to_text(html) == expected
    assert whole_text(html) == expected


def test_a_sender_name_holding_an_encoded_word_adds_no_header(tmp_path: Path) -> None:
    """Not contact data but the same trap: toolkit.yaml's from_name goes through From."""
    import datetime as dt

    from toolkit.loader import load_repo
    from toolkit.message import build_message, preview_token
    from toolkit.render import render_campaign
    from toolkit.send.wire import WireBuilder

    root = make_repo(tmp_path / "repo")
    evil = _ew(b"x\r\nBcc: victim@example.org\r\n")
    cfg = root / "toolkit.yaml"
    cfg.write_text(cfg.read_text().replace("from_name: Example Clinic", f'from_name: "{evil}"'))
    repo, _ = load_repo(root)
    campaign = repo.campaigns[CAMPAIGN]
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    c = {**contact(0), "next_appointment": now}
    rendered = render_campaign(repo, campaign, c, now=now)
    token = preview_token(repo, campaign, c)
    ref_msg = build_message(repo, campaign, c, rendered, digest="sha256:ab", token=token, now=now)
    ref = ref_msg.as_bytes()
    fast = WireBuilder(repo, campaign, digest="sha256:ab", now=now).build(
        address=c["email"], rendered=rendered, token=token).as_bytes()
    assert header_bytes(fast) == header_bytes(ref)
    msg = parse(fast)
    assert msg["From"].addresses[0].display_name == evil
    assert msg["From"].addresses[0].addr_spec == "care@clinic.example.org"
    assert str(ref_msg["From"]).endswith("<care@clinic.example.org>")


# --- non-ASCII addresses --------------------------------------------------------------------

class _Utf8Relay(LocalRelay):
    """The local relay, advertising SMTPUTF8 (RFC 6531)."""

    def _factory(self):  # type: ignore[no-untyped-def]
        make = super()._factory()

        def factory() -> SMTP:
            server = make()
            server.enable_SMTPUTF8 = True
            return server

        return factory


@contextmanager
def utf8_sendable(tmp_path: Path, records: list[dict[str, Any]]) -> Iterator[Sendable]:
    root = make_repo(tmp_path / "repo")
    with _Utf8Relay(handler=StoringHandler(), credentials=(ENV["RELAY_USERNAME"],
                    ENV["RELAY_PASSWORD"]), workdir=tmp_path / "relay") as relay:
        point_relays(root, port=relay.port, ca_file=relay.ca_file, max_connections=1)
        approve_all(root, tmp_path / "keys")
        yield Sendable(root, relay, write_contacts(tmp_path / "contacts.jsonl", records),
                       dict(ENV))


UTF8_LOCAL = "zoë.ångström@example.org"
IDN = "joe@exämple.org"
IDN_ASCII = "joe@xn--exmple-cua.org"


def test_without_smtputf8_a_non_ascii_local_part_is_refused_with_a_reason(
        tmp_path: Path) -> None:
    records = [contact(0), contact(1, email=UTF8_LOCAL), contact(2, email=IDN)]
    with sendable(tmp_path, records=records) as s:
        r = send(s)
        got = {m.rcpt_tos: m for m in s.received}
    assert r.returncode == 0, r.stderr
    assert "sent 2, failed 1, unconfirmed 0" in r.stdout
    assert ("  failed 1: 553 5.6.7 the address needs SMTPUTF8 (RFC 6531), which the relay does "
            "not offer") in r.stdout
    assert "zoë" not in r.stdout + r.stderr
    # the internationalized domain goes in its ASCII form: every relay can carry it
    assert set(got) == {("patient0@example.org",), (IDN_ASCII,)}
    msg = parse(got[(IDN_ASCII,)].data)
    assert msg["To"] == IDN_ASCII
    assert header_bytes(got[(IDN_ASCII,)].data).isascii()
    assert got[(IDN_ASCII,)].mail_from == "care@clinic.example.org"
    # refused for good (5xx): a second send does not try again
    again = send(s)
    assert "sent 0, failed 0" in again.stdout and "already-sent 3" in again.stdout


def test_with_smtputf8_a_non_ascii_local_part_goes_as_utf8(tmp_path: Path) -> None:
    records = [contact(0), contact(1, email=UTF8_LOCAL, first_name="Zoë")]
    with utf8_sendable(tmp_path, records) as s:
        r = send(s)
        got = {m.rcpt_tos: m for m in s.received}
    assert r.returncode == 0, r.stderr
    assert "sent 2, failed 0, unconfirmed 0" in r.stdout
    assert set(got) == {("patient0@example.org",), (UTF8_LOCAL,)}
    raw = got[(UTF8_LOCAL,)].data
    head = header_bytes(raw)
    # RFC 6532: the address as UTF-8 in the header, the display text still RFC 2047
    assert f"\r\nTo: {UTF8_LOCAL}\r\n".encode() in head
    assert b"Subject: =?utf-8?q?Hello_Zo=C3=AB=2C_your_visit?=\r\n" in head
    msg = email.message_from_bytes(raw, policy=policy.SMTPUTF8)
    assert msg.defects == [] and [k for k, _ in msg.raw_items()] == HEADERS
    assert str(msg["To"]) == UTF8_LOCAL
    # Python's parser reads UTF-8 header bytes as undecodable: only these two, only on To
    assert {type(d).__name__ for d in msg["To"].defects} <= {"NonASCIILocalPartDefect",
                                                              "UndecodableBytesDefect"}
    assert msg["Subject"].defects == ()
    # ASCII mail is sent as before, without the SMTPUTF8 parameter
    assert got[("patient0@example.org",)].data.split(b"\r\n\r\n")[0].isascii()


# --- a megabyte in a field --------------------------------------------------------------------

def test_a_megabyte_field_is_bounded(tmp_path: Path) -> None:
    big = MARK + "x" * 1_000_000
    words = (MARK + " ") * 80_000  # 880 KB of short words: the worst case for folding
    long_name = MARK + "y" * 2_000  # within the render limit, too long for a subject
    records = [contact(0), contact(1, first_name=big), contact(2, first_name=words),
               contact(3, language=big), contact(4, first_name=long_name)]
    with sendable(tmp_path, records=records) as s:
        root = s.root
        start = time.monotonic()
        code, data, _, err = plan(root, s.contacts)
        assert code == 0, err
        assert data is not None and data["recipients"] == 5
        r = send(s)
        elapsed = time.monotonic() - start
        got = {m.rcpt_tos[0]: m.data for m in s.received}
    assert r.returncode == 0, r.stderr
    clean(r)
    assert "sent 2, failed 3, unconfirmed 0" in r.stdout
    assert set(got) == {"patient0@example.org", "patient3@example.org"}
    for raw in got.values():
        parse(raw)
    assert len(got["patient3@example.org"]) < 20_000  # language is not in the message
    # each big name fails alone, with the subject's position and no value: a megabyte stops
    # at the render limit (toolkit/limits.py), a long name at the subject's 998 characters
    yaml_lines = (root / "campaigns" / CAMPAIGN / "campaign.yaml").read_text().splitlines()
    subject_line = 1 + [x.startswith("subject:") for x in yaml_lines].index(True)
    assert sorted(x.strip() for x in r.stdout.splitlines() if "render failed" in x) == [
        f"failed 1: render failed: campaigns/{CAMPAIGN}/campaign.yaml:{subject_line}: subject "
        "renders to more than 998 characters for this recipient; check the contact fields it "
        "uses",
        f"failed 2: render failed: campaigns/{CAMPAIGN}/campaign.yaml:{subject_line}: subject: "
        "the rendered template would exceed 262,144 characters or items, the limit for one "
        'render (docs/format.md, "Limits"); a message cannot be that long']
    assert elapsed < 60, elapsed
