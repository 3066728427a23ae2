"""Property-based tests (hypothesis) of header building and segment evaluation.

(a) Any text in the contact fields that reach a header (the name in the subject, the
address) gives a message that parses back without defects, with exactly the expected
headers, no line over 998 octets, the subject and address reading back as written
(control characters become spaces, runs of white space one space: docs/sending.md),
and the fast builder's headers byte-identical to the reference builder's
(extending tests/test_send.py::test_fast_builder_matches_the_reference_builder).

(b) For any record and any segment tree of DESIGN.md's grammar, the compiled evaluator
(toolkit/segment_eval.py) agrees with the small interpreter below, written from
docs/plan.md: a null or absent field is unknown and every condition on it is false.

Runs are derandomized, so they are the same on every machine, and fast.
"""

from __future__ import annotations

import datetime as dt
import email
import operator
import sys
from collections import Counter
from dataclasses import replace
from email import policy
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from send_helpers import CAMPAIGN, contact, make_repo

from toolkit.addresses import is_valid_address, wire_address
from toolkit.contact import Normalizer
from toolkit.findings import Pos
from toolkit.loader import load_repo
from toolkit.message import build_message, preview_token
from toolkit.models import AllOf, AnyOf, Condition, FieldSpec, Leaf, Not, Segment
from toolkit.render import RenderError, render_campaign
from toolkit.segment_eval import compile_segment
from toolkit.send.wire import WireBuilder

HEADERS = ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "List-Unsubscribe",
           "List-Unsubscribe-Post", "MIME-Version", "Content-Type"]
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


# --- (a) header building -------------------------------------------------------------------

# Pieces that stress header code: line breaks of every kind, encoded-word syntax (an
# encoded CR/LF among them), RFC 5322 specials, non-ASCII of 2, 3 and 4 bytes, a word too
# long for one line, and white space of several kinds.
FRAGMENTS = ["\r\n", "\r", "\n", "\x00", "\t", "\x0b", "\x85", "\u2028", "\u2029", "\x7f",
             "=?", "?=", "=?utf-8?q?a=0D=0ABcc:_x@example.org?=",
             "=?utf-8?b?eA0KQmNjOiB5QGV4YW1wbGUub3Jn?=", "=?iso-8859-1?q?=E9?=",
             "Bcc: x@example.org", ":", ";", ",", "<", ">", '"', "\\", "(", ")", "@", "[",
             " ", "  ", "\u00a0", "\u3000", "é", "Ж", "山田", "😀", "\u0301", "A" * 80,
             "<script>alert(1)</script>", "{{ 7*7 }}", "&amp;", "%", "\ufeff", "\ufffe",
             "\uffff"]
NAME = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(FRAGMENTS)),
                max_size=10).map("".join)
LOCAL_ASCII = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[A-Za-z0-9_+-]{1,10}){0,2}",
                            fullmatch=True)
LOCAL_UTF8 = st.from_regex(r"[a-zéøßжЖ山田ü]{1,10}(\.[a-z0-9é]{1,6})?", fullmatch=True)
DOMAIN = st.sampled_from(["example.org", "EXAMPLE.org", "mail.example.org", "exämple.org",
                          "例子.广告", "xn--exmple-cua.org", "a-b.example.org"])
ADDRESS = st.tuples(st.one_of(LOCAL_ASCII, LOCAL_UTF8), DOMAIN).map("@".join)


def cleaned(text: str) -> str:
    """What docs/sending.md promises a header value becomes, written independently of
    toolkit.message.clean_header: every control character (C0, DEL, C1) and the Unicode
    line and paragraph separators become spaces; white space runs become one space."""
    out = "".join(" " if ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c in "\u2028\u2029"
                  else c for c in text)
    return " ".join(out.split())


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = make_repo(tmp_path_factory.mktemp("props") / "repo")
    loaded, _ = load_repo(root)
    return loaded


def _contact(repo: Any, name: str, address: str) -> dict[str, Any]:
    record = contact(0, first_name=name, email=address)
    assert Normalizer(repo.fields).first_problem(record) is None
    return record


