"""The worker's shortcuts in toolkit.send.wire give the bytes of the plain way exactly."""

from __future__ import annotations

import binascii
import datetime as dt
import random
from pathlib import Path

from send_helpers import CAMPAIGN, make_repo

from toolkit.relay.connection import dot_stuff
from toolkit.send import wire

ALPHABET = ["a", "Z", " ", "\t", "\n", "\r", "\r\n", ".", "..", "=", "\x0b", "\x0c", "\x1c",
            "\x85", "\u2028", "é", "\x00", "x" * 80, "\n.", "\n.\n"]


def _reference_qp(text: str) -> bytes:  # wire._qp as it was: always split and rejoined
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    return binascii.b2a_qp(body, istext=True).replace(b"\n", b"\r\n")


def test_qp_without_the_split_is_the_same_bytes() -> None:
    rng = random.Random(5)
    for _ in range(20_000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 25)))
        assert wire._qp(text) == _reference_qp(text), repr(text)


def test_payload_is_dot_stuff_of_the_message(tmp_path: Path) -> None:
    from toolkit.loader import load_repo
    from toolkit.message import preview_token
    from toolkit.render import render_campaign

    repo, _ = load_repo(make_repo(tmp_path / "repo"))
    campaign = repo.campaigns[CAMPAIGN]
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    builder = wire.WireBuilder(repo, campaign, digest="sha256:ab", now=now)
    base = render_campaign(repo, campaign, {"email": "pat@example.org", "first_name": "Pat",
                                            "next_appointment": now}, now=now)
    rng = random.Random(7)
    stuffed = 0
    for i in range(300):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
        html = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
        subject = ".Re: " + "".join(rng.choice(["a", " ", "é", "."]) for _ in range(30))
        rendered = type(base)(**{**base.__dict__, "text": text, "html": html,
                                 "subject": subject if i % 2 else base.subject})
        entity = builder.build(address=f"p{i}@example.org", rendered=rendered,
                               token=preview_token(repo, campaign, {"email": f"p{i}@example.org"}))
        expected = dot_stuff(entity.as_bytes())
        assert entity.payload() == expected
        stuffed += b"\r\n.." in expected
    assert stuffed > 50  # the doubled dots were exercised


def test_the_text_cache_stops_looking_when_every_message_is_its_own() -> None:
    from toolkit.plaintext import whole_text
    from toolkit.send.textcache import TRIAL, TextCache

    cache = TextCache()
    token = "v1.r_abc.camp.all.Zz9"
    for i in range(TRIAL + 20):
        html = f'<p>Dear P{i}</p><p><a href="https://example.org/u/{token}">Unsubscribe</a></p>'
        assert cache.text(html, token) == whole_text(html)
        assert cache.looking == (i < TRIAL - 1)
    shared = f'<p>Dear all</p><p><a href="https://example.org/u/{token}">Unsubscribe</a></p>'
    for _ in range(3):  # still the right text, now without a lookup
        assert cache.text(shared, token) == whole_text(shared)
    assert cache.hits == 0
