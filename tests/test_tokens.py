"""Unsubscribe tokens: round trip, forgery, alteration of each part, versions, malformed input."""

from __future__ import annotations

import base64

import pytest

from toolkit.errors import UserError
from toolkit.pseudonym import pseudonym
from toolkit.tokens import (
    KINDS,
    Token,
    TokenError,
    UnsupportedVersion,
    make_token,
    suppression_kind,
    unsubscribe_secrets,
    verify_token,
)

SECRET = b"test-unsubscribe-secret-not-for-production"
PSEUDO = pseudonym("pat.doe@example.org", b"test-audit-key")


def token(**kw: str) -> str:
    args = {"pseudonym": PSEUDO, "campaign": "flu-shot-2026", "kind": "commercial", **kw}
    return make_token(SECRET, **args)


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_for_every_kind(kind: str) -> None:
    t = token(kind=kind)
    assert verify_token(SECRET, t) == Token(pseudonym=PSEUDO, campaign="flu-shot-2026", kind=kind)


def test_format_is_url_safe_and_holds_no_address() -> None:
    t = token()
    version, pseudo, campaign, kind, mac = t.split(".")
    assert (version, pseudo, campaign, kind) == ("v1", PSEUDO, "flu-shot-2026", "commercial")
    assert len(mac) == 22  # 16 bytes of HMAC, base64url without padding
    assert "@" not in t and "example" not in t and "doe" not in t
    assert all(c.isalnum() or c in "._-~" for c in t)


@pytest.mark.parametrize("campaign",
                         ["spring.2026", "a..b", "Grippe – Herbst", "~tilde", "x" * 200])
def test_any_campaign_id_round_trips(campaign: str) -> None:
    t = token(campaign=campaign)
    assert all((c.isalnum() and c.isascii()) or c in "._-~" for c in t)
    assert verify_token(SECRET, t).campaign == campaign


def test_forged_with_another_secret_is_rejected() -> None:
    forged = make_token(b"attacker-secret", pseudonym=PSEUDO, campaign="flu-shot-2026", kind="all")
    with pytest.raises(TokenError, match=r"^unsubscribe token does not verify$"):
        verify_token(SECRET, forged)


@pytest.mark.parametrize("index,replacement", [
    (1, pseudonym("someone.else@example.org", b"test-audit-key")),
    (2, "other-campaign"),
    (3, "all"),
    (3, "fundraising"),
])
def test_altering_a_signed_part_is_rejected(index: int, replacement: str) -> None:
    parts = token().split(".")
    parts[index] = replacement
    with pytest.raises(TokenError, match=r"^unsubscribe token does not verify$"):
        verify_token(SECRET, ".".join(parts))


def test_altering_the_mac_is_rejected() -> None:
    parts = token().split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[4] + "=="))
    raw[0] ^= 1
    parts[4] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(TokenError, match=r"^unsubscribe token does not verify$"):
        verify_token(SECRET, ".".join(parts))


def test_unknown_or_retired_version_is_rejected() -> None:
    parts = token().split(".")
    parts[0] = "v0"
    with pytest.raises(UnsupportedVersion, match=r"^unsupported unsubscribe token version 'v0'$"):
        verify_token(SECRET, ".".join(parts))
    parts[0] = "v2"
    with pytest.raises(TokenError, match=r"^unsupported unsubscribe token version 'v2'$"):
        verify_token(SECRET, ".".join(parts))


@pytest.mark.parametrize("bad", [
    "",
    "v1",
    "v1.a.b.c",
    "not-a-token",
    "v1..flu.commercial.AAAAAAAAAAAAAAAAAAAAAA",
    "v1.r_x.flu.weekly.AAAAAAAAAAAAAAAAAAAAAA",     # unknown kind
    "v1.r_x.flu.commercial.short",                   # MAC of the wrong length
    "v1.r_x.flu.commercial.AAAAAAAAAAAAAAAAAAAA+/",  # not base64url
    "v1.r x.flu.commercial.AAAAAAAAAAAAAAAAAAAAAA",
    "v1.r_x.~!!.commercial.AAAAAAAAAAAAAAAAAAAAAA",
    "v1.r_x.flü.commercial.AAAAAAAAAAAAAAAAAAAAAA",
    "V1.r_x.flu.commercial.AAAAAAAAAAAAAAAAAAAAAA",
    "v1.r_x." + "a" * 600 + ".commercial.AAAAAAAAAAAAAAAAAAAAAA",
])
def test_malformed_tokens_are_rejected(bad: str) -> None:
    with pytest.raises(TokenError, match=r"^malformed unsubscribe token$"):
        verify_token(SECRET, bad)


def test_truncated_and_extended_tokens_are_rejected() -> None:
    t = token()
    for bad in (t[:-1], t + "A", t + ".", "." + t, t.replace(".", "..", 1)):
        with pytest.raises(TokenError):
            verify_token(SECRET, bad)


def test_key_rotation_accepts_previous_secret_and_signs_with_current() -> None:
    old = make_token(b"old-secret", pseudonym=PSEUDO, campaign="c", kind="all")
    new = make_token([SECRET, b"old-secret"], pseudonym=PSEUDO, campaign="c", kind="all")
    assert verify_token([SECRET, b"old-secret"], old).kind == "all"
    assert verify_token(SECRET, new).kind == "all"
    with pytest.raises(TokenError):
        verify_token(SECRET, old)


def test_make_token_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown suppression kind 'weekly'"):
        make_token(SECRET, pseudonym=PSEUDO, campaign="c", kind="weekly")
    with pytest.raises(ValueError, match="pseudonym must be a URL-safe identifier"):
        make_token(SECRET, pseudonym="pat@example.org", campaign="c", kind="all")
    with pytest.raises(ValueError, match="secret must be non-empty bytes"):
        make_token(b"", pseudonym=PSEUDO, campaign="c", kind="all")


def test_unsubscribe_secrets_reads_current_and_previous(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSUB_T", raising=False)
    monkeypatch.delenv("UNSUB_T_PREVIOUS", raising=False)
    with pytest.raises(UserError, match="environment variable UNSUB_T is not set"):
        unsubscribe_secrets("UNSUB_T")
    monkeypatch.setenv("UNSUB_T", "now")
    assert unsubscribe_secrets("UNSUB_T") == [b"now"]
    monkeypatch.setenv("UNSUB_T_PREVIOUS", "before")
    assert unsubscribe_secrets("UNSUB_T") == [b"now", b"before"]


def test_suppression_kind_follows_purpose() -> None:
    assert suppression_kind(base_purpose="fundraising", commercial=False) == "fundraising"
    assert suppression_kind(base_purpose="marketing", commercial=True) == "commercial"
    assert suppression_kind(base_purpose="appointment-reminder", commercial=False) == "all"
