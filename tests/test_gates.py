"""Gate helpers: the email fast path agrees with email-validator; the seen-set; authorizations."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from email_validator import EmailNotValidError, validate_email

from toolkit.addresses import SeenSet, is_valid_address
from toolkit.gates import REASONS, GateConfig, Gates, authorization_reason
from toolkit.suppression import Matcher

EDGE = [
    "a@example.org",
    "A.B-c+tag@Example.ORG",
    "x@localhost",
    "x@example",
    "x@test",
    "x@foo.test",
    "x@example.invalid",
    "x@sub.example.org.",
    "x@.example.org",
    "x@example..org",
    "x@-example.org",
    "x@example-.org",
    "x@exa_mple.org",
    ".x@example.org",
    "x.@example.org",
    "x..y@example.org",
    "x@@example.org",
    "@example.org",
    "x@",
    "",
    " x@example.org",
    "x@example.org ",
    "x y@example.org",
    '"x y"@example.org',
    "x@[127.0.0.1]",
    "Name <x@example.org>",
    "x@xn--bcher-kva.example",
    "x@bücher.example",
    "ü@example.org",
    "x@123.example.org",
    "x@example.123",
    "x@a.b",
    "postmaster@example.org",
    "x@" + "a" * 63 + ".org",
    "x@" + "a" * 64 + ".org",
    "a" * 64 + "@example.org",
    "a" * 65 + "@example.org",
    "x@example.org\n",
    "x!#$%&'*+/=?^_`{|}~@example.org",
]


def _truth(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _long(local: int, domain_total: int) -> str:
    labels, left = [], domain_total - 4
    while left > 0:
        n = min(63, left)
        labels.append("d" * n)
        left -= n + 1
    return "l" * local + "@" + ".".join(labels) + ".org"


@pytest.mark.parametrize(
    "address", EDGE + [_long(n, d) for n in (1, 60, 64, 70) for d in (180, 190, 200, 240, 252)]
)
def test_fast_path_agrees_with_email_validator(address: str) -> None:
    assert is_valid_address(address) is _truth(address)


def test_fast_path_agrees_on_random_addresses() -> None:
    rnd = random.Random(1)
    alphabet = 'abcXYZ09.-_+@!"<> ü'
    for _ in range(3000):
        local = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8)))
        domain = rnd.choice(
            [
                "example.org",
                "EXAMPLE.org",
                "ex-ample.org",
                "example",
                "x.test",
                "".join(rnd.choice("ab.-_") for _ in range(rnd.randint(0, 6))),
            ]
        )
        address = f"{local}@{domain}"
        assert is_valid_address(address) is _truth(address), address


def test_seen_set() -> None:
    s = SeenSet(slots_per_shard=2)  # grows many times
    rnd = random.Random(2)
    values = [rnd.getrandbits(64) for _ in range(5000)]
    values += [0, 2**64 - 1, 2**58, 2**58 + 1, 2**58 + 2**10]
    for v in values:
        assert v not in s
        s.add(v)
        assert v in s
    s.add(values[0])
    assert all(v in s for v in values)
    assert len(s) == len(values)
    assert 12345 not in s
    with pytest.raises(ValueError):
        s.add(-1)


D = dt.date(2026, 6, 15)


def auth(
    scope: str = "p",
    granted: str | None = "2026-01-01",
    expires: str | None = None,
    revoked: str | None = None,
) -> dict[str, dt.date | str | None]:
    f = dt.date.fromisoformat
    return {
        "scope": scope,
        "granted_on": granted and f(granted),
        "expires_on": expires and f(expires),
        "revoked_on": revoked and f(revoked),
    }


@pytest.mark.parametrize(
    ("auths", "want"),
    [
        (None, "no-authorization"),
        ([], "no-authorization"),
        ([auth("other")], "no-authorization"),
        ([auth(granted="2026-06-16")], "no-authorization"),  # granted tomorrow
        ([auth(granted="2026-06-15")], None),  # granted today
        ([auth(granted=None)], None),
        ([auth(expires="2026-06-16")], None),
        ([auth(expires="2026-06-15")], "authorization-expired"),  # expires on that day
        ([auth(revoked="2026-06-16")], None),
        ([auth(revoked="2026-06-15")], "authorization-revoked"),
        ([auth(expires="2026-01-02"), auth(revoked="2026-02-01")], "authorization-expired"),
        ([auth(revoked="2026-02-01"), auth(revoked="2026-03-01")], "authorization-revoked"),
        ([auth(revoked="2026-02-01"), auth()], None),  # a later, valid one
        ([auth(expires="2026-02-01", revoked="2026-01-15")], "authorization-expired"),
    ],
)
def test_authorization_reason(auths: list | None, want: str | None) -> None:
    assert authorization_reason(auths, "p", D) == want


def test_gate_order_and_duplicates() -> None:
    at = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
    gates = Gates(
        GateConfig(
            at=at,
            suppression=Matcher(frozenset({"s@example.org"}), frozenset()),
            authorization_scope="p",
        )
    )
    valid = (auth(),)
    records = [
        ({"email": "bad", "no_email": True}, "invalid-email"),
        ({"no_email": True}, "invalid-email"),
        ({"email": "S@example.org", "no_email": True}, "confidential-no-email"),
        ({"email": "S@example.org"}, "suppressed"),
        ({"email": "a@example.org"}, "no-authorization"),
        ({"email": "a@example.org", "authorizations": valid}, None),
        ({"email": "A@EXAMPLE.ORG", "authorizations": valid}, "duplicate"),
        ({"email": "A@EXAMPLE.ORG"}, "no-authorization"),  # earlier reasons first
    ]
    assert [gates.check(r) for r, _ in records] == [want for _, want in records]
    assert set(REASONS) >= {w for _, w in records if w}


def test_pseudonyms_need_a_key() -> None:
    at = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="a pseudonym key is needed"):
        Gates(GateConfig(at=at, suppression=Matcher(frozenset(), frozenset({"r_x"}))))
    gates = Gates(
        GateConfig(
            at=at,
            suppression=Matcher(frozenset(), frozenset()),
            pseudonym_key=b"k",
            already_sent={"nobody"}.__contains__,
        )
    )
    assert gates.check({"email": "a@example.org"}) is None
