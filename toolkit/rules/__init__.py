"""The rule registry: an explicit dict from id to Rule (RULES.md is the catalogue)."""

from __future__ import annotations

from toolkit.rules.base import Rule

RULES: dict[str, Rule] = {}

# RULES.md's order: `campaign rules` and docs/rules.md list rules in it
CATALOGUE: tuple[str, ...] = (
    "CFG-001", "CFG-002", "SEG-001", "CNT-003",
    "HIPAA-MKT-001", "HIPAA-MKT-002", "HIPAA-MKT-003", "HIPAA-MKT-004", "HIPAA-MKT-005",
    "HIPAA-AUTH-001", "HIPAA-AUTH-002", "HIPAA-FR-001", "HIPAA-FR-002", "HIPAA-MIN-001",
    "HIPAA-MIN-002", "HIPAA-CC-001", "HIPAA-SEC-001", "HIPAA-SEC-002", "HIPAA-SEC-003",
    "CANSPAM-001", "CANSPAM-002", "CANSPAM-003", "CANSPAM-004", "CANSPAM-005", "CANSPAM-006",
    "CANSPAM-007",
    "MBX-UNSUB-001", "MBX-AUTH-001", "MBX-SIZE-001",
    "TRK-001", "TRK-002",
    "CNT-001", "CNT-002", "CNT-004",
)


def in_catalogue_order() -> list[Rule]:
    """Every registered rule, in RULES.md's order (rules outside it last, by id)."""
    rank = {rid: i for i, rid in enumerate(CATALOGUE)}
    return sorted(RULES.values(), key=lambda r: (rank.get(r.id, len(rank)), r.id))


def _register(*rules: Rule) -> None:
    for r in rules:
        assert r.id not in RULES, f"duplicate rule {r.id}"
        RULES[r.id] = r


# Each family module exposes a tuple RULES of its Rule objects, in catalogue order.
from toolkit.rules import config as _config  # noqa: E402

_register(*_config.RULES)

for _name in ("hipaa", "phi", "canspam", "mailbox", "tracking", "content"):
    try:
        _mod = __import__(f"toolkit.rules.{_name}", fromlist=["RULES"])
    except ModuleNotFoundError as _exc:  # family not written yet
        if _exc.name != f"toolkit.rules.{_name}":
            raise
        continue
    _register(*_mod.RULES)
