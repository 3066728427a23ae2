"""Message bytes for one recipient, fast: the same message as the reference
builder (toolkit.message.build_message) without the email package's general paths.

The headers are byte-identical to the reference: lines that are constant for a send
(From, Reply-To, Date, MIME-Version) are folded once by the reference policy;
per-recipient ones (To, Subject) come from the reference's own `to_line` and
`subject_line`, which take a direct path for plain ASCII that needs no folding.
The parts are the same content in the same quoted-printable transfer encoding,
encoded by binascii (C) instead of quoprimime (Python): soft line breaks may fall
elsewhere, the decoded text is identical (tests/test_send.py checks both).
"""

from __future__ import annotations

import binascii
import datetime as dt
from dataclasses import dataclass
from email.utils import format_datetime

from toolkit.message import (
    POLICY,
    _address,
    _hash,
    clean_header,
    from_line,
    list_unsubscribe,
    message_id,
    sender_profile,
    subject_line,
    subject_text,
    to_line,
    wants_list_unsubscribe,
)
from toolkit.models import Campaign, Repo
from toolkit.pseudonym import normalize_address
from toolkit.relay.connection import dot_stuff
from toolkit.render import RenderedMessage

_PART_HEAD = {
    subtype: (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
              "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii")
    for subtype in ("plain", "html")
}
_BOUNDARY_LEN = 34  # "=_" + 32 hex digits, as the reference builder makes them


def _fold(name: str, value: object) -> bytes:
    """A header line exactly as the reference policy writes it."""
    stored_name, stored = POLICY.header_store_parse(name, value)
    return POLICY.fold_binary(stored_name, stored)


def _qp(text: str) -> bytes:
    # the reference normalizes line ends the same way before encoding (contentmanager):
    # every line ended by one LF. bytes.splitlines splits at CR and LF only, so without a
    # CR that is the text itself with a final LF (two 20 KB copies fewer)
    raw = text.encode("utf-8")
    if b"\r" in raw:
        body = b"\n".join(raw.splitlines()) + b"\n"
    else:
        body = raw if raw.endswith(b"\n") else raw + b"\n"
    # the input has no CR, so b2a_qp ends every line with a bare LF: each becomes CRLF
    return binascii.b2a_qp(body, istext=True).replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Entity:
    """A message split where S/MIME needs it: the outer headers, and the MIME entity
    (its Content-Type header and body) that is sent as is or encrypted."""

    headers: bytes
    entity_headers: bytes
    entity_body: bytes

    def as_bytes(self) -> bytes:
        return self.headers + self.entity_headers + b"\r\n" + self.entity_body

    def payload(self) -> bytes:
        """`dot_stuff(self.as_bytes())`, the DATA payload, in fewer passes over the body.

        The body is CRLF-only by construction (`_qp`, the part heads, the delimiters) and
        begins with a delimiter, so only the header block needs dot_stuff's line-end
        repair, and no doubled dot can straddle the two: the body only has its dots
        doubled, and the message is copied once (tests/test_send.py compares)."""
        head = dot_stuff(self.headers + self.entity_headers + b"\r\n")[:-3]  # its ".\r\n"
        body = self.entity_body
        if b"\r\n." in body:
            body = body.replace(b"\r\n.", b"\r\n..")
        return b"".join((head, body, b".\r\n"))


class WireBuilder:
    """One per campaign and send; `build` per recipient."""

    def __init__(self, repo: Repo, campaign: Campaign, *, digest: str, now: dt.datetime) -> None:
        sender = sender_profile(repo, campaign)
        self.repo = repo
        self.campaign = campaign
        self.digest = digest
        from_ = _address(sender.from_name, sender.from_address)
        self.domain = from_.domain
        self._from = from_line(from_)
        self._reply_to = (_fold("Reply-To", _address(None, sender.reply_to))
                          if sender.reply_to else b"")
        when = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
        self._date = _fold("Date", format_datetime(when))
        self._mime = _fold("MIME-Version", "1.0")
        self._list_unsubscribe = wants_list_unsubscribe(repo, campaign)
        sample = "=_" + "0" * (_BOUNDARY_LEN - 2)
        ctype = _fold("Content-Type", f'multipart/alternative; boundary="{sample}"')
        self._ctype = ctype.split(sample.encode("ascii"))
        if len(self._ctype) != 2:
            raise AssertionError("unexpected Content-Type folding")

    def build(self, *, address: str, rendered: RenderedMessage, token: str) -> Entity:
        to_addr = clean_header(address)
        subject = subject_text(self.campaign, rendered.subject)
        # To and Subject: the reference's own functions (contact data, never parsed)
        lines = [self._from, to_line(to_addr), self._reply_to, subject_line(subject), self._date,
                 b"Message-ID: " + message_id(self.digest, to_addr, self.domain).encode("ascii")
                 + b"\r\n"]
        if self._list_unsubscribe:
            value, post = list_unsubscribe(self.repo, token)
            if value:
                lines.append(b"List-Unsubscribe: " + value.encode("ascii") + b"\r\n")
            if post:
                lines.append(b"List-Unsubscribe-Post: " + post.encode("ascii") + b"\r\n")
        lines.append(self._mime)
        boundary = ("=_" + _hash("boundary", self.digest, normalize_address(to_addr))[:32]
                    ).encode("ascii")
        delim = b"--" + boundary + b"\r\n"
        body = b"".join((delim, _PART_HEAD["plain"], _qp(rendered.text), b"\r\n",
                         delim, _PART_HEAD["html"], _qp(rendered.html), b"\r\n",
                         b"--" + boundary + b"--\r\n"))
        return Entity(b"".join(lines), self._ctype[0] + boundary + self._ctype[1], body)
