"""dot_stuff counts line ends instead of copying the message to look for bare ones:
the output must be the same as the straightforward version's, on any input."""

from __future__ import annotations

import random
import re

import pytest

from toolkit.relay.connection import dot_stuff

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


def reference(message: bytes) -> bytes:
    """The earlier implementation: normalize every line end, double leading dots."""
    message = _LINE_ENDS.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


@pytest.mark.parametrize("message", [
    b"", b".", b"..", b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r", b".\r\n.", b"a\r\n.b\r\n",
    b"a\nb\r\nc\rd", b"line\r\n.\r\n", b"x" * 100, b"Subject: a\r\n\r\nbody\r\n",
])
def test_same_as_reference_on_edge_cases(message: bytes) -> None:
    assert dot_stuff(message) == reference(message)


def test_same_as_reference_on_random_inputs() -> None:
    rng = random.Random(20261123)
    alphabet = [b"\r", b"\n", b"\r\n", b".", b"a", b" ", b"=", b"\r\n."]
    for _ in range(5000):
        message = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert dot_stuff(message) == reference(message), message


def test_crlf_message_is_stuffed_and_terminated() -> None:
    assert dot_stuff(b"a\r\n.b\r\n") == b"a\r\n..b\r\n.\r\n"
    assert dot_stuff(b".a") == b"..a\r\n.\r\n"
