"""Mail that comes back: unsubscribe requests sent to the mailto address, bounces
(RFC 3464 delivery status notifications) and complaints (RFC 5965 ARF reports).

Each reader takes an mbox file or a Maildir folder and returns counts plus the
suppressions to make; the command applies them to the store. Nothing here
prints or logs an address: counts only.
"""

from __future__ import annotations

import contextlib
import mailbox
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import unquote

from toolkit.errors import UserError
from toolkit.pseudonym import normalize_address
from toolkit.tokens import Token, TokenError, verify_token

# A token anywhere in text: in a subject "unsubscribe v1....", or in a quoted URL.
TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9])v[0-9]{1,4}\.[A-Za-z0-9_-]{1,128}\.[A-Za-z0-9._~-]{1,300}?"
    r"\.(?:commercial|fundraising|all)\.[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])"
)
_ADDRESS = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{2,63}$")
_PARSER = BytesParser(policy=policy.default)


# --- mailboxes ---------------------------------------------------------------------


def read_mailbox(path: Path) -> Iterator[EmailMessage]:
    """Messages of an mbox file or a Maildir folder (cur/ and new/), in mailbox order."""
    box: mailbox.Mailbox
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise UserError("folder is not a Maildir (it has no cur/, new/ and tmp/)",
                            where=str(path), fix="give an mbox file or a Maildir folder")
        box = mailbox.Maildir(path, factory=None, create=False)
    elif path.is_file():
        with path.open("rb") as fh:
            head = fh.read(5)
        if head and head != b"From ":
            raise UserError("file is not an mbox (it does not start with a 'From ' line)",
                            where=str(path), fix="give an mbox file or a Maildir folder")
        box = mailbox.mbox(path, factory=None, create=False)
    else:
        raise UserError("no such file or folder", where=str(path))
    try:
        for key in box.iterkeys():
            msg = _PARSER.parsebytes(box.get_bytes(key))
            assert isinstance(msg, EmailMessage)
            yield msg
    finally:
        box.close()