def _body_line_limit(raw: bytes) -> None:
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=NAME, address=ADDRESS)
def test_headers_from_any_name_and_address_parse_back_as_written(repo: Any, name: str,
                                                                 address: str) -> None:
    assume(is_valid_address(address))  # what the gates admit
    assume(name != "")  # an empty value is null: the subject cannot render (tested elsewhere)
    campaign = repo.campaigns[CAMPAIGN]
    c = _contact(repo, name, address)
    subject = cleaned(f"Hello {name}, your visit")
    try:
        rendered = render_campaign(repo, campaign, c, now=NOW, text=False)
    except RenderError as exc:  # only for a subject too long for a header
        assert len(subject) > 998, exc
        return
    rendered = replace(rendered, text=f"Hello {name},\n")
    token = preview_token(repo, campaign, c)
    builder = WireBuilder(repo, campaign, digest="sha256:ab", now=NOW)
    if len(subject) > 998:
        with pytest.raises(RenderError, match="subject renders to more than 998 characters"):
            builder.build(address=address, rendered=rendered, token=token)
        return
    fast = builder.build(address=address, rendered=rendered, token=token).as_bytes()
    ref = build_message(repo, campaign, c, rendered, digest="sha256:ab", token=token,
                        now=NOW).as_bytes()
    head, ref_head = fast.split(b"\r\n\r\n", 1)[0], ref.split(b"\r\n\r\n", 1)[0]
    assert head == ref_head
    _body_line_limit(fast)
    msg = email.message_from_bytes(fast, policy=policy.SMTPUTF8)
    assert msg.defects == []
    assert [k for k, _ in msg.raw_items()] == HEADERS
    for part in msg.walk():
        assert part.defects == []
    assert msg["Subject"] == subject, (subject, head)
    assert msg["Subject"].defects == ()
    wire = wire_address(address)
    to_line = [x for x in head.split(b"\r\n") if x.startswith(b"To: ")]
    assert to_line == [b"To: " + wire.encode("utf-8")]
    if wire.isascii():
        assert head.isascii()
        assert msg["To"] == wire and msg["To"].defects == ()
    else:  # RFC 6532: only the To line holds UTF-8; Python reads it as undecodable bytes
        assert b"\r\n".join(x for x in head.split(b"\r\n") if x not in to_line).isascii()
        assert str(msg["To"]) == wire


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAME)
def test_a_long_name_never_makes_a_line_over_998_octets(repo: Any, name: str) -> None:
    # the same name repeated: subjects from a few hundred to a few thousand characters
    long_name = (name + " ") * 20 + "."
    campaign = repo.campaigns[CAMPAIGN]
    c = _contact(repo, long_name, "patient0@example.org")
    subject = cleaned(f"Hello {long_name}, your visit")
    try:
        rendered = render_campaign(repo, campaign, c, now=NOW, text=False)
        raw = WireBuilder(repo, campaign, digest="sha256:ab", now=NOW).build(
            address="patient0@example.org", rendered=replace(rendered, text="x\n"),
            token="v1.x").as_bytes()
    except RenderError as exc:
        assert len(subject) > 998 and "more than 998 characters" in exc.message
        return
    assert len(subject) <= 998
    _body_line_limit(raw)
    assert email.message_from_bytes(raw, policy=policy.SMTPUTF8)["Subject"] == subject


# --- (b) segment evaluation ------------------------------------------------------------------

FIELDS = {name: FieldSpec(type=type_, class_="none") for name, type_ in {
    "name": "string", "age": "integer", "score": "number", "active": "boolean",
    "born": "date", "visit": "datetime", "codes": "list[string]", "mail": "email"}.items()}
TYPES = {k: f.type for k, f in FIELDS.items()}
POS = Pos("segments/s.yaml", 1, 1)
AT = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
TODAY = AT.date()
EST = dt.timezone(dt.timedelta(hours=-5))

STRINGS = st.sampled_from(["", "a", "b", "ab", "Avery", "avery", "E11", "I10", "E1", "é"])
INTS = st.sampled_from([-3, 0, 1, 2, 40, 64, 65, 66])
NUMBERS = st.one_of(INTS, st.sampled_from([2.5, -0.5, 65.0, 64.99, 1e-9]))
DAYS = st.integers(min_value=-40, max_value=40)
DATES = DAYS.map(lambda d: TODAY + dt.timedelta(days=d))
DATETIMES = st.builds(lambda d, h, tz: (AT + dt.timedelta(days=d, hours=h)).astimezone(tz),
                      DAYS, st.sampled_from([-13, -1, 0, 1, 12, 23]),
                      st.sampled_from([dt.UTC, EST]))
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": STRINGS, "email": st.sampled_from(["a@example.org", "b@example.org", "ab"]),
    "integer": INTS, "number": NUMBERS, "boolean": st.booleans(),
    "date": DATES, "datetime": DATETIMES, "list[string]": st.lists(STRINGS, max_size=3)}


def _raw(type_: str, v: Any) -> Any:
    """A normalized value as a JSON line would carry it."""
    if type_ in ("date", "datetime"):
        return v.isoformat()
    return v


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key, type_ in TYPES.items():
        kind = draw(st.sampled_from(["absent", "null", "value", "value"]))
        if kind == "null":
            raw[key] = None
        elif kind == "value":
            raw[key] = _raw(type_, draw(VALUES[type_]))
    problem = Normalizer(FIELDS).first_problem(raw)
    assert problem is None, problem
    return raw


