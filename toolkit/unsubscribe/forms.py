"""Small, bounded form parsing for the two POST bodies the endpoint accepts.

RFC 8058 §3.1: the one-click POST carries `List-Unsubscribe=One-Click`, sent as
multipart/form-data (SHOULD) or application/x-www-form-urlencoded (MAY). Our own
page posts `choice=kind|all` urlencoded. Bodies are a few bytes, so the stdlib
parsers do, without a python-multipart dependency.
"""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

MAX_FIELDS = 16


class FormError(ValueError):
    """The body is not a form we can read."""


def parse_form(content_type: str, body: bytes) -> dict[str, str]:
    """Fields of a urlencoded or multipart body; the first value of a repeated name wins."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded" or (not media and b"=" in body):
        try:
            pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True,
                              strict_parsing=False, max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError) as exc:
            raise FormError("the form body is not valid") from exc
    elif media == "multipart/form-data":
        pairs = _multipart(content_type, body)
    else:
        raise FormError("the request body is not a form")
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def _multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    msg = BytesParser(policy=HTTP).parsebytes(head + body)
    if not msg.is_multipart() or msg.get_boundary() is None:
        raise FormError("the multipart form body is not valid")
    pairs: list[tuple[str, str]] = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or len(pairs) >= MAX_FIELDS:
            continue
        payload = part.get_payload(decode=True) or b""
        pairs.append((name, payload.decode("utf-8", "replace").strip()))
    if msg.defects and not pairs:
        raise FormError("the multipart form body is not valid")
    return pairs


def is_one_click(fields: dict[str, str]) -> bool:
    return fields.get("List-Unsubscribe") == "One-Click"
