"""What the audit log says was sent (`campaign audit report`): per send, the campaign, its
digest, the approvals in force, the relay and TLS mode, and the outcomes by count.

Counts and pseudonyms only, like the log itself. The report is only as good as the
log: `campaign audit report` verifies the chain first and says so.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SendSummary:
    campaign: str
    digest: str
    started: str
    start_seq: int
    ended: str | None = None
    relay: str | None = None
    tls: str | None = None
    approvals: list[str] = field(default_factory=list)
    planned: int | None = None
    excluded: dict[str, int] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    smime: int = 0
    stopped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "digest": self.digest,
            "started": self.started,
            "ended": self.ended,
            "start_seq": self.start_seq,
            "relay": self.relay,
            "tls": self.tls,
            "approvals": self.approvals,
            "planned": self.planned,
            "excluded": self.excluded,
            "sent": self.outcomes["sent"],
            "failed": self.outcomes["failed"],
            "unconfirmed": self.outcomes["unconfirmed"],
            "smime": self.smime,
            "stopped": self.stopped,
        }


@dataclass
class AuditSummary:
    sends: list[SendSummary] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)


def summarize(path: Path) -> AuditSummary:
    out = AuditSummary()
    open_sends: dict[str, SendSummary] = {}
    with path.open("rb") as fh:
        for raw in fh:
            try:
                e = json.loads(raw)
                event, f, time, seq = e["event"], e["fields"], e["time"], e["seq"]
            except (ValueError, KeyError, TypeError):
                continue  # `audit verify` reports damage; the summary reads what it can
            cid = str(f.get("campaign", ""))
            if event == "send-start":
                s = SendSummary(
                    cid,
                    str(f.get("digest", "")),
                    time,
                    seq,
                    relay=f.get("relay"),
                    tls=f.get("tls"),
                    approvals=list(f.get("approvals") or []),
                    planned=f.get("recipients"),
                    excluded=dict(f.get("excluded") or {}),
                )
                open_sends[cid] = s
                out.sends.append(s)
            elif event == "recipient" and cid in open_sends:
                s = open_sends[cid]
                s.outcomes[str(f.get("status"))] += 1
                s.smime += bool(f.get("smime"))
            elif event == "send-end" and cid in open_sends:
                s = open_sends.pop(cid)
                s.ended, s.stopped = time, f.get("stopped")
            elif event == "refusal":
                out.refusals.append(
                    {
                        "campaign": cid,
                        "time": time,
                        "seq": seq,
                        "reasons": list(f.get("reasons") or []),
                    }
                )
            elif event == "approve":
                out.approvals.append(
                    {
                        "campaign": cid,
                        "time": time,
                        "seq": seq,
                        "role": f.get("role"),
                        "digest": f.get("digest"),
                        "by": f.get("approver") or f.get("reviewer"),
                    }
                )
    return out


def render_text(summary: AuditSummary) -> list[str]:
    lines: list[str] = []
    for s in summary.sends:
        d = s.as_dict()
        state = f"ended {s.ended}" if s.ended else "did not finish (no send-end: killed?)"
        lines.append(f"{s.campaign} {s.digest} (seq {s.start_seq}): started {s.started}, {state}")
        lines.append(f"  approvals: {', '.join(s.approvals) or 'none recorded'}")
        lines.append(
            f"  relay {s.relay or '?'} tls {s.tls or '?'}; planned {s.planned}; "
            f"sent {d['sent']}, failed {d['failed']}, unconfirmed {d['unconfirmed']}; "
            f"S/MIME {s.smime}"
        )
        if s.excluded:
            lines.append(
                "  excluded: " + ", ".join(f"{k} {v}" for k, v in sorted(s.excluded.items()) if v)
            )
        if s.stopped:
            lines.append(f"  stopped: {s.stopped}")
    for r in summary.refusals:
        lines.append(f"{r['campaign']}: refused at {r['time']} (seq {r['seq']})")
        lines.extend(f"  {x}" for x in r["reasons"])
    return lines
