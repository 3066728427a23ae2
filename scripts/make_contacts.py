"""Generate obviously synthetic contacts for the example repository, the demo and benchmarks.

    python scripts/make_contacts.py                      # writes fixtures/contacts.jsonl (300)
    python scripts/make_contacts.py --count 100000 --out /tmp/c.jsonl --anchor 2026-12-01

Deterministic for a seed. Every address is at example.org, every phone 555-01xx, no
number is shaped like an SSN, and names come from short made-up lists. Dates are
spread around the anchor (default 2026-12-01, noon UTC), so that a plan with
`--at 2026-12-01T12:00:00Z` finds recipients for every example campaign. The mix
exercises every exclusion the example campaigns can hit: invalid records, bad and
missing addresses, the same address again in another letter case, no_email requests,
and partner-offers authorizations that are valid, expired, revoked or of another scope.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

FIRST = [
    "Avery",
    "Blake",
    "Casey",
    "Devon",
    "Emery",
    "Finley",
    "Harper",
    "Jordan",
    "Kai",
    "Logan",
    "Morgan",
    "Parker",
    "Quinn",
    "Reese",
    "Riley",
    "Rowan",
    "Sawyer",
    "Skyler",
    "Taylor",
    "Tatum",
]
LAST = [
    "Testperson",
    "Sampleton",
    "Example",
    "Fixture",
    "Placeholder",
    "Mockwell",
    "Demoford",
    "Synthetica",
    "Fakename",
    "Dummyson",
]
CONDITIONS = ["E11", "E10", "I10", "J45", "E78", "M54", "F41"]
DRUGS = ["metformin", "lisinopril", "atorvastatin", "albuterol", "levothyroxine", "amlodipine"]
DEPARTMENTS = ["cardiology", "endocrinology", "family-medicine", "orthopedics", "pediatrics"]
PHYSICIANS = ["Dr. Alpha Example", "Dr. Beta Example", "Dr. Gamma Example", "Dr. Delta Example"]
BAD_LINES = [
    "{this is not json",
    '{"id": "bad-age", "email": "bad.age@example.org", "age": "sixty"}',
    '{"id": "bad-date", "email": "bad.date@example.org", "date_of_birth": "12/31/1950"}',
    '{"id": "bad-key", "email": "bad.key@example.org", "favourite_colour": "teal"}',
    '["a list, not an object"]',
]


def _iso(d: dt.date | dt.datetime) -> str:
    return d.isoformat().replace("+00:00", "Z")


def contact(i: int, rnd: random.Random, anchor: dt.datetime) -> dict[str, object]:
    day = anchor.date()
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    age = rnd.choice([rnd.randint(8, 17)] + [rnd.randint(18, 64)] * 5 + [rnd.randint(65, 95)] * 4)
    c: dict[str, object] = {
        "id": f"c-{i:07d}",
        "email": f"{first.lower()}.{last.lower()}.{i}@example.org",
        "first_name": first,
        "last_name": last,
        "date_of_birth": _iso(dt.date(day.year - age, 1 + i % 12, 1 + i % 28)),
        "phone": f"217-555-01{i % 100:02d}",
        "mrn": f"VH-{i % 10_000_000:07d}",
        "age": age,
        "age_band": "0-17" if age < 18 else "18-64" if age < 65 else "65+",
        "gender": rnd.choice(["female", "male", "nonbinary", None]),
        "language": rnd.choice(["en", "en", "en", "es"]),
        "zip3": "627",
        "care_status": rnd.choices(["active", "inactive", "discharged"], [75, 15, 10])[0],
        "conditions": sorted(set(rnd.sample(CONDITIONS, rnd.choice([0, 0, 1, 1, 2, 3])))),
        "deceased": rnd.random() < 0.02,
        "newsletter_opt_in": rnd.random() < 0.45,
        "plan_member": rnd.random() < 0.3,
        "lab_result_ready": rnd.random() < 0.2,
        "unencrypted_email_ok": rnd.random() < 0.6,
        "insurance_status": rnd.choice(["insured", "self-pay", None]),
    }
    if rnd.random() < 0.5:
        c["next_appointment"] = _iso(anchor + dt.timedelta(hours=rnd.randint(-20 * 24, 40 * 24)))
    # a third seen in the last ten days, the rest over the past two years
    back = rnd.randint(0, 10) if rnd.random() < 0.33 else rnd.randint(11, 730)
    c["last_visit"] = _iso(day - dt.timedelta(days=back))
    if rnd.random() < 0.6:
        c["department"] = rnd.choice(DEPARTMENTS)
        c["treating_physician"] = rnd.choice(PHYSICIANS)
    if rnd.random() < 0.4:
        drug = rnd.choice(DRUGS)
        c["current_prescription"] = drug
        c["medications"] = [drug]
        c["refill_due_date"] = _iso(day + dt.timedelta(days=rnd.randint(-10, 30)))
    r = rnd.random()
    granted = day - dt.timedelta(days=rnd.randint(30, 400))
    if r < 0.40:  # valid
        c["authorizations"] = [
            {
                "scope": "partner-offers",
                "granted_on": _iso(granted),
                "expires_on": _iso(day + dt.timedelta(days=rnd.randint(30, 700))),
            }
        ]
    elif r < 0.46:  # expired
        c["authorizations"] = [
            {
                "scope": "partner-offers",
                "granted_on": _iso(granted),
                "expires_on": _iso(day - dt.timedelta(days=rnd.randint(1, 20))),
            }
        ]
    elif r < 0.52:  # revoked
        c["authorizations"] = [
            {
                "scope": "partner-offers",
                "granted_on": _iso(granted),
                "revoked_on": _iso(day - dt.timedelta(days=rnd.randint(1, 20))),
            }
        ]
    elif r < 0.58:  # another scope only
        c["authorizations"] = [{"scope": "research", "granted_on": _iso(granted)}]
    r = rnd.random()
    if r < 0.04:
        c["no_email"] = True
    elif r < 0.07:
        c["email"] = rnd.choice(
            [
                "not-an-address",
                f"missing.domain.{i}@",
                f"two@@signs{i}.example.org",
                f"space in.{i}@example.org",
            ]
        )
    elif r < 0.09:
        c["email"] = None
    return c


def generate(count: int, *, seed: int = 2026, anchor: dt.datetime | None = None) -> Iterator[str]:
    """JSON lines: `count` records, with a few invalid lines and case-changed duplicates."""
    anchor = anchor or dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    rnd = random.Random(seed)
    recent: list[dict[str, object]] = []
    for i in range(1, count + 1):
        r = rnd.random()
        if i % 75 == 37:  # a few invalid records, at fixed places
            yield BAD_LINES[(i // 75) % len(BAD_LINES)]
            continue
        if recent and r < 0.045:  # the same person again, address in other letter case
            again = dict(rnd.choice(recent))
            again["id"] = f"c-{i:07d}"
            if isinstance(again.get("email"), str):
                again["email"] = (
                    str(again["email"]).title() if i % 2 else str(again["email"]).upper()
                )
            yield json.dumps(again, separators=(",", ":"))
            continue
        c = contact(i, rnd, anchor)
        if len(recent) < 64:
            recent.append(c)
        else:
            recent[i % 64] = c
        yield json.dumps(c, separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument(
        "--anchor",
        default="2026-12-01T12:00:00+00:00",
        help="ISO-8601 moment the dates are spread around",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "fixtures" / "contacts.jsonl",
    )
    args = ap.parse_args(argv)
    anchor = dt.datetime.fromisoformat(args.anchor)
    anchor = anchor if anchor.tzinfo else anchor.replace(tzinfo=dt.UTC)
    out = sys.stdout if str(args.out) == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    with out:
        for line in generate(args.count, seed=args.seed, anchor=anchor):
            out.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
