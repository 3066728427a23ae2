"""Verify an audit log's chain, MACs and head (`campaign audit verify`; docs/audit.md).

Every problem names the line and seq, and says what kind of tampering it
points to. Verification reads the log once, streaming, so memory stays flat.
"""

from __future__ import annotations

import hmac
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.audit import GENESIS, entry_hash, entry_mac, head_mac

MAX_PROBLEMS = 50


@dataclass
class AuditReport:
    entries: int = 0
    last_seq: int = 0
    events: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        elif len(self.problems) == MAX_PROBLEMS:
            self.problems.append("... more problems not shown")


def _load_head(head: Path, key: bytes, report: AuditReport) -> tuple[int, str] | None:
    try:
        data = json.loads(head.read_text(encoding="utf-8"))
        seq, h, mac = int(data["seq"]), str(data["hash"]), str(data["mac"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        report.problem(f"chain head {head}: damaged or not a head record")
        return None
    if not hmac.compare_digest(head_mac(key, seq, h), mac):
        report.problem(f"chain head {head}: HMAC does not verify: the head was edited")
        return None
    return seq, h


def verify_log(path: Path, head: Path, key: bytes) -> AuditReport:
    report = AuditReport()
    recorded = _load_head(head, key, report)
    head_bad = bool(report.problems)
    hashes_at_head: str | None = None
    expected, prev = 1, GENESIS
    prev_line = 0
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        if recorded is not None:
            report.problem(
                f"{path} is missing but the chain head records seq {recorded[0]}: "
                "the whole log was removed"
            )
        else:
            report.notes.append(f"{path}: no audit log yet")
        return report
    with fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"line {lineno}"
            if not raw.endswith(b"\n"):
                report.problem(f"{where}: incomplete last entry (cut off mid-write or truncated)")
                break
            try:
                entry: Any = json.loads(raw)
                seq = entry["seq"]
                if not isinstance(seq, int) or not isinstance(entry.get("hash"), str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                report.problem(f"{where}: not an audit entry (damaged or edited)")
                prev, prev_line = "", lineno  # unknown: the next entry's prev cannot be checked
                expected += 1
                continue
            where = f"line {lineno} (seq {seq})"
            report.entries += 1
            report.events[str(entry.get("event"))] += 1
            if entry_hash(entry) != entry["hash"]:
                report.problem(f"{where}: content does not match its hash: the entry was edited")
            elif not hmac.compare_digest(entry_mac(key, entry["hash"]), str(entry.get("mac"))):
                report.problem(
                    f"{where}: HMAC does not verify: the entry was forged or rewritten "
                    "without the audit key"
                )
            if seq > expected:
                gone = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
                report.problem(f"{where}: expected seq {expected}: {gone} deleted or moved")
            elif seq < expected:
                report.problem(f"{where}: seq {seq} comes after seq {expected - 1}: "
                               "entries were reordered or inserted")
            elif prev and entry.get("prev") != prev:
                before = f"line {prev_line}" if prev_line else "the start of the log"
                report.problem(f"{where}: 'prev' does not match the hash of the entry before it "
                               f"({before}): an entry was removed, inserted or edited")
            if recorded is not None and seq == recorded[0]:
                hashes_at_head = entry["hash"]
            if seq >= expected:
                # an out-of-order entry does not move the chain: the next entry links to the
                # highest seq seen, so one moved entry is reported once, not at every later line
                expected, prev, prev_line = seq + 1, entry["hash"], lineno
    last = expected - 1
    report.last_seq = last
    if recorded is None:
        if report.entries and not head_bad:
            report.problem(
                f"chain head {head} is missing: a truncated tail cannot be ruled out "
                "(restore the state folder, or investigate)"
            )
    elif recorded[0] > last:
        gone = f"seq {last + 1}" if recorded[0] == last + 1 else f"seq {last + 1}..{recorded[0]}"
        report.problem(
            f"the log ends at seq {last} but the chain head records seq {recorded[0]}: "
            f"{gone} removed from the end (truncated tail)"
        )
    elif hashes_at_head != recorded[1]:
        report.problem(
            f"entry seq {recorded[0]} differs from the chain head's record of it: "
            "the log was rewritten"
        )
    elif last > recorded[0]:
        report.notes.append(
            f"{last - recorded[0]} entries after seq {recorded[0]} were written after "
            "the last chain-head update (a crash can leave these); their removal "
            "could not be detected"
        )
    return report
