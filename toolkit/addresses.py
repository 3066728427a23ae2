"""Address checks on the plan's hot path: syntax validity and a compact "seen" set.

`is_valid_address` gives exactly email-validator's answer (check_deliverability off)
at a fraction of its cost. email-validator spends ~40 us an address, mostly splitting
it character by character in Python. Most real addresses are a plain dot-atom local
part at an ASCII host name; for those the answer depends only on the domain (checked
once by email-validator itself, and remembered in a bounded cache) and on lengths.
Everything else goes to email-validator unchanged. tests/test_gates.py compares both
on edge cases.

`SeenSet` remembers 64-bit fingerprints of recipients' addresses in flat arrays,
about 11-16 bytes a recipient instead of ~60 for a Python set of ints, so memory
stays flat at a million recipients.
"""

from __future__ import annotations

import re
from array import array

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import ATEXT

_MAX = 254  # email-validator's EMAIL_MAX_LENGTH, in UTF-8 bytes


def full_check(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


# A plain address: a dot-atom local part (email-validator's own character set) at an
# ASCII host name. One match splits it; anything else goes to email-validator whole.
_PLAIN = re.compile(f"([{ATEXT}]+(?:\\.[{ATEXT}]+)*)@([A-Za-z0-9.-]+)\\Z")
_DOMAINS: dict[str, int | None] = {}  # bounded below: domains repeat, addresses are never kept
_UNSEEN = -1


def _domain(domain: str) -> int | None:
    """The longer of a domain's normalized and ASCII lengths if email-validator accepts it."""
    try:
        v = validate_email("a@" + domain, check_deliverability=False)
        longest: int | None = max(len(v.domain.encode("utf-8")), len(v.ascii_domain))
    except EmailNotValidError:
        longest = None
    if len(_DOMAINS) >= 4096:
        _DOMAINS.clear()
    _DOMAINS[domain] = longest
    return longest


# RFC 2047 forbids encoded words in an address, yet parsers (Python's email package,
# aiosmtpd) decode one in a local part, CR and LF included: such an address is refused
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def holds_encoded_word(address: str) -> bool:
    return "=?" in address and _ENCODED_WORD.search(address) is not None


def is_valid_address(address: str) -> bool:
    """email-validator's verdict (no DNS), with a fast path for plain addresses; and no
    RFC 2047 encoded word (`holds_encoded_word`)."""
    if "=?" in address and _ENCODED_WORD.search(address):
        return False
    m = _PLAIN.match(address)
    if m is not None and len(address) <= _MAX:
        domain = m.group(2)
        longest = _DOMAINS.get(domain, _UNSEEN)
        if longest == _UNSEEN:
            longest = _domain(domain)
        if longest is not None and m.end(1) + 1 + longest <= _MAX:
            return True
    return full_check(address)


def wire_address(address: str) -> str:
    """The address as it goes on the wire (RCPT TO and the To header): unchanged when it
    is ASCII; an internationalized domain in its ASCII form (IDNA, as email-validator
    computes it), which every relay can route. Only a non-ASCII local part is left that
    needs SMTPUTF8 (RFC 6531) from the relay (docs/sending.md, "Addresses")."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        ascii_domain = validate_email("a@" + domain, check_deliverability=False).ascii_domain
    except EmailNotValidError:
        return address  # not an address the gates admit; the builder refuses it
    return f"{local}@{ascii_domain}"


class SeenSet:
    """An exact set of 64-bit ints in flat arrays: about 10-13 bytes a value.

    64 open-addressing tables (linear probing, load at most 0.8), chosen by the top 6
    bits. A table that fills grows by a quarter on its own, so growing never holds two
    copies of the whole set at once (one big table that doubles holds 1.5 times its
    size at the worst moment, and wastes up to half of it after), and every table goes
    through the same sizes, so a freed table is reused by the next one to grow.
    """

    _SHARD_BITS = 6

    def __init__(self, slots_per_shard: int = 256):
        n = 1 << self._SHARD_BITS
        self._tables = [array("Q", bytes(8 * slots_per_shard)) for _ in range(n)]
        self._counts = [0] * n
        self._shift = 64 - self._SHARD_BITS
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, h: int) -> bool:
        h = h or 1  # 0 marks an empty slot
        table = self._tables[h >> self._shift]
        size = len(table)
        i = h % size
        while True:
            v = table[i]
            if v == h:
                return True
            if v == 0:
                return False
            i += 1
            if i == size:
                i = 0

    def add(self, h: int) -> None:
        if not 0 <= h < 1 << 64:
            raise ValueError("SeenSet holds 64-bit unsigned ints")
        h = h or 1
        shard = h >> self._shift
        table = self._tables[shard]
        size = len(table)
        i = h % size
        while True:
            v = table[i]
            if v == h:
                return
            if v == 0:
                break
            i += 1
            if i == size:
                i = 0
        table[i] = h
        self._count += 1
        self._counts[shard] += 1
        if self._counts[shard] * 5 > size * 4:
            self._grow(shard)

    def _grow(self, shard: int) -> None:
        old = self._tables[shard]
        size = len(old) + len(old) // 4 + 1
        table = array("Q", bytes(8 * size))
        for h in old:
            if h:
                i = h % size
                while table[i]:
                    i = i + 1 if i + 1 < size else 0
                table[i] = h
        self._tables[shard] = table
