"""The plan as text (terminals, logs) and as markdown (pull-request comments).

Same numbers as the JSON. Markdown is posted where many people read it, so counts from
1 to 10 are shown as `<11` (small cells can single people out); 0 stays 0.
"""

from __future__ import annotations

from toolkit.gates import REASONS
from toolkit.plan import PlanResult


def small(n: int) -> str:
    return "<11" if 1 <= n <= 10 else str(n)


def _at(result: PlanResult) -> str:
    return result.at.isoformat(timespec="seconds").replace("+00:00", "Z")


def text(result: PlanResult) -> str:
    rows = [
        ("contacts read", result.contacts_read),
        ("invalid records", result.invalid_records),
        ("matched", result.matched),
    ]
    rows += [(f"  excluded: {r}", result.excluded[r]) for r in REASONS]
    rows.append(("recipients", result.recipients))
    width = max(len(name) for name, _ in rows)
    out = [f"plan for {result.campaign} ({result.digest}) as of {_at(result)}"]
    out += [f"  {name:<{width}}  {n:>9}" for name, n in rows]
    return "\n".join(out) + "\n"


def markdown(result: PlanResult) -> str:
    out = [
        f"### Plan for `{result.campaign}`",
        "",
        f"Content digest `{result.digest}`, evaluated as of {_at(result)}.",
        "",
        "| | contacts |",
        "| --- | ---: |",
        f"| contacts read | {small(result.contacts_read)} |",
        f"| invalid records | {small(result.invalid_records)} |",
        f"| matched the segment | {small(result.matched)} |",
        f"| **recipients** | **{small(result.recipients)}** |",
        "",
        "| excluded because | contacts |",
        "| --- | ---: |",
    ]
    out += [f"| `{r}` | {small(result.excluded[r])} |" for r in REASONS]
    out += ["", "Counts from 1 to 10 are shown as <11. No contact data is included in this plan."]
    return "\n".join(out) + "\n"
