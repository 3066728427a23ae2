"""A small campaign repository for plan tests, and the same contacts in every source format."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import yaml

SCAFFOLD = Path(__file__).resolve().parent.parent / "toolkit" / "scaffold"

FIELDS = {
    "first_name": {"type": "string", "class": "identifier"},
    "age": {"type": "integer", "class": "demographic", "fundraising": True},
    "score": {"type": "number", "class": "none"},
    "care_status": {"type": "string", "class": "clinical"},
    "conditions": {"type": "list[string]", "class": "clinical"},
    "next_appointment": {"type": "datetime", "class": "clinical"},
    "last_visit": {"type": "date", "class": "clinical", "fundraising": True},
    "deceased": {"type": "boolean", "class": "none", "fundraising": True},
}

# id -> (purpose, extra campaign keys)
CAMPAIGNS: dict[str, tuple[str, dict[str, Any]]] = {
    "reminder": ("appointment-reminder", {}),
    "promo": ("health-education", {}),
    "appeal": ("fundraising", {}),
    "offer": ("marketing", {"authorization": {"scope": "partner"}}),
    "secure": (
        "care-instructions",
        {"delivery": {"relay": "default", "encryption": "smime-required"}},
    ),
    "consent": (
        "care-instructions",
        {
            "delivery": {
                "relay": "default",
                "encryption": "tls-required",
                "require_unencrypted_consent": True,
            }
        },
    ),
    "preferred": (
        "care-instructions",
        {
            "delivery": {
                "relay": "default",
                "encryption": "smime-preferred",
                "require_unencrypted_consent": True,
            }
        },
    ),
}


def make_repo(root: Path) -> Path:
    """A copy of the scaffold with the test schema, an `adults` segment and CAMPAIGNS."""
    shutil.copytree(SCAFFOLD, root)
    (root / "policy" / "fields.yaml").write_text(yaml.safe_dump({"fields": FIELDS}))
    (root / "segments" / "adults.yaml").write_text(
        yaml.safe_dump(
            {
                "description": "Living adults",
                "where": {
                    "all": [
                        {"field": "age", "op": ">=", "value": 18},
                        {"not": {"field": "deceased", "op": "==", "value": True}},
                    ]
                },
            }
        )
    )
    (root / "policy" / "authorizations").mkdir(exist_ok=True)
    (root / "policy" / "authorizations" / "partner.yaml").write_text(
        yaml.safe_dump(
            {
                "title": "Partner offers",
                "information": "name and email",
                "recipients_of_information": "us",
                "purposes": ["marketing"],
                "expiration": "one year",
                "revocation": "write to us",
                "conditioning": "treatment does not depend on it",
                "redisclosure": "may be redisclosed",
            }
        )
    )
    (root / "fixtures" / "personas.yaml").write_text(
        yaml.safe_dump(
            {
                "alex": {"id": "p1", "email": "alex@example.org", "first_name": "Alex", "age": 40},
            }
        )
    )
    base = yaml.safe_load(
        (root / "campaigns" / "appointment-reminder" / "campaign.yaml").read_text()
    )
    base["phi_fields"] = ["first_name", "next_appointment"]
    for cid, (purpose, extra) in CAMPAIGNS.items():
        folder = root / "campaigns" / cid
        folder.mkdir()
        data = {**base, "title": cid, "purpose": purpose, "segment": "adults", **extra}
        (folder / "campaign.yaml").write_text(yaml.safe_dump(data))
    return root


def _cell(key: str, v: Any) -> str:
    if v is None:
        return ""
    if key == "authorizations":
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "|".join(v)
    return str(v)


def write_sources(folder: Path, contacts: list[dict[str, Any]]) -> dict[str, Path]:
    """The same contacts as JSON lines, CSV and a SQLite table (booleans as 0/1 integers)."""
    keys: list[str] = []
    for c in contacts:
        keys += [k for k in c if k not in keys]
    jsonl = folder / "contacts.jsonl"
    jsonl.write_text("".join(json.dumps(c) + "\n" for c in contacts))
    csv_path = folder / "contacts.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for c in contacts:
            w.writerow([_cell(k, c.get(k)) for k in keys])
    db = folder / "contacts.db"
    con = sqlite3.connect(db)
    columns = ", ".join(f'"{k}"' for k in keys)
    con.execute(f"CREATE TABLE contacts ({columns})")
    for c in contacts:
        row = []
        for k in keys:
            v = c.get(k)
            row.append(
                int(v)
                if isinstance(v, bool)
                else v
                if isinstance(v, (int, float)) or v is None
                else _cell(k, v)
            )
        con.execute(f"INSERT INTO contacts VALUES ({', '.join('?' * len(keys))})", row)
    con.commit()
    con.close()
    return {"jsonl": jsonl, "csv": csv_path, "sqlite": db}