def _literal(draw: st.DrawFn, type_: str) -> Any:
    """A condition's value as YAML may give it: text for dates, or date objects."""
    v = draw(VALUES[type_])
    if type_ == "date":
        return draw(st.sampled_from([v, v.isoformat()]))
    if type_ == "datetime":
        return draw(st.sampled_from([v, v.isoformat(), v.date(), v.date().isoformat(),
                                     v.replace(tzinfo=None).isoformat()]))
    return v


_ORDERED = ("integer", "number", "date", "datetime", "string")


@st.composite
def leaves(draw: st.DrawFn) -> Leaf:
    key = draw(st.sampled_from(sorted(TYPES)))
    type_ = TYPES[key]
    ops = ["==", "!=", "in", "not in", "exists"]
    if type_ in _ORDERED:
        ops += ["<", "<=", ">", ">="]
    if type_ in ("list[string]", "string", "email"):
        ops.append("contains")
    if type_ in ("date", "datetime"):
        ops += ["within_days", "older_than_days"]
    op = draw(st.sampled_from(ops))
    value: Any
    if op == "exists":
        value = draw(st.sampled_from([None, True, False]))
    elif op in ("within_days", "older_than_days"):
        value = draw(st.one_of(st.integers(0, 45), st.sampled_from([0.5, 1.5, 6.99])))
    elif op in ("in", "not in"):
        inner = "string" if type_ == "list[string]" else type_
        value = [_literal(draw, inner) for _ in range(draw(st.integers(0, 3)))]
    elif op == "contains":
        value = draw(STRINGS if type_ != "email" else st.sampled_from(["@", "a", "example"]))
    elif type_ == "list[string]":
        value = draw(st.lists(STRINGS, max_size=3))
    else:
        value = _literal(draw, type_)
    return Leaf(field=key, op=op, value=value, pos=POS, loc=None)  # type: ignore[arg-type]


conditions = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: AllOf(tuple(xs), POS)),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: AnyOf(tuple(xs), POS)),
        inner.map(lambda x: Not(x, POS))),
    max_leaves=8)


def _as(type_: str, v: Any) -> Any:
    """A literal in the field's normalized type: date text to a date; date-time text, a
    date or a naive date-time to an aware date-time (midnight, UTC)."""
    if type_ == "date":
        return v if isinstance(v, dt.date) else dt.date.fromisoformat(v)
    if type_ == "datetime":
        if isinstance(v, str):
            v = dt.datetime.fromisoformat(v)
        if not isinstance(v, dt.datetime):
            v = dt.datetime(v.year, v.month, v.day)
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    return v


_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}


def reference(c: Condition, r: dict[str, Any]) -> bool:
    """docs/plan.md and segment_eval's docstring, as plainly as they read."""
    if isinstance(c, AllOf):
        return all(reference(i, r) for i in c.items)
    if isinstance(c, AnyOf):
        return any(reference(i, r) for i in c.items)
    if isinstance(c, Not):
        return not reference(c.item, r)
    type_, op, lit, v = TYPES[c.field], c.op, c.value, r.get(c.field)
    if op == "exists":
        return (v is not None) is (lit is not False)
    if v is None:
        return False  # unknown: every other condition is false
    is_list = type_ == "list[string]"
    if op in ("within_days", "older_than_days"):
        # a date against the evaluation date, a date-time against the evaluation time
        span = dt.timedelta(days=lit)
        delta = v - (TODAY if type_ == "date" else AT)
        if op == "within_days":
            return -span <= delta <= span
        return -delta > span
    if op in ("in", "not in"):
        values = [_as("string" if is_list else type_, x) for x in lit]
        hit = any(x in values for x in v) if is_list else v in values
        return hit if op == "in" else not hit
    if op == "contains":
        return lit in v
    want = tuple(lit) if is_list else _as(type_, lit)
    return _COMPARE[op](v, want)


def test_the_compiled_evaluator_agrees_with_a_plain_interpreter() -> None:
    outcomes: Counter[bool] = Counter()

    @settings(max_examples=1000, deadline=None, derandomize=True)
    @given(cond=conditions, recs=st.lists(records(), min_size=1, max_size=6))
    def agree(cond: Condition, recs: list[dict[str, Any]]) -> None:
        predicate = compile_segment(Segment("s", "segments/s.yaml", None, cond, None),
                                    FIELDS, at=AT)  # type: ignore[arg-type]
        for r in recs:
            got = predicate(r)
            assert got is reference(cond, r), (cond, r)
            outcomes[got] += 1

    agree()
    # the cases are not all one way: a property that always sees False proves little
    total = outcomes[True] + outcomes[False]
    assert outcomes[True] > total // 5 and outcomes[False] > total // 5, outcomes
    print(f"segments: {total} evaluations, {outcomes[True]} true", file=sys.stderr)