def _text_of(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else part.get_payload()
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


# --- unsubscribe requests to the mailto address ---------------------------------------


@dataclass
class RequestCounts:
    messages: int = 0
    accepted: int = 0
    invalid_token: int = 0
    no_token: int = 0


def token_candidates(msg: EmailMessage) -> list[str]:
    """Token-shaped strings in the subject, then in the text parts, without repeats."""
    texts = [str(msg.get("subject", ""))]
    for part in msg.walk():
        if part.get_content_maintype() == "text" and not part.is_attachment():
            texts.append(_text_of(part))
    seen: dict[str, None] = {}
    for text in texts:
        # a client that did not decode the mailto's "subject=unsubscribe%20<token>"
        for match in TOKEN_RE.finditer(unquote(text)):
            seen.setdefault(match.group(0), None)
    return list(seen)


def scan_requests(path: Path, secrets: Sequence[bytes]) -> tuple[RequestCounts, list[Token]]:
    counts, tokens = RequestCounts(), []
    for msg in read_mailbox(path):
        counts.messages += 1
        candidates = token_candidates(msg)
        valid = []
        for text in candidates:
            with contextlib.suppress(TokenError):
                valid.append(verify_token(secrets, text))
        if valid:
            counts.accepted += 1
            tokens += valid
        elif candidates:
            counts.invalid_token += 1
        else:
            counts.no_token += 1
    return counts, tokens


# --- bounces and complaints ----------------------------------------------------------


@dataclass
class ReportCounts:
    messages: int = 0
    hard_bounces: int = 0      # recipients with Action: failed and Status 5.x.x
    soft_bounces: int = 0      # delayed, or failed with 4.x.x: ignored
    complaints: int = 0        # ARF Feedback-Type: abuse
    other_feedback: int = 0    # ARF of another type: ignored
    unmatched: int = 0         # a report naming no usable recipient
    not_reports: int = 0       # neither a DSN nor an ARF report


@dataclass
class ReportSuppressions:
    addresses: dict[str, str] = field(default_factory=dict)   # address -> "dsn" or "arf"
    tokens: list[tuple[Token, str]] = field(default_factory=list)


def _blocks(text: str) -> list[Message]:
    """Header blocks separated by blank lines, as in a delivery-status body."""
    parts = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [HeaderParser(policy=policy.compat32).parsestr(b) for b in parts if b.strip()]


def _report_fields(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part.

    The email package splits message/delivery-status into blocks itself; other
    message/* types (message/global-delivery-status, message/feedback-report) come
    back as one "message" whose headers are the first block and whose body holds
    the rest."""
    payload = part.get_payload()
    if isinstance(payload, str):
        return _blocks(payload)
    blocks: list[Message] = []
    for item in payload if isinstance(payload, list) else []:
        if isinstance(item, Message):
            blocks.append(item)
            body = item.get_payload()
            if isinstance(body, str) and body.strip():
                blocks += _blocks(body)
    return blocks


def _typed_address(value: str | None) -> str | None:
    """"rfc822; pat@example.org" (or a bare address) -> normalized address."""
    if not value:
        return None
    kind, sep, addr = str(value).partition(";")
    addr = (addr if sep else kind).strip().strip("<>").strip()
    if sep and kind.strip().lower() != "rfc822":
        return None
    addr = normalize_address(addr)
    return addr if _ADDRESS.match(addr) else None


def _enclosed(report: Message) -> Message | None:
    """The returned original message (or its headers) inside a report."""
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                return inner[0]
        if ctype in ("text/rfc822-headers", "text/rfc822-header"):
            return HeaderParser(policy=policy.default).parsestr(_text_of(part))
    return None


def _enclosed_token(report: Message, secrets: Sequence[bytes] | None) -> Token | None:
    inner = _enclosed(report)
    if inner is None or not secrets:
        return None
    for match in TOKEN_RE.finditer(str(inner.get("list-unsubscribe", ""))):
        try:
            return verify_token(secrets, match.group(0))
        except TokenError:
            continue
    return None


def _dsn(msg: Message, counts: ReportCounts, out: ReportSuppressions,
         secrets: Sequence[bytes] | None) -> None:
    parts = [p for p in msg.walk() if p.get_content_type() in
             ("message/delivery-status", "message/global-delivery-status")]
    if not parts:
        counts.not_reports += 1
        return
    blocks = [b for p in parts for b in _report_fields(p)[1:]]  # [0] is the per-message block
    for block in blocks:
        action = str(block.get("action", "")).strip().lower()
        status = str(block.get("status", "")).strip()
        if action != "failed" or not status.startswith("5."):
            if action in ("failed", "delayed"):
                counts.soft_bounces += 1
            continue
        addr = (_typed_address(block.get("original-recipient"))
                or _typed_address(block.get("final-recipient")))
        counts.hard_bounces += 1
        token = None if addr else _enclosed_token(msg, secrets)
        if addr:
            out.addresses.setdefault(addr, "dsn")
        elif token:
            out.tokens.append((token, "dsn"))
        else:
            counts.unmatched += 1


def _arf(msg: Message, counts: ReportCounts, out: ReportSuppressions,
         secrets: Sequence[bytes] | None) -> None:
    parts = [p for p in msg.walk() if p.get_content_type() == "message/feedback-report"]
    blocks = [b for p in parts for b in _report_fields(p)][:1]
    if not blocks:
        counts.not_reports += 1
        return
    report = blocks[0]
    if str(report.get("feedback-type", "")).strip().lower() != "abuse":
        counts.other_feedback += 1
        return
    counts.complaints += 1
    # Original-Rcpt-To names the recipient; failing that, our token in the returned
    # headers does, exactly; the returned To comes last, as providers often redact it.
    addrs = [a for a in (_typed_address(v) for v in report.get_all("original-rcpt-to", [])) if a]
    token = _enclosed_token(msg, secrets)
    inner = _enclosed(msg)
    if not addrs and token is None and inner is not None:
        pairs = getaddresses([str(v) for v in inner.get_all("to", [])])
        addrs = [a for a in (_typed_address(addr) for _name, addr in pairs) if a]
    for addr in addrs:
        out.addresses.setdefault(addr, "arf")
    if token:
        out.tokens.append((token, "arf"))
    if not addrs and not token:
        counts.unmatched += 1


def scan_reports(path: Path, secrets: Sequence[bytes] | None = None
                 ) -> tuple[ReportCounts, ReportSuppressions]:
    """Hard bounces and abuse complaints in a mailbox. With `secrets`, a report whose
    recipient is redacted is still matched through the token in the returned headers."""
    counts, out = ReportCounts(), ReportSuppressions()
    for msg in read_mailbox(path):
        counts.messages += 1
        report_type = str(msg.get_param("report-type", "", header="content-type")).lower()
        if msg.get_content_type() != "multipart/report":
            counts.not_reports += 1
        elif report_type == "delivery-status":
            _dsn(msg, counts, out, secrets)
        elif report_type == "feedback-report":
            _arf(msg, counts, out, secrets)
        else:
            counts.not_reports += 1
    return counts, out
