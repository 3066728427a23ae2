"""The reference MIME builder: one rendered message for one recipient (DESIGN.md §5).

A fast byte builder (toolkit.send) must produce the same bytes; the choices that
decide them are fixed here and documented in docs/rendering.md:

- policy: email.policy.SMTP (CRLF, RFC 2047 for non-ASCII headers, folding at 78),
  except List-Unsubscribe, List-Unsubscribe-Post and Message-ID, written unfolded
  on one line: the email package would otherwise RFC 2047-encode the long URL
  and break one-click unsubscribe;
- multipart/alternative: text/plain then text/html, both UTF-8 quoted-printable;
- the MIME boundary and the Message-ID are derived from the campaign digest and
  the recipient's normalized address: the same message is the same bytes;
- header values built from anything contact-derived (subject, names, address)
  have control characters replaced, so no value can add a header;
- To and Subject, the headers contact data reaches, are written by `to_line` and
  `subject_line` and never parsed by the email package (and From by `from_line`, whose
  name comes from toolkit.yaml): it decodes RFC 2047 encoded
  words in what it is given, CR and LF included, and folds them out raw (CVE-2024-6923,
  fixed only in Python 3.11.10), so a name or address holding `=?utf-8?q?=0D=0A...?=`
  would add headers. A subject that is not short plain ASCII is sent wholly encoded,
  so that it reads back as written; a non-ASCII address goes as UTF-8 (RFC 6532);
- a subject longer than MAX_SUBJECT_CHARS (after cleaning) is a render error for that
  recipient: no mail client shows more, and the email package folds long headers in
  quadratic time (a 1 MB contact field in the subject took two minutes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import urllib.parse
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import EmailPolicy
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

from toolkit.addresses import holds_encoded_word, wire_address
from toolkit.models import Campaign, Repo, Sender
from toolkit.pseudonym import normalize_address, pseudonym
from toolkit.render import RenderedMessage, RenderError
from toolkit.tokens import make_token, suppression_kind

# Previews (`campaign render --format eml`, the preview site) sign unsubscribe tokens
# with this fixed, public key: a preview token never verifies against the real secret,
# so a preview link can never unsubscribe anybody, and builds stay byte-identical.
PREVIEW_SECRET = b"campaign-preview-secret: not a secret, never accepted by the endpoint"
PREVIEW_PSEUDONYM_KEY = b"campaign-preview-pseudonym-key"

_UNFOLDED = frozenset({"list-unsubscribe", "list-unsubscribe-post", "message-id"})
_LITERAL = frozenset({"to", "subject"})  # stored as given, written by to_line/subject_line
# C0 and C1 controls, DEL, and Unicode line and paragraph separators
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_PLAIN_ASCII = re.compile(r"[\x20-\x7e]*\Z")
MAX_SUBJECT_CHARS = 998


class _Policy(EmailPolicy):
    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if name.lower() in _LITERAL:
            return name, str(value)
        if name.lower() == "from" and isinstance(value, Address):
            return name, value  # written by from_line
        return super().header_store_parse(name, value)

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if isinstance(value, Address):  # read back what from_line writes
            value = from_line(value).decode("utf-8").split(":", 1)[1].strip()
        return super().header_fetch_parse(name, value)

    def fold(self, name: str, value: Any) -> str:
        if name.lower() in _UNFOLDED:
            return f"{name}: {value}{self.linesep}"
        if name.lower() in _LITERAL or isinstance(value, Address):
            return self.fold_binary(name, value).decode("utf-8")
        return super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() in _UNFOLDED:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        if name.lower() == "to":
            return to_line(value)
        if name.lower() == "subject":
            return subject_line(value)
        if isinstance(value, Address):
            return from_line(value)
        return super().fold_binary(name, value)


POLICY = _Policy(linesep="\r\n")  # email.policy.SMTP, but for the unfolded headers


def from_line(sender: Address) -> bytes:
    """The From header for the sender profile's name and address: the email policy's
    own folding, unless the name holds an encoded word, which that folding would decode
    (CR/LF included): then the name is encoded whole, in one encoded word (Python's parser
    keeps a space between two in a display name), and reads back as written."""
    if not holds_encoded_word(sender.display_name):
        stored_name, stored = EmailPolicy.header_store_parse(POLICY, "From", sender)
        return EmailPolicy.fold_binary(POLICY, stored_name, stored)
    name = Header(sender.display_name, "utf-8", maxlinelen=900, header_name="From")
    return f"From: {name.encode(linesep=POLICY.linesep)} <{sender.addr_spec}>\r\n".encode()


def to_line(address: str) -> bytes:
    """The To header for a cleaned address the gates admitted (no display name): the
    addr-spec as is, its domain in ASCII, UTF-8 when its local part is not (RFC 6532)."""
    addr = wire_address(address)
    _address(None, addr)  # the usable-address check
    if holds_encoded_word(addr):  # the gates refuse these (toolkit.addresses)
        raise ValueError("not a usable email address: an encoded word in an address")
    return b"To: " + addr.encode("utf-8") + b"\r\n"


def subject_line(text: str) -> bytes:
    """The Subject header for cleaned text: as is when short printable ASCII without
    `=?`; otherwise wholly RFC 2047-encoded (UTF-8), folded at 78 characters. Not the
    email package's folder: besides decoding `=?...?=` it is given, it can put a word's
    space between two encoded words, where readers drop it (RFC 2047 6.2)."""
    if _PLAIN_ASCII.match(text) and len(text) <= 69 and "=?" not in text:
        return b"Subject: " + text.encode("ascii") + b"\r\n"
    encoded = Header(text, "utf-8", maxlinelen=78, header_name="Subject").encode(linesep="\r\n")
    return ("Subject: " + encoded + "\r\n").encode("ascii")


def subject_text(campaign: Campaign, subject: str) -> str:
    """The rendered subject cleaned for its header, or a RenderError when it is too long
    (a contact field of a megabyte, say); the message names no value."""
    text = clean_header(subject)
    if len(text) > MAX_SUBJECT_CHARS:
        raise RenderError(f"subject renders to more than {MAX_SUBJECT_CHARS} characters for "
                          "this recipient; check the contact fields it uses",
                          campaign.file, campaign.pos("subject").line)
    return text


def clean_header(value: str | None) -> str:
    """A header value with control characters (CR, LF, NUL, ...) replaced by a space."""
    return " ".join(_CONTROL.sub(" ", value or "").split())


def _address(display_name: str | None, addr: str) -> Address:
    addr = clean_header(addr)
    if not addr or " " in addr or addr.count("@") != 1:
        raise ValueError("not a usable email address")
    local, domain = addr.split("@")
    return Address(display_name=clean_header(display_name), username=local, domain=domain)


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def message_id(digest: str, address: str, domain: str) -> str:
    """Stable for a campaign version and a recipient: a resend is recognisably the same mail."""
    return f"<{_hash('message-id', digest, normalize_address(address))[:40]}@{domain}>"


def wants_list_unsubscribe(repo: Repo, campaign: Campaign) -> bool:
    """Commercial mail (CAN-SPAM) and fundraising (164.514(f) opt-out) carry one-click."""
    return repo.is_commercial(campaign) or repo.base_purpose(campaign.purpose) == "fundraising"


def list_unsubscribe(repo: Repo, token: str) -> tuple[str | None, str | None]:
    """(List-Unsubscribe value, List-Unsubscribe-Post value) for a token."""
    cfg = repo.config
    if cfg is None:
        return None, None
    uris = []
    url = cfg.unsubscribe.url
    if url:
        uris.append("<" + url.replace("{token}", urllib.parse.quote(token, safe="")) + ">")
    if cfg.unsubscribe.mailto:
        subject = urllib.parse.quote(f"unsubscribe {token}", safe="")
        uris.append(f"<mailto:{cfg.unsubscribe.mailto}?subject={subject}>")
    if not uris:
        return None, None
    # RFC 8058: one-click needs an https URI in List-Unsubscribe
    post = "List-Unsubscribe=One-Click" if url and url.startswith("https://") else None
    return ", ".join(uris), post


def sender_profile(repo: Repo, campaign: Campaign) -> Sender:
    """The campaign's sender profile, which must have a From address."""
    cfg = repo.config
    if cfg is None or campaign.sender not in cfg.senders:
        raise ValueError(f"sender '{campaign.sender}' is not defined in toolkit.yaml")
    sender = cfg.senders[campaign.sender]
    if not sender.from_address:
        raise ValueError(f"sender '{campaign.sender}' has no from_address")
    return sender


