"""The audit log encodes each entry's parts once and splices them (orjson for flat
fields): the bytes must be exactly what the canonical JSON of the entry gives, and
entries written in groups must verify like entries written one by one."""

from __future__ import annotations

import json
import random

from toolkit.audit import AuditLog, _canonical, _canonical_fields, entry_hash, entry_mac

KEY = b"k" * 32


def _random_text(rng: random.Random) -> str:
    pool = [chr(i) for i in range(0, 0x80)] + ["\u00e9", "\u2028", "\U0001f600", "\x7f", "\\"]
    return "".join(rng.choice(pool) for _ in range(rng.randint(0, 12)))


def test_fast_fields_encoding_equals_canonical() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        fields = {_random_text(rng) or "k": rng.choice([
            _random_text(rng), rng.randint(-2**70, 2**70), rng.randint(-1000, 1000), True, False,
            None, 1.5, 1e16, [1, "a"], {"b": 2}]) for _ in range(rng.randint(0, 6))}
        assert _canonical_fields(fields) == _canonical(fields), fields


def test_written_lines_are_the_canonical_entries(tmp_path) -> None:
    log = AuditLog.at(tmp_path / "a.jsonl", tmp_path / "head.json", KEY)
    one = log.append("send-start", campaign="flu", note="é \u2028 \x01", ratio=0.5)
    many = log.append_many("recipient", [
        {"campaign": "flu", "recipient": log.pseudonym(f"p{i}@example.org"), "status": "sent",
         "code": 250, "attempts": 1, "smime": False} for i in range(5)])
    log.close()
    lines = (tmp_path / "a.jsonl").read_bytes().splitlines()
    entries = [one, *many]
    assert len(lines) == len(entries) == 6
    for line, entry in zip(lines, entries, strict=True):
        assert line == _canonical(entry)
        assert json.loads(line) == entry
        assert entry["hash"] == entry_hash(entry)
        assert entry["mac"] == entry_mac(KEY, entry["hash"])
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5, 6]
    assert [e["prev"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]


def test_group_refuses_an_address_and_writes_nothing(tmp_path) -> None:
    import pytest

    from toolkit.audit import AuditError

    log = AuditLog.at(tmp_path / "a.jsonl", tmp_path / "head.json", KEY)
    with pytest.raises(AuditError, match="not a pseudonym"):
        log.append_many("recipient", [
            {"recipient": log.pseudonym("a@example.org")}, {"recipient": "b@example.org"}])
    log.close()
    assert not (tmp_path / "a.jsonl").read_bytes()