def build_message(repo: Repo, campaign: Campaign, contact: dict[str, Any],
                  rendered: RenderedMessage, *, digest: str, token: str,
                  now: dt.datetime) -> EmailMessage:
    """The complete message as it is sent (before DKIM or S/MIME)."""
    sender = sender_profile(repo, campaign)
    to_addr = clean_header(str(contact.get("email") or ""))
    from_ = _address(sender.from_name, sender.from_address)

    msg = EmailMessage(policy=POLICY)
    msg["From"] = from_
    to_line(to_addr)  # raises ValueError now for an address that is not usable
    msg["To"] = to_addr
    if sender.reply_to:
        msg["Reply-To"] = _address(None, sender.reply_to)
    msg["Subject"] = subject_text(campaign, rendered.subject)
    msg["Date"] = format_datetime(now if now.tzinfo else now.replace(tzinfo=dt.UTC))
    msg["Message-ID"] = message_id(digest, to_addr, from_.domain)
    if wants_list_unsubscribe(repo, campaign):
        value, post = list_unsubscribe(repo, token)
        if value:
            msg["List-Unsubscribe"] = value
        if post:
            msg["List-Unsubscribe-Post"] = post
    msg["MIME-Version"] = "1.0"

    text = MIMEPart(policy=POLICY)
    text.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    html = MIMEPart(policy=POLICY)
    html.set_content(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    msg.make_alternative()
    msg.attach(text)
    msg.attach(html)
    msg.set_boundary("=_" + _hash("boundary", digest, normalize_address(to_addr))[:32])
    return msg


@lru_cache(maxsize=256)
def _preview_pseudonym(who: str) -> str:
    """A persona's preview pseudonym: every campaign's preview asks for it again."""
    return pseudonym(who, PREVIEW_PSEUDONYM_KEY)


def preview_token(repo: Repo, campaign: Campaign, contact: dict[str, Any]) -> str:
    """An unsubscribe token for previews: well-formed, signed with PREVIEW_SECRET."""
    who = str(contact.get("email") or contact.get("id") or "preview")
    kind = suppression_kind(base_purpose=repo.base_purpose(campaign.purpose),
                            commercial=repo.is_commercial(campaign))
    return make_token(PREVIEW_SECRET, pseudonym=_preview_pseudonym(who),
                      campaign=campaign.id, kind=kind)
